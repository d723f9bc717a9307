"""Build the `XWAMPolicy` a model configuration describes (public xwam_model API only)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xwam_model import XWAMConfig, load_xwam_checkpoint
from xwam_model.normalization import Normalization
from xwam_model.policy import PolicySettings, XWAMPolicy
from xwam_model.text import TextEmbeddings, TextEncoder
from xwam_model.vae import WanVAE, tiny_vae_config
from xwam_ros.config.model import ModelConfig

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class PolicyLoadError(RuntimeError):
    """The model configuration names something that cannot be loaded; says what and where."""


def build_policy(config: ModelConfig, source: str = "model config") -> XWAMPolicy:
    """The policy of `config`: its checkpoint (any supported format) or a random preset.

    Deployment memory: without imagination (`imagine_every_n_chunks: 0`) the depth branch is
    not loaded; with `text_embeddings` umT5 is not loaded; with an `imagination_dtype` other
    than the VAE's, the VAE is there twice. `cpu_threads` sets torch's intra-op threads for
    the whole process."""
    policy = _build_policy(config, source)
    if config.imagination_dtype:
        policy.imagination_vae = policy.vae.in_dtype(_DTYPES[config.imagination_dtype])
    return policy


def _build_policy(config: ModelConfig, source: str) -> XWAMPolicy:
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    device = torch.device(config.device)
    dtype = _DTYPES[config.dtype]
    depth_branch = config.imagine_every_n_chunks > 0
    embeddings = _text_embeddings(config, source)
    if config.checkpoint:
        checkpoint = Path(config.checkpoint)
        if not checkpoint.exists():
            raise PolicyLoadError(f"{source}: checkpoint {checkpoint} does not exist")
        if (checkpoint / "config.yaml").is_file():  # a released X-WAM experiment folder
            if not config.wan_dir:
                raise PolicyLoadError(f"{source}: {checkpoint} is a release; give `wan_dir`")
            policy = XWAMPolicy.from_release(
                checkpoint,
                wan_dir=config.wan_dir,
                device=device,
                dtype=dtype,
                depth_branch=depth_branch,
                text_embeddings=embeddings,
            )
            settings = PolicySettings.from_dict(
                {**policy.settings.to_dict(), **config.policy}, source=f"{source}: policy"
            )
            parts = (policy.model, policy.vae, policy.text_encoder, policy.normalization)
            return XWAMPolicy(*parts, settings)
        project_format = (
            checkpoint.is_dir()
            and (checkpoint / "config.json").is_file()
            and (checkpoint / "model.safetensors").is_file()
        )
        if project_format:
            model, normalization, stored = _project_checkpoint(
                checkpoint, config, device, dtype, depth_branch
            )
        else:
            model = load_xwam_checkpoint(
                checkpoint, device=device, dtype=dtype, depth_branch=depth_branch
            )
            normalization, stored = _statistics(config, source, model.config), None
    else:
        model = None
        normalization, stored = _statistics(config, source, XWAMConfig.preset(config.preset)), None

    settings_dict = {**(stored.to_dict() if stored else {}), **config.policy}
    settings = PolicySettings.from_dict(settings_dict, source=f"{source}: policy")
    model_config = model.config if model is not None else XWAMConfig.preset(config.preset)
    vae = _vae(config, model_config, device, source)
    text = embeddings or _text_encoder(config, model_config, device, source)
    if model is None:
        return XWAMPolicy.from_config(
            model_config,
            vae=vae,
            text_encoder=text,
            normalization=normalization,
            settings=settings,
            device=device,
            weights_seed=config.weights_seed,
            depth_branch=depth_branch,
        )
    return XWAMPolicy(model, vae, text, normalization, settings)


def _project_checkpoint(directory: Path, config: ModelConfig, device, dtype, depth_branch):
    from xwam_model import load_pretrained

    loaded = load_pretrained(directory, device=device, dtype=dtype, depth_branch=depth_branch)
    if config.normalization:
        normalization = _read_statistics(Path(config.normalization))
    elif loaded.normalization is not None:
        normalization = Normalization.from_dict(
            loaded.normalization, source=str(directory / "normalization.json")
        )
    else:
        raise PolicyLoadError(
            f"{directory}: no normalization.json and no `normalization` "
            "file in the model config; the policy needs the q01/q99 "
            "statistics the model was trained with"
        )
    return loaded.model, normalization, PolicySettings.load(directory)


def _statistics(config: ModelConfig, source: str, model_config: XWAMConfig) -> Normalization:
    if config.normalization:
        return _read_statistics(Path(config.normalization))
    if config.checkpoint:
        raise PolicyLoadError(
            f"{source}: checkpoint {config.checkpoint} carries no statistics; "
            "give the q01/q99 statistics JSON as `normalization`"
        )
    return Normalization.identity(model_config.action_dim, model_config.proprio_dim)


def _read_statistics(path: Path) -> Normalization:
    if not path.is_file():
        raise PolicyLoadError(f"normalization statistics {path} do not exist")
    return Normalization.from_dict(json.loads(path.read_text()), source=str(path))


def _vae(config: ModelConfig, model_config: XWAMConfig, device, source: str) -> WanVAE:
    if config.vae:
        if not Path(config.vae).is_dir():
            raise PolicyLoadError(f"{source}: vae folder {config.vae} does not exist")
        return WanVAE.from_pretrained(config.vae, device=device)
    return WanVAE.from_config(
        tiny_vae_config(z_dim=model_config.in_channels), device=device, seed=config.weights_seed
    )


def _text_embeddings(config: ModelConfig, source: str) -> TextEmbeddings | None:
    if not config.text_embeddings:
        return None
    try:
        return TextEmbeddings.load(config.text_embeddings)
    except (FileNotFoundError, ValueError) as error:
        raise PolicyLoadError(f"{source}: text_embeddings: {error}") from error


def _text_encoder(config: ModelConfig, model_config: XWAMConfig, device, source: str):
    if config.text_encoder:
        if not Path(config.text_encoder).is_dir():
            raise PolicyLoadError(
                f"{source}: text_encoder folder {config.text_encoder} does not exist"
            )
        return TextEncoder.from_pretrained(
            config.text_encoder, text_len=model_config.text_len, device=device
        )
    return TextEncoder.tiny(
        text_dim=model_config.text_dim,
        text_len=model_config.text_len,
        seed=config.weights_seed,
        device=device,
    )
