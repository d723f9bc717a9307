"""Model configurations: `config/model/<name>.yaml`.

Which weights to run (a checkpoint in any supported format, or a preset with random weights
for demos), where the VAE and text encoder live, the device, and how the policy samples.
The sampling settings are `xwam_model.policy.PolicySettings`, declared and validated there
(the training cluster uses the same class); this file only says where they come from.
Relative paths are resolved against the YAML file's folder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from xwam_ros.config.schema import InvalidFieldError, load, option


@dataclass(frozen=True)
class ModelConfig:
    """What the model node runs."""

    description: str = option(doc="one line saying what the model is")
    checkpoint: str = option(
        "",
        doc="weights: a project checkpoint folder (model.safetensors, config.json, "
        "normalization.json, policy.json; `xwam convert-release` writes one), a released X-WAM "
        "experiment folder (config.yaml + checkpoints/, with `wan_dir`), a .ckpt / "
        ".safetensors / *.safetensors.index.json; empty: random weights of `preset` (demos only)",
    )
    preset: Literal["tiny", "small", "paper"] = option(
        "small", doc="architecture preset used when `checkpoint` is empty"
    )
    normalization: str = option(
        "",
        doc="q01/q99 statistics JSON for checkpoints that do not carry normalization.json "
        "(released X-WAM checkpoints); empty: the checkpoint's own, or identity for presets",
    )
    vae: str = option(
        "",
        doc="local folder of the Wan2.2 VAE in the diffusers layout; empty: a small random VAE "
        "with the model's latent channels (demos only)",
    )
    text_encoder: str = option(
        "",
        doc="local folder of the umT5 encoder and its tokenizer; empty: a tiny random encoder "
        "(demos only)",
    )
    text_embeddings: str = option(
        "",
        doc="precomputed instruction embeddings (a .safetensors file made by `python -m "
        "xwam_model.text`); given: umT5 is not loaded and only the instructions it holds are "
        "accepted",
    )
    wan_dir: str = option(
        "",
        doc="the Wan2.2-TI2V-5B folder (config.json, umT5 tokenizer) of a released X-WAM "
        "experiment folder named as `checkpoint` (config.yaml + checkpoints/)",
    )
    device: str = option("cpu", doc="torch device: cpu, cuda, cuda:1 ...")
    dtype: Literal["float32", "bfloat16"] = option(
        "float32", doc="weights dtype (bfloat16 on GPUs; float32 on CPUs)"
    )
    imagination_dtype: Literal["float32", "bfloat16"] | None = option(
        None,
        doc="dtype of the VAE decode of imagined futures (RGB and depth), a copy of the VAE "
        "in it; null: the VAE's own (float32). On a CPU the decode is most of an "
        "imagination: bfloat16 on one with AVX512-BF16 took 0.16 s a latent frame against "
        "0.25 s, its RGB within 56.7 dB PSNR of float32's and its depth within 0.3% "
        "(sim_panda_lift)",
    )
    cpu_threads: int = option(
        0,
        doc="torch's intra-op threads for this process (torch.set_num_threads); 0 keeps "
        "torch's default (one per core). On a CPU shared with the simulator or camera drivers "
        "fewer threads than cores avoids threads waiting on each other: on 2 cores with one "
        "kept busy, one thread decoded a chunk in 0.14 s against 0.43 s with two",
    )
    weights_seed: int = option(0, doc="seed of the random weights of a preset")
    instruction: str = option("", doc="instruction used until one is set by the service")
    imagine_every_n_chunks: int = option(
        1,
        doc="begin an imagination with the first chunk, then with the first chunk at least n "
        "after the last one began, once none is in progress; 0 never imagines",
    )
    imagination_delay: float = option(
        0.0,
        doc="seconds for which imagination pieces may hold back a decode the executor asked "
        "for, plus the piece running then (the decode then observes a fresher state and its "
        "chunk lands that much later): "
        "what seeing the imagined future costs the control rate on a machine whose decodes "
        "leave no time between chunks; 0: pieces run only in the time the executing chunk "
        "leaves",
    )
    imagination_pieces_per_chunk: int = option(
        4,
        doc="with an imagination in progress, at least this many of its pieces (a pass, or "
        "one of the 4 blocks that make a latent frame of the VAE decode) per chunk: when "
        "fewer fitted in the time the "
        "executing chunk left before a chunk was published, the missing ones run after it "
        "whether they fit or not (each may then hold the next decode back by its duration): "
        "imaginations land, about one per ten chunks, even where decodes leave no time "
        "between chunks (a busy CPU), at that cost to the control rate, and where pieces "
        "fit none is forced on a decode; 0: only pieces that fit",
    )
    cloud_stride: int = option(
        2, doc="keep every n-th pixel row and column when unprojecting imagined depth"
    )
    continue_chunks: bool = option(
        True,
        doc="prefix-conditioned decoding: the new chunk's steps due before it takes over "
        "are fixed to what the executing chunk commands then, so it continues that chunk "
        "(xwam_ros.continuation); only with a checkpoint trained for it (its policy.json "
        "max_action_prefix > 0, training option max_action_prefix)",
    )
    policy: dict[str, Any] = option(
        factory=dict,
        doc="sampling settings (xwam_model.policy.PolicySettings): height, width, view_names, "
        "latent_frames, video_steps, action_steps, shift, guidance, run_depth, depth_ranges, "
        "seed; they override the checkpoint's policy.json",
    )

    def __post_init__(self):
        if "proprio_quaternion" in self.policy:
            raise InvalidFieldError(
                "policy.proprio_quaternion",
                "no override: the proprio quaternion convention is the one the checkpoint was "
                "trained with (its policy.json)",
            )
        if self.imagine_every_n_chunks < 0:
            raise InvalidFieldError(
                "imagine_every_n_chunks", "0 or more", self.imagine_every_n_chunks
            )
        if self.cpu_threads < 0:
            raise InvalidFieldError("cpu_threads", "0 or more", self.cpu_threads)
        if not self.imagination_delay >= 0:
            raise InvalidFieldError("imagination_delay", "0 or more", self.imagination_delay)
        if self.imagination_pieces_per_chunk < 0:
            raise InvalidFieldError(
                "imagination_pieces_per_chunk", "0 or more", self.imagination_pieces_per_chunk
            )
        if self.cloud_stride < 1:
            raise InvalidFieldError("cloud_stride", "1 or more", self.cloud_stride)
        from xwam_model.policy import PolicyConfigError, PolicySettings

        try:
            PolicySettings.from_dict(self.policy, source="settings")
        except PolicyConfigError as exc:
            raise InvalidFieldError("policy", f"valid policy settings ({exc})") from None


def load_model_config(path: str | Path) -> ModelConfig:
    """Load a model YAML; relative paths in it are resolved against the file's folder."""
    path = Path(path)
    config = load(ModelConfig, path)
    resolved = {}
    for key in ("checkpoint", "normalization", "vae", "text_encoder", "text_embeddings", "wan_dir"):
        value = getattr(config, key)
        if value and not Path(value).is_absolute():
            resolved[key] = str((path.parent / value).resolve())
    return replace(config, **resolved)
