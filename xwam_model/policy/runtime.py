"""`XWAMPolicy`: the one runtime object the ROS side calls.

One call, as DESIGN.md's control cycle runs it:

    run = policy.begin(Observation(images, proprio, instruction))   # prepare + encode
    chunk = run.decode_actions()       # ANS phase 1: the de-normalised action chunk, at once
    future = run.imagine()             # ANS phase 2 (optional): RGB + metric depth per view

`policy.act(observation, imagine=...)` does the same in one call. Each `begin` draws its noise
from the policy's generator (seeded by `PolicySettings.seed`; `reset` re-seeds it) or from
its own `seed=`, so runs are deterministic for a seed. The policy is not thread-safe: one
worker thread drives it.

Preparation: each view is centre-cropped to the model's aspect ratio and resized (bilinear,
antialiased) to `settings.height` x `settings.width`; `ViewCrop` says how, so camera
intrinsics can follow (`ViewCrop.intrinsics`). Proprio is normalised with the checkpoint's
q01/q99 statistics; actions come back de-normalised with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_pretrained
from ..configuration import XWAMConfig
from ..normalization import Normalization
from ..sampling.inference import AsyncSampler
from ..text import TextEncoder
from ..transformer import XWAMTransformer
from ..vae import WanVAE, video_to_uint8
from .settings import PathLike, PolicyConfigError, PolicySettings
from .types import ActionChunk, ImaginedFuture, Observation, ObservationError, PolicyOutput
from .views import ViewCrop, prepare_image


class XWAMPolicy:
    """Observation in, action chunk (and imagined future) out; see the module docstring."""

    def __init__(
        self,
        model: XWAMTransformer,
        vae: WanVAE,
        text_encoder: TextEncoder,
        normalization: Normalization,
        settings: PolicySettings | None = None,
    ) -> None:
        self.model = model.eval()
        self.vae = vae
        self.text_encoder = text_encoder
        self.normalization = normalization
        self.settings = settings or PolicySettings()
        self._check_parts()
        self.view_names = self.settings.names_for(model.config.num_views)
        self._generator = torch.Generator().manual_seed(self.settings.seed)

    # -------------------------------------------------------------- construction

    @classmethod
    def from_pretrained(
        cls,
        directory: PathLike,
        *,
        vae: WanVAE | PathLike,
        text_encoder: TextEncoder | PathLike,
        settings: PolicySettings | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> XWAMPolicy:
        """Load a checkpoint written by `save_pretrained` (`model.safetensors`, `config.json`,
        `normalization.json`, and `policy.json` unless `settings` is given). `vae` and
        `text_encoder` are built objects or local diffusers/transformers folders."""
        directory = Path(directory)
        loaded = load_pretrained(directory, device=device, dtype=dtype)
        if loaded.normalization is None:
            raise PolicyConfigError(
                f"{directory}: no normalization.json; a policy needs the q01/q99 statistics the "
                "model was trained with"
            )
        normalization = Normalization.from_dict(
            loaded.normalization, source=str(directory / "normalization.json")
        )
        settings = settings or PolicySettings.load(directory) or PolicySettings()
        if not isinstance(vae, WanVAE):
            vae = WanVAE.from_pretrained(vae, device=device)
        if not isinstance(text_encoder, TextEncoder):
            text_encoder = TextEncoder.from_pretrained(
                text_encoder, text_len=loaded.model.config.text_len, device=device
            )
        return cls(loaded.model, vae, text_encoder, normalization, settings)

    @classmethod
    def from_config(
        cls,
        config: XWAMConfig,
        *,
        vae: WanVAE,
        text_encoder: TextEncoder,
        normalization: Normalization | None = None,
        settings: PolicySettings | None = None,
        device: str | torch.device = "cpu",
        weights_seed: int = 0,
    ) -> XWAMPolicy:
        """A policy with random weights (demos, tests, benchmarks); identity statistics
        unless `normalization` is given."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(weights_seed)
            model = XWAMTransformer(config).to(device)
        normalization = normalization or Normalization.identity(
            config.action_dim, config.proprio_dim
        )
        return cls(model, vae, text_encoder, normalization, settings)

    def save_pretrained(self, directory: PathLike) -> Path:
        """Write the model, its statistics and these settings (what `from_pretrained` reads)."""
        self.model.save_pretrained(directory, normalization=self.normalization.to_dict())
        return self.settings.save(directory)

    # -------------------------------------------------------------- running

    @property
    def num_actions(self) -> int:
        """Action steps per chunk: `actions_per_frame` for every future video frame."""
        return self.model.config.actions_per_frame * self._future_frames

    @property
    def num_proprio(self) -> int:
        """Proprio steps denoised: one per video frame, the observed one first."""
        return 1 + self._future_frames

    def reset(self, seed: int | None = None) -> None:
        """Re-seed the noise generator (with `settings.seed` unless `seed` is given)."""
        self._generator.manual_seed(self.settings.seed if seed is None else seed)

    def begin(self, observation: Observation, *, seed: int | None = None) -> PolicyRun:
        """Check and prepare an observation, encode it and set up the sampler.

        Raises `ObservationError` naming what was expected when the observation does not fit.
        """
        started = time.perf_counter()
        images, proprio = self._checked(observation)
        crops = tuple(
            ViewCrop.centred(*image.shape[:2], self.settings.height, self.settings.width)
            for image in images
        )
        video = torch.stack(
            [prepare_image(image, crop, self.vae.device) for image, crop in zip(images, crops)],
            dim=1,
        )  # [3, V, H, W]
        first_frame = self.vae.encode_video(video[None, :, None])  # [1, C, 1, V, h, w]
        device = _device_of(self.model)
        cond_proprio = self.normalization.proprio.normalize(torch.from_numpy(proprio)).float()
        sampler = AsyncSampler(
            self.model,
            cond_latents=first_frame.to(device),
            cond_proprio=cond_proprio.view(1, 1, -1).to(device),
            context=self._context(observation.instruction, device),
            **self._noise(first_frame.shape, seed, device),
            video_steps=self.settings.video_steps,
            action_steps=self.settings.action_steps,
            shift=self.settings.shift,
            guidance=self.settings.guidance,
        )
        return PolicyRun(self, sampler, crops, started, time.perf_counter() - started, seed)

    def act(
        self,
        observation: Observation,
        *,
        imagine: bool = False,
        run_depth: bool | None = None,
        seed: int | None = None,
    ) -> PolicyOutput:
        """`begin`, `decode_actions` and, with `imagine`, `imagine(run_depth)` in one call."""
        run = self.begin(observation, seed=seed)
        chunk = run.decode_actions()
        return PolicyOutput(chunk, run.imagine(run_depth=run_depth) if imagine else None)

    # -------------------------------------------------------------- helpers

    @property
    def _future_frames(self) -> int:
        return self.vae.temporal_compression * (self.settings.latent_frames - 1)

    def _check_parts(self) -> None:
        config, settings, vae = self.model.config, self.settings, self.vae
        if vae.latent_channels != config.in_channels:
            raise PolicyConfigError(
                f"VAE: {vae.latent_channels} latent channels, the model expects "
                f"{config.in_channels}"
            )
        # Each latent patch covers (VAE stride x patch) pixels along each image axis.
        rows = vae.spatial_compression * config.patch_size[1]
        cols = vae.spatial_compression * config.patch_size[2]
        if settings.height % rows or settings.width % cols:
            raise PolicyConfigError(
                f"height, width: expected multiples of {rows} and {cols} (VAE stride x patch), "
                f"got {settings.height}x{settings.width}"
            )
        encoder = self.text_encoder
        if encoder.text_dim != config.text_dim or encoder.text_len > config.text_len:
            raise PolicyConfigError(
                f"text encoder: width {encoder.text_dim} and length {encoder.text_len}, the model "
                f"expects width {config.text_dim} and at most {config.text_len} tokens"
            )
        if settings.view_names and len(settings.view_names) != config.num_views:
            raise PolicyConfigError(
                f"view_names: expected {config.num_views} names (the model's views), got "
                f"{list(settings.view_names)}"
            )
        if len(settings.depth_ranges) not in (1, config.num_views):
            raise PolicyConfigError(
                f"depth_ranges: expected 1 or {config.num_views} ranges, got "
                f"{len(settings.depth_ranges)}"
            )
        try:
            self.normalization.check_dims(config.action_dim, config.proprio_dim)
        except ValueError as error:
            raise PolicyConfigError(f"normalization: {error}") from error

    def _checked(self, observation: Observation) -> tuple[list[np.ndarray], np.ndarray]:
        names = self.view_names
        images = observation.images
        if isinstance(images, Mapping):
            if set(images) != set(names):
                raise ObservationError(
                    f"images: expected views {list(names)}, got {sorted(images)}"
                )
            images = [images[name] for name in names]
        else:
            images = list(images)
            if len(images) != len(names):
                raise ObservationError(
                    f"images: expected {len(names)} views ({', '.join(names)}), got {len(images)}"
                )
        for name, image in zip(names, images):
            if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
                kind = getattr(image, "dtype", type(image).__name__)
                raise ObservationError(f"images[{name}]: expected uint8 RGB [H, W, 3], got {kind}")
            if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
                raise ObservationError(
                    f"images[{name}]: expected uint8 RGB [H, W, 3], got shape {image.shape}"
                )
        try:
            proprio = np.asarray(observation.proprio, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise ObservationError(f"proprio: expected numbers ({error})") from error
        expected = self.model.config.proprio_dim
        if proprio.shape != (expected,):
            raise ObservationError(
                f"proprio: expected {expected} values, got shape {list(proprio.shape)}"
            )
        if not np.isfinite(proprio).all():
            bad = np.flatnonzero(~np.isfinite(proprio)).tolist()
            raise ObservationError(f"proprio: expected finite values, got NaN/Inf at {bad}")
        if not isinstance(observation.instruction, str) or not observation.instruction.strip():
            raise ObservationError(
                f"instruction: expected a non-empty string, got {observation.instruction!r}"
            )
        return images, proprio

    def _context(self, instruction: str, device: torch.device) -> torch.Tensor:
        if self.settings.guidance > 0:
            return torch.cat(self.text_encoder.encode_pair(instruction)).to(device)
        return self.text_encoder.encode([instruction]).to(device)

    def _noise(
        self, first_frame_shape: torch.Size, seed: int | None, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Gaussian noise on the CPU (the same numbers on every device), in a fixed order."""
        generator = self._generator if seed is None else torch.Generator().manual_seed(seed)
        batch, channels, _, views, height, width = first_frame_shape
        config = self.model.config
        shapes = {
            "noise_video": (batch, channels, self.settings.latent_frames, views, height, width),
            "noise_actions": (batch, self.num_actions, config.action_dim),
            "noise_proprio": (batch, self.num_proprio, config.proprio_dim),
        }
        return {
            name: torch.randn(shape, generator=generator).to(device)
            for name, shape in shapes.items()
        }


class PolicyRun:
    """One observation's sampling run: the chunk first, then (optionally) the future."""

    def __init__(
        self,
        policy: XWAMPolicy,
        sampler: AsyncSampler,
        crops: tuple[ViewCrop, ...],
        started: float,
        prepare_s: float,
        seed: int | None,
    ) -> None:
        self.policy = policy
        self.sampler = sampler
        self.crops = crops
        self.started = started
        self.prepare_s = prepare_s
        self.seed = seed

    def decode_actions(self) -> ActionChunk:
        """Run the action passes and return the de-normalised chunk."""
        decoded = self.sampler.decode_actions()
        normalization = self.policy.normalization
        actions = decoded.actions[0].double().cpu()
        proprio = decoded.proprio[0, 1:].double().cpu()
        return ActionChunk(
            actions=normalization.action.denormalize(actions).numpy(),
            proprio=normalization.proprio.denormalize(proprio).numpy(),
            normalized_actions=decoded.actions[0].float().cpu().numpy(),
            latency_s=time.perf_counter() - self.started,
            prepare_s=self.prepare_s,
            seed=self.seed,
        )

    def imagine(
        self,
        *,
        run_depth: bool | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> ImaginedFuture | None:
        """Run the remaining video passes and decode the future; None if `should_stop`
        answered True before the last pass (the partial latents are not worth decoding).

        `run_depth` defaults to `settings.run_depth`; the depth branch runs on the final pass.
        """
        policy = self.policy
        run_depth = policy.settings.run_depth if run_depth is None else run_depth
        run_depth = run_depth and policy.model.config.has_depth_branch
        result = self.sampler.imagine(run_depth, should_stop=should_stop)
        if not result.complete:
            return None
        decode_started = time.perf_counter()
        vae = policy.vae
        rgb = video_to_uint8(vae.decode_video(result.video.to(vae.device)))[0]  # [T, V, H, W, 3]
        depth = None
        if run_depth:
            ranges = policy.settings.depth_ranges
            metres = vae.decode_depth(
                result.depth.to(vae.device), ranges[0] if len(ranges) == 1 else ranges
            )  # [1, T, V, H, W]
            depth = metres[0, 1:].transpose(0, 1).cpu().numpy()
        return ImaginedFuture(
            view_names=policy.view_names,
            rgb=np.ascontiguousarray(rgb[1:].swapaxes(0, 1)),
            depth=None if depth is None else np.ascontiguousarray(depth),
            crops=self.crops,
            elapsed_s=time.perf_counter() - self.started,
            decode_s=time.perf_counter() - decode_started,
        )


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
