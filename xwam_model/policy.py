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

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_pretrained
from .configuration import XWAMConfig
from .normalization import Normalization
from .sampling.inference import AsyncSampler
from .sampling.schedule import DEFAULT_SHIFT
from .text import TextEncoder
from .transformer import XWAMTransformer
from .vae import DepthRange, WanVAE, video_to_uint8

PathLike = str | os.PathLike
SETTINGS_NAME = "policy.json"


class ObservationError(ValueError):
    """An observation does not fit the policy (view count, image format, proprio size, NaN)."""


class PolicyConfigError(ValueError):
    """Policy settings are invalid or do not fit the model, VAE or text encoder."""


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True)
class PolicySettings:
    """How the policy runs a checkpoint; stored beside it as `policy.json`."""

    height: int = 256
    """Model input height in pixels (a multiple of the VAE stride times the patch size)."""
    width: int = 320
    """Model input width in pixels."""
    view_names: tuple[str, ...] = ()
    """Camera views in the order the checkpoint expects; empty: `view0`, `view1`, ..."""
    latent_frames: int = 3
    """Latent frames denoised: the observed one plus the future (3 -> 1 + 8 video frames)."""
    video_steps: int = 50
    """Video denoising passes of an imagination."""
    action_steps: int = 10
    """Denoising passes of the action chunk (the first of the video passes)."""
    shift: float = DEFAULT_SHIFT
    """Flow-matching schedule shift."""
    guidance: float = 0.0
    """Classifier-free guidance scale; 0 runs the conditional model alone (half the cost)."""
    run_depth: bool = True
    """Default of `imagine(run_depth=...)`: decode metric depth of the imagined future."""
    depth_ranges: tuple[DepthRange, ...] = (DepthRange(0.0, 2.0),)
    """Metric range of the depth branch's [-1, 1]: one shared range or one per view."""
    seed: int = 0
    """Seed of the policy's noise generator."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "view_names", tuple(self.view_names))
        object.__setattr__(self, "depth_ranges", tuple(self.depth_ranges))
        for name in ("height", "width", "latent_frames", "video_steps", "action_steps"):
            _require_int(name, getattr(self, name), minimum=2 if name == "latent_frames" else 1)
        _require_int("seed", self.seed, minimum=0)
        if self.action_steps > self.video_steps:
            raise PolicyConfigError(
                f"action_steps: expected at most video_steps ({self.video_steps}), "
                f"got {self.action_steps}"
            )
        _require_number("shift", self.shift, positive=True)
        _require_number("guidance", self.guidance, positive=False)
        if not isinstance(self.run_depth, bool):
            raise PolicyConfigError(f"run_depth: expected true or false, got {self.run_depth!r}")
        if not all(isinstance(name, str) and name for name in self.view_names):
            raise PolicyConfigError(
                f"view_names: expected non-empty strings, got {self.view_names}"
            )
        if len(set(self.view_names)) != len(self.view_names):
            raise PolicyConfigError(f"view_names: expected unique names, got {self.view_names}")
        if not self.depth_ranges or not all(isinstance(r, DepthRange) for r in self.depth_ranges):
            raise PolicyConfigError(
                f"depth_ranges: expected one or more DepthRange, got {self.depth_ranges}"
            )

    def names_for(self, num_views: int) -> tuple[str, ...]:
        """The view names, defaulted to `view0..` for a model of `num_views` views."""
        return self.view_names or tuple(f"view{i}" for i in range(num_views))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what `policy.json` holds)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["view_names"] = list(self.view_names)
        data["depth_ranges"] = [r.to_dict() for r in self.depth_ranges]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "policy settings") -> PolicySettings:
        """Build from `to_dict` output; unknown keys are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyConfigError(f"{source}: unknown keys {unknown}; expected {sorted(known)}")
        data = dict(data)
        try:
            if "depth_ranges" in data:
                data["depth_ranges"] = tuple(DepthRange.from_dict(r) for r in data["depth_ranges"])
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise PolicyConfigError(f"{source}: {error}") from error

    def save(self, directory: PathLike) -> Path:
        """Write `policy.json` into `directory`."""
        path = Path(directory) / SETTINGS_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: PathLike) -> PolicySettings | None:
        """Read `policy.json` from `directory`, or None when there is none."""
        path = Path(directory) / SETTINGS_NAME
        if not path.is_file():
            return None
        return cls.from_dict(json.loads(path.read_text()), source=str(path))


# ---------------------------------------------------------------------- inputs and outputs


@dataclass
class Observation:
    """What the robot sees now.

    `images`: one uint8 RGB `[H, W, 3]` image per view, any size, either in the policy's
    view order or as a mapping by view name. `proprio`: `[proprio_dim]` in the data's units
    (normalised by the policy). `instruction`: the task in words.
    """

    images: Sequence[np.ndarray] | Mapping[str, np.ndarray]
    proprio: np.ndarray | Sequence[float]
    instruction: str


