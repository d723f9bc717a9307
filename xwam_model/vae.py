"""The Wan2.2 video VAE as X-WAM uses it: camera views, normalised latents and metric depth.

The network is diffusers' `AutoencoderKLWan`; this module only adapts its inputs and outputs:

- Layout. X-WAM's video tensors are `[B, C, T, V, H, W]` (views after frames); the VAE sees
  each view as its own video, so views fold into the batch and unfold afterwards.
- Normalisation. Latents are the posterior mode (the mean, as diffusers' Wan pipelines encode
  conditioning frames), normalised per channel exactly like those pipelines:
  `z = (mode - latents_mean) * (1 / latents_std)`, and back `mode = z / (1 / latents_std) +
  latents_mean`, with the statistics from the VAE's own config.
- Frames. The VAE is causal in time: `T = 1 + 4k` frames give `1 + k` latent frames (the
  observed frame alone gives one).
- Depth, as the paper does: metres -> [-1, 1] over a metric range (`DepthRange`, per view or
  shared; configuration that travels with a checkpoint) -> three equal channels -> the same
  VAE. Decoding takes the mean of the three channels and maps back to metres.

Every method runs without autograd (`torch.no_grad`, so the latents can still feed a model
that is being trained). Latents and decoded videos are returned as float32 on the VAE's
device; the network itself may run in bfloat16 on a GPU.
"""

from __future__ import annotations

import copy
import math
import numbers
import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders.autoencoder_kl_wan import (
    CACHE_T,
    WanCausalConv3d,
    unpatchify,
)

PathLike = str | os.PathLike

# Shape of one camera video: channels, frames, (views,) height, width after the batch axis.
_RGB_CHANNELS = 3
_VIEW_AXIS = 3  # in [B, C, T, V, H, W]


# ------------------------------------------------------------------------------ configs


def wan22_vae_architecture() -> dict[str, Any]:
    """Architecture of the Wan2.2-TI2V-5B VAE in `AutoencoderKLWan` keywords (its `vae/` config).

    48 latent channels, 4x16x16 compression: pixels are first folded 2x2 into 12 channels
    (`patch_size` 2), then downsampled 8x in space and 4x in time. The per-channel latent
    statistics (`latents_mean`, `latents_std`) are not included: they belong to the trained
    weights and are read from the checkpoint's config by `WanVAE.from_pretrained`.
    """
    return dict(
        base_dim=160,
        decoder_base_dim=256,
        z_dim=48,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=2,
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_temporal=4,
        scale_factor_spatial=16,
    )


def tiny_vae_config(z_dim: int = 8) -> dict[str, Any]:
    """A ~2.7 M-parameter VAE of the Wan2.2 architecture for CPU tests (same 4x16x16 stride).

    `z_dim` 8 pairs with the transformer's `tiny` preset (8 latent channels). The latent
    statistics are arbitrary but not trivial (mean != 0, std != 1), so a test can tell
    whether normalisation was applied.
    """
    config = wan22_vae_architecture()
    config.update(
        base_dim=16,
        decoder_base_dim=16,
        z_dim=z_dim,
        num_res_blocks=1,
        latents_mean=[round(-0.5 + i / max(z_dim - 1, 1), 4) for i in range(z_dim)],
        latents_std=[round(0.5 + 1.5 * i / max(z_dim - 1, 1), 4) for i in range(z_dim)],
    )
    return config


# ------------------------------------------------------------------------------ depth range