@dataclass(frozen=True)
class ViewCrop:
    """How a `source_height` x `source_width` image became the model's `height` x `width`:
    the centred crop `(top, left, crop_height, crop_width)`, then a resize."""

    top: int
    left: int
    crop_height: int
    crop_width: int
    height: int
    width: int

    @classmethod
    def centred(cls, source_height: int, source_width: int, height: int, width: int) -> ViewCrop:
        """The largest centred crop of the target aspect ratio."""
        if source_height * width > source_width * height:  # too tall: crop rows
            crop_height, crop_width = max(1, round(source_width * height / width)), source_width
        else:  # too wide (or exact): crop columns
            crop_height, crop_width = source_height, max(1, round(source_height * width / height))
        top, left = (source_height - crop_height) // 2, (source_width - crop_width) // 2
        return cls(top, left, crop_height, crop_width, height, width)

    def intrinsics(self, camera_matrix: np.ndarray) -> np.ndarray:
        """The 3x3 intrinsics of the model-resolution image, from the source camera's.

        Pixel centres at integer coordinates: `u' + 0.5 = (u + 0.5 - left) * width / crop_width`.
        """
        k = np.asarray(camera_matrix, dtype=np.float64)
        if k.shape != (3, 3):
            raise ValueError(f"camera_matrix: expected 3x3, got {k.shape}")
        scale_x, scale_y = self.width / self.crop_width, self.height / self.crop_height
        result = k.copy()
        result[0] = k[0] * scale_x
        result[1] = k[1] * scale_y
        result[0, 2] = (k[0, 2] + 0.5 - self.left) * scale_x - 0.5
        result[1, 2] = (k[1, 2] + 0.5 - self.top) * scale_y - 0.5
        return result


@dataclass
class ActionChunk:
    """The action chunk, ready the moment the action passes end.

    `actions` `[Na, action_dim]` float64 in the data's units (de-normalised);
    `proprio` `[Np - 1, proprio_dim]` the predicted future proprioception (the observed step
    excluded), de-normalised; `normalized_actions` the model's `[-1, 1]` values;
    `latency_s` seconds from `begin` to the chunk, of which `prepare_s` went to checking,
    resizing and encoding the observation; `seed` the noise seed when one was given.
    """

    actions: np.ndarray
    proprio: np.ndarray
    normalized_actions: np.ndarray
    latency_s: float
    prepare_s: float
    seed: int | None


@dataclass
class ImaginedFuture:
    """The imagined future frames (the observed frame excluded), per view in `view_names`
    order: `rgb` `[V, F, H, W, 3]` uint8, `depth` `[V, F, H, W]` float32 metres (None when the
    depth branch was off); `crops` how each input view was cropped (for its intrinsics);
    `elapsed_s` seconds from `begin` to the decoded future, of which `decode_s` went to the
    VAE decoding the latents."""

    view_names: tuple[str, ...]
    rgb: np.ndarray
    depth: np.ndarray | None
    crops: tuple[ViewCrop, ...]
    elapsed_s: float
    decode_s: float


@dataclass
class PolicyOutput:
    """`act`'s result: the chunk and, when imagination ran to the end, the future."""

    chunk: ActionChunk
    future: ImaginedFuture | None = None


# ---------------------------------------------------------------------- the policy


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
            [_prepare_image(image, crop, self.vae.device) for image, crop in zip(images, crops)],
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


# ---------------------------------------------------------------------- helpers


def _prepare_image(image: np.ndarray, crop: ViewCrop, device: torch.device) -> torch.Tensor:
    """uint8 `[H, W, 3]` -> float32 `[3, height, width]` in [-1, 1]: centre crop, then resize."""
    pixels = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    pixels = pixels[crop.top : crop.top + crop.crop_height, crop.left : crop.left + crop.crop_width]
    pixels = pixels.permute(2, 0, 1).float()[None]
    if (crop.crop_height, crop.crop_width) != (crop.height, crop.width):
        pixels = F.interpolate(
            pixels, size=(crop.height, crop.width), mode="bilinear", antialias=True
        ).clamp(0.0, 255.0)
    return pixels[0] / 127.5 - 1.0


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _require_number(name: str, value: Any, positive: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise PolicyConfigError(f"{name}: expected a finite number {bound}, got {value!r}")


def _require_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PolicyConfigError(f"{name}: expected an integer >= {minimum}, got {value!r}")


__all__ = [
    "ActionChunk",
    "ImaginedFuture",
    "Observation",
    "ObservationError",
    "PolicyConfigError",
    "PolicyOutput",
    "PolicyRun",
    "PolicySettings",
    "ViewCrop",
    "XWAMPolicy",
]