@dataclass(frozen=True)
class DepthRange:
    """The metric range (metres) that depth in [-1, 1] spans: -1 is `near`, +1 is `far`."""

    near: float
    far: float

    def __post_init__(self) -> None:
        for name in ("near", "far"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"DepthRange.{name}: expected a number of metres, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"DepthRange.{name}: expected a finite number, got {value!r}")
        if self.near < 0:
            raise ValueError(f"DepthRange.near: expected >= 0 metres, got {self.near}")
        if not self.far > self.near:
            raise ValueError(
                f"DepthRange: expected far > near, got near={self.near}, far={self.far}"
            )

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> DepthRange:
        """Build from `{"near": metres, "far": metres}` (as stored in a config file)."""
        if not isinstance(value, dict) or set(value) != {"near", "far"}:
            raise ValueError(
                f"DepthRange: expected a mapping with keys near and far, got {value!r}"
            )
        return cls(near=value["near"], far=value["far"])

    def to_dict(self) -> dict[str, float]:
        """The `{"near", "far"}` mapping `from_dict` reads."""
        return {"near": float(self.near), "far": float(self.far)}


DepthRanges = DepthRange | Sequence[DepthRange]
"""One range for every view, or one per view in the model's view order."""


def _range_tensors(
    ranges: DepthRanges, num_views: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-view near and far as float64 tensors shaped to broadcast over `[B, T, V, H, W]`."""
    if isinstance(ranges, DepthRange):
        ranges = [ranges] * num_views
    ranges = list(ranges)
    if len(ranges) != num_views or not all(isinstance(r, DepthRange) for r in ranges):
        raise ValueError(
            f"depth ranges: expected one DepthRange or {num_views} (one per view), got {ranges!r}"
        )
    near = torch.tensor([r.near for r in ranges], dtype=torch.float64, device=device)
    far = torch.tensor([r.far for r in ranges], dtype=torch.float64, device=device)
    return near.view(1, 1, -1, 1, 1), far.view(1, 1, -1, 1, 1)


def depth_to_video(
    depth: torch.Tensor | np.ndarray, ranges: DepthRanges, *, nan_fill: float | None = None
) -> torch.Tensor:
    """Metric depth `[B, T, V, H, W]` -> a 3-channel video `[B, 3, T, V, H, W]` in [-1, 1].

    Depth outside the range is clipped (REP 118's +Inf "too far" becomes +1, -Inf "too close"
    becomes -1). NaN ("no reading") is refused unless `nan_fill` gives the metres to use.
    """
    depth = _as_depth_tensor(depth)
    if nan_fill is not None:
        depth = torch.nan_to_num(depth, nan=float(nan_fill), posinf=math.inf, neginf=-math.inf)
    elif torch.isnan(depth).any():
        raise ValueError(
            f"depth: {int(torch.isnan(depth).sum())} NaN values; give nan_fill (metres) to "
            "replace them"
        )
    near, far = _range_tensors(ranges, depth.shape[2], depth.device)
    unit = (depth.double() - near) * (2.0 / (far - near)) - 1.0
    unit = unit.clamp(-1.0, 1.0).float()
    return unit.unsqueeze(1).expand(-1, _RGB_CHANNELS, -1, -1, -1, -1)


def video_to_depth(video: torch.Tensor, ranges: DepthRanges) -> torch.Tensor:
    """A decoded depth video `[B, 3, T, V, H, W]` in [-1, 1] -> metres `[B, T, V, H, W]`.

    The three channels are averaged (the VAE decodes them independently) and the result is
    clipped to each view's range.
    """
    _require_float_tensor("depth video", video, ndims=(6,))
    if video.shape[1] != _RGB_CHANNELS:
        raise ValueError(
            f"depth video: expected {_RGB_CHANNELS} channels in [B, 3, T, V, H, W], "
            f"got shape {tuple(video.shape)}"
        )
    unit = video.double().mean(dim=1)
    near, far = _range_tensors(ranges, unit.shape[2], unit.device)
    metres = near + (unit + 1.0) * (0.5 * (far - near))
    return torch.minimum(torch.maximum(metres, near), far).float()


def _as_depth_tensor(depth: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(depth, np.ndarray):
        depth = torch.from_numpy(depth)
    _require_float_tensor("depth (metres)", depth, ndims=(5,))
    return depth


# ------------------------------------------------------------------------------ RGB frames


def frames_to_video(frames: np.ndarray | torch.Tensor, device: Any = None) -> torch.Tensor:
    """uint8 RGB frames `[V, H, W, 3]` (one per view) -> a float32 video `[1, 3, 1, V, H, W]`.

    Pixel values map linearly from [0, 255] to [-1, 1]. The uint8 data is moved to `device`
    before conversion, a quarter of the bytes of float32.
    """
    if isinstance(frames, np.ndarray):
        frames = np.ascontiguousarray(frames)  # e.g. a BGR->RGB view with negative strides
    frames = torch.as_tensor(frames)
    if frames.dtype != torch.uint8:
        raise TypeError(f"frames: expected uint8 RGB [V, H, W, 3], got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != _RGB_CHANNELS:
        raise ValueError(
            f"frames: expected uint8 RGB [V, H, W, 3], got shape {tuple(frames.shape)}"
        )
    video = frames.to(device).permute(3, 0, 1, 2).float() / 127.5 - 1.0  # [3, V, H, W]
    return video.unsqueeze(1).unsqueeze(0)


def video_to_uint8(video: torch.Tensor, *, truncate: bool = False) -> np.ndarray:
    """A video in [-1, 1], channels on axis 1 (`[B, 3, T, V, H, W]` or `[B, 3, T, H, W]`) ->
    uint8 numpy with channels last (`[B, T, V, H, W, 3]` or `[B, T, H, W, 3]`).

    `(x + 1) * 127.5` rounded, or with `truncate` rounded down as the X-WAM reference does
    (`torch.clamp((x + 1) * 127.5, 0, 255).byte()`, `runners/xwam_runner.py`)."""
    _require_float_tensor("video", video, ndims=(5, 6))
    if video.shape[1] != _RGB_CHANNELS:
        raise ValueError(f"video: expected 3 channels on axis 1, got shape {tuple(video.shape)}")
    pixels = (video.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5
    pixels = pixels.clamp(0.0, 255.0) if truncate else pixels.round()
    return pixels.to(torch.uint8).movedim(1, -1).cpu().numpy()


# ------------------------------------------------------------------------------ the adapter


class WanVAE:
    """`AutoencoderKLWan` with X-WAM's multi-view layout, latent normalisation and depth mapping.

    Build it with `from_pretrained(directory)` (a diffusers `vae/` folder, or a pipeline folder
    holding one) or `from_config(config)` (random weights, e.g. `tiny_vae_config()`).
    """

    def __init__(self, model: AutoencoderKLWan) -> None:
        if not isinstance(model, AutoencoderKLWan):
            raise TypeError(f"WanVAE: expected an AutoencoderKLWan, got {type(model).__name__}")
        config = model.config
        for name in ("latents_mean", "latents_std"):
            if len(config[name]) != config.z_dim:
                raise ValueError(
                    f"VAE config {name}: expected {config.z_dim} values (z_dim), "
                    f"got {len(config[name])}"
                )
        if min(config.latents_std) <= 0:
            raise ValueError(
                f"VAE config latents_std: expected positive values, got {config.latents_std}"
            )
        self.model = model.eval().requires_grad_(False)
        _install_single_frame_convs(model)
        # Built exactly as diffusers' Wan pipelines build them (float32, reciprocal of std),
        # so normalised latents are bit-identical to theirs.
        self._mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1)
        self._inv_std = 1.0 / torch.tensor(config.latents_std).view(1, -1, 1, 1, 1)

    # -------------------------------------------------------------- construction

    @classmethod
    def from_pretrained(
        cls,
        directory: PathLike,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> WanVAE:
        """Load from a local diffusers folder (`config.json` + weights), never the network.

        `directory` may also be a pipeline folder with the VAE in its `vae/` subfolder.
        """
        directory = Path(directory)
        if (
            not (directory / "config.json").is_file()
            and (directory / "vae" / "config.json").is_file()
        ):
            directory = directory / "vae"
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(
                f"VAE: expected a diffusers AutoencoderKLWan folder with config.json at "
                f"{directory} (or its vae/ subfolder)"
            )
        model = AutoencoderKLWan.from_pretrained(
            directory, torch_dtype=dtype, local_files_only=True
        )
        return cls(model.to(device))

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
    ) -> WanVAE:
        """Build with random weights (seeded, the global RNG untouched) from `AutoencoderKLWan`
        keywords, which must include `latents_mean` and `latents_std`."""
        missing = {"z_dim", "latents_mean", "latents_std"} - set(config)
        if missing:
            raise ValueError(f"VAE config: missing keys {sorted(missing)}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoencoderKLWan(**config)
        if dtype != torch.float32:
            # `Module.type` casts like `to(dtype)` without diffusers' warning about fp32 modules
            # (AutoencoderKLWan has none).
            model = model.type(dtype)
        return cls(model.to(device))

    def in_dtype(self, dtype: torch.dtype) -> WanVAE:
        """This VAE with its weights in `dtype`: itself when they already are, else a copy on
        the same device (the weights once more in memory). Used to decode in bfloat16 what
        a float32 model imagined (`XWAMPolicy.imagination_vae`)."""
        if dtype == self.dtype:
            return self
        # `Module.type` casts like `to(dtype)` without diffusers' warning about fp32 modules.
        return WanVAE(copy.deepcopy(self.model).type(dtype))

    # -------------------------------------------------------------- properties

    @property
    def latent_channels(self) -> int:
        """Channels of a latent (48 for Wan2.2)."""
        return int(self.model.config.z_dim)

    @property
    def temporal_compression(self) -> int:
        """Video frames per latent frame after the first (4 for Wan2.2)."""
        config = self.model.config
        steps = len(config.dim_mult) - 1  # the last stage never downsamples
        return 2 ** sum(bool(flag) for flag in config.temperal_downsample[:steps])

    @property
    def spatial_compression(self) -> int:
        """Pixels per latent along each image axis (16 for Wan2.2: 2x2 patches, 8x downsampling)."""
        config = self.model.config
        return (config.patch_size or 1) * 2 ** (len(config.dim_mult) - 1)

    @property
    def device(self) -> torch.device:
        """Where the network's weights are."""
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The network's weight dtype (inputs are cast to it)."""
        return next(self.model.parameters()).dtype

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """Latent (frames, height, width) of a video of `frames` x `height` x `width` pixels."""
        self._check_video_size(frames, height, width)
        return (
            1 + (frames - 1) // self.temporal_compression,
            height // self.spatial_compression,
            width // self.spatial_compression,
        )

    # -------------------------------------------------------------- normalisation

    def normalize(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw VAE latents `[N, C, T, H, W]` -> normalised float32 (diffusers' Wan convention)."""
        mean, inv_std = self._statistics(raw.device)
        return (raw.float() - mean) * inv_std

    def denormalize(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents `[N, C, T, H, W]` -> raw VAE latents, float32 (`normalize` undone)."""
        mean, inv_std = self._statistics(latents.device)
        return latents.float() / inv_std + mean

    def _statistics(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if self._mean.device != device:
            self._mean, self._inv_std = self._mean.to(device), self._inv_std.to(device)
        return self._mean, self._inv_std

    # -------------------------------------------------------------- RGB

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """A video in [-1, 1] -> normalised latents, float32.

        `[B, 3, T, V, H, W]` -> `[B, C, 1 + (T-1)/4, V, H/16, W/16]` (views kept), or a single
        view `[B, 3, T, H, W]` -> `[B, C, 1 + (T-1)/4, H/16, W/16]`. `T` must be `1 + 4k`.
        """
        _require_float_tensor("video", video, ndims=(5, 6))
        if video.shape[1] != _RGB_CHANNELS:
            raise ValueError(
                f"video: expected 3 channels on axis 1 ([B, 3, T, V, H, W] or [B, 3, T, H, W]), "
                f"got shape {tuple(video.shape)}"
            )
        self._check_video_size(video.shape[2], video.shape[-2], video.shape[-1])
        peak = float(video.detach().abs().amax())  # NaN fails the comparison below too
        if not peak <= 1.0 + 1e-3:
            raise ValueError(f"video: expected finite values in [-1, 1], got peak |value| {peak}")
        folded, views = _fold_views(video)
        raw = self.model.encode(folded.to(self.device, self.dtype)).latent_dist.mode()
        return _unfold_views(self.normalize(raw), views)

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The observed uint8 RGB frame of each view, `[V, H, W, 3]` -> `[1, C, 1, V, h, w]`."""
        return self.encode_video(frames_to_video(frames, self.device))

    @torch.no_grad()
    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents `[B, C, t, V, h, w]` (or `[B, C, t, h, w]`) -> float32 video in
        [-1, 1], `[B, 3, 1 + 4(t-1), V, 16h, 16w]` (or without the view axis)."""
        raw, views = self._decoder_input(latents)
        return _unfold_views(self.model.decode(raw).sample.float(), views)

    @torch.no_grad()
    def decode_video_steps(self, latents: torch.Tensor) -> Generator[int, None, torch.Tensor]:
        """`decode_video` in pieces: a generator that yields the index of the latent frame
        it decodes next before each piece (`pieces_per_latent_frame` per frame: the decoder's
        input and middle blocks with its first upsampling block, then each further one) and
        returns the same video.

        Wan's decoder is causal in time: diffusers' `AutoencoderKLWan` decodes latent frame
        by latent frame, carrying each causal convolution's last frames in a feature cache
        (`_decode`). This makes the same decoder calls with the same inputs, so the video is
        identical, but keeps the cache here rather than on the module: the VAE may encode or
        decode something else between two pieces (another observation's decode runs between
        the pieces of an imagination) without disturbing it. The blocks of one frame are
        pieces of their own since the last, at the full resolution, are most of the work (the
        small checkpoint's decoder at 128 x 128, three views, one thread: 0.01, 0.04, 0.09 and
        0.12 s of a 0.25 s frame): a worker fits them in the time between two decodes. Where
        diffusers would tile the decode (tiling enabled and latents larger than a tile) it is
        one piece. Raises ValueError for latents of the wrong shape or with NaN/Inf.
        """
        raw, views = self._decoder_input(latents)
        model = self.model
        tile_h = model.tile_sample_min_height // model.spatial_compression_ratio
        tile_w = model.tile_sample_min_width // model.spatial_compression_ratio
        if model.use_tiling and (raw.shape[-1] > tile_w or raw.shape[-2] > tile_h):
            yield 0
            return _unfold_views(model.decode(raw).sample.float(), views)
        x = model.post_quant_conv(raw)
        cache: list[torch.Tensor | None] = [None] * self._decoder_cache_slots
        frames = []
        for index in range(x.shape[2]):
            stages = _decoder_stages(model.decoder, x[:, :, index : index + 1], cache, index == 0)
            frames.append((yield from _each_yield_as(stages, index)))
        video = torch.cat(frames, 2)
        if model.config.patch_size is not None:
            video = unpatchify(video, patch_size=model.config.patch_size)
        return _unfold_views(torch.clamp(video, min=-1.0, max=1.0).float(), views)

    def _decoder_input(self, latents: torch.Tensor) -> tuple[torch.Tensor, int | None]:
        """Checked normalised latents -> raw latents `[N, C, t, h, w]` in the VAE's dtype and
        the number of views folded into N (None: no view axis)."""
        _require_float_tensor("latents", latents, ndims=(5, 6))
        if latents.shape[1] != self.latent_channels:
            raise ValueError(
                f"latents: expected {self.latent_channels} channels on axis 1, "
                f"got shape {tuple(latents.shape)}"
            )
        if not bool(torch.isfinite(latents).all()):
            raise ValueError("latents: expected finite values, got NaN or Inf")
        folded, views = _fold_views(latents)
        return self.denormalize(folded.to(self.device)).to(self.dtype), views

    @property
    def pieces_per_latent_frame(self) -> int:
        """How many pieces `decode_video_steps` decodes each latent frame in (one per
        upsampling block of the decoder: 4 for Wan2.2's)."""
        return len(self.model.decoder.up_blocks)

    @property
    def _decoder_cache_slots(self) -> int:
        """One feature-cache slot per causal convolution of the decoder (as diffusers counts)."""
        return sum(isinstance(m, WanCausalConv3d) for m in self.model.decoder.modules())

    # -------------------------------------------------------------- depth

    @torch.no_grad()
    def encode_depth(
        self,
        depth: torch.Tensor | np.ndarray,
        ranges: DepthRanges,
        *,
        nan_fill: float | None = None,
    ) -> torch.Tensor:
        """Metric depth `[B, T, V, H, W]` (metres) -> normalised latents `[B, C, t, V, h, w]`.

        See `depth_to_video` for clipping and `nan_fill`.
        """
        depth = _as_depth_tensor(depth).to(self.device)  # map on the device: 1 channel moves
        return self.encode_video(depth_to_video(depth, ranges, nan_fill=nan_fill))

    @torch.no_grad()
    def decode_depth(self, latents: torch.Tensor, ranges: DepthRanges) -> torch.Tensor:
        """Depth latents `[B, C, t, V, h, w]` -> metres `[B, T, V, H, W]`, clipped to each range."""
        if latents.ndim != 6:
            raise ValueError(
                f"depth latents: expected [B, C, t, V, h, w], got shape {tuple(latents.shape)}"
            )
        return video_to_depth(self.decode_video(latents), ranges)

    # -------------------------------------------------------------- checks

    def _check_video_size(self, frames: int, height: int, width: int) -> None:
        step = self.temporal_compression
        if frames < 1 or (frames - 1) % step:
            raise ValueError(
                f"video: expected 1 + {step}k frames (1, {1 + step}, ...), got {frames}"
            )
        size = self.spatial_compression
        if height % size or width % size or height == 0 or width == 0:
            raise ValueError(
                f"video: expected height and width that are multiples of {size}, "
                f"got {height}x{width}"
            )


def _decoder_stages(
    decoder: torch.nn.Module, x: torch.Tensor, cache: list, first_chunk: bool
) -> Generator[None, None, torch.Tensor]:
    """diffusers' `WanDecoder3d.forward` on one latent frame `x` with the feature `cache`,
    as a generator that yields before each upsampling block but the first and returns the
    decoded frames. The same modules called in the same order with the same cache slots
    (input convolution, middle block, upsampling blocks, norm, output convolution)."""
    slot = [0]  # the next cache slot, advanced by every cached causal convolution
    x = _cached_causal_conv(decoder.conv_in, x, cache, slot)
    x = decoder.mid_block(x, feat_cache=cache, feat_idx=slot)
    for number, up_block in enumerate(decoder.up_blocks):
        if number:
            yield
        x = up_block(x, feat_cache=cache, feat_idx=slot, first_chunk=first_chunk)
    x = decoder.nonlinearity(decoder.norm_out(x))
    return _cached_causal_conv(decoder.conv_out, x, cache, slot)


def _cached_causal_conv(
    conv: torch.nn.Module, x: torch.Tensor, cache: list, slot: list[int]
) -> torch.Tensor:
    """One of the decoder's own causal convolutions with its cache slot, as diffusers' decoder
    runs it: the slot's cached frames precede `x`, then the slot keeps `x`'s last `CACHE_T`
    frames (with the previous call's last frame when `x` has fewer than two)."""
    index = slot[0]
    kept = x[:, :, -CACHE_T:].clone()
    if kept.shape[2] < 2 and cache[index] is not None:
        kept = torch.cat([cache[index][:, :, -1:].to(kept.device), kept], dim=2)
    x = conv(x, cache[index])
    cache[index] = kept
    slot[0] += 1
    return x


def _each_yield_as(
    pieces: Generator[None, None, torch.Tensor], value: int
) -> Generator[int, None, torch.Tensor]:
    """`pieces` yielding `value` before its first piece and in place of each of its own
    yields (so before every piece); returns what it returns."""
    yield value
    while True:
        try:
            next(pieces)
        except StopIteration as finished:
            return finished.value
        yield value


def _install_single_frame_convs(model: AutoencoderKLWan) -> None:
    """Give each causal 3-D convolution of `model` a single-frame fast path.

    A causal convolution pads `kernel_t - 1` frames of zeros before its input. On one frame
    with no cached frames (the observed frame a policy encodes every call, and the first
    latent frame of a decode) every temporal tap but the last meets those zeros, so the
    result is a 2-D convolution with the last temporal slice of the kernel: a third of the
    work, and no padded copy. Same sums but for the zero terms (float32 results agree to
    rounding, ~1e-7). Any other call (several frames, a cache) runs the original forward.
    """
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d

    for module in model.modules():
        if isinstance(module, WanCausalConv3d) and "forward" not in module.__dict__:
            module.forward = _single_frame_forward.__get__(module)


def _single_frame_forward(self, x: torch.Tensor, cache_x: torch.Tensor | None = None):
    """`WanCausalConv3d.forward`, with the single-frame case as a 2-D convolution."""
    kernel_t = self.kernel_size[0]
    if (
        x.shape[2] == 1
        and (cache_x is None or kernel_t == 1)
        and self._padding[4] == kernel_t - 1
        and self.stride[0] == 1
        and self.dilation[0] == 1
    ):
        left, right, top, bottom = self._padding[:4]
        padded = (
            F.pad(x[:, :, 0], (left, right, top, bottom)) if any(self._padding[:4]) else x[:, :, 0]
        )
        out = F.conv2d(
            padded, self.weight[:, :, -1], self.bias, self.stride[1:], 0, self.dilation[1:]
        )
        return out[:, :, None]
    return type(self).forward(self, x, cache_x)


def _fold_views(x: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """`[B, C, T, V, H, W]` -> `[B*V, C, T, H, W]` (batch-major); 5-D passes through."""
    if x.ndim == 5:
        return x, None
    batch, channels, frames, views, height, width = x.shape
    folded = x.permute(0, _VIEW_AXIS, 1, 2, 4, 5).reshape(
        batch * views, channels, frames, height, width
    )
    return folded, views


def _unfold_views(x: torch.Tensor, views: int | None) -> torch.Tensor:
    """Inverse of `_fold_views`."""
    if views is None:
        return x
    batch_views, channels, frames, height, width = x.shape
    x = x.reshape(batch_views // views, views, channels, frames, height, width)
    return x.permute(0, 2, 3, 1, 4, 5).contiguous()


def _require_float_tensor(name: str, value: Any, ndims: tuple[int, ...]) -> None:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if value.ndim not in ndims:
        raise ValueError(
            f"{name}: expected {' or '.join(f'{n}-D' for n in ndims)}, "
            f"got shape {tuple(value.shape)}"
        )
