"""Train the video VAE on a dataset's own views: the autoencoder stage of a CPU-sized model.

The released X-WAM runs on the Wan2.2 VAE. Where it cannot be used (no weights at hand, a
CPU), a small VAE of the same architecture (`tiny_vae_config`: diffusers' `AutoencoderKLWan`,
48 latent channels, 4x16x16 compression) is trained here on the frames the model will see, so
that imagined latents decode to pictures and depth that can be compared with the world's.

    python -m xwam_model.training.autoencoder --dataset D --output O [--steps N] ...
    xwam train-vae --dataset D --output O ...

Each step takes `batch_size` videos (`frames` = 1 + 4k frames of one view, a random
`crop` x `crop` window: the network is convolutional, so crops teach it what whole frames
need at a fraction of the cost), RGB or, with probability `depth_share`, metric depth mapped
to [-1, 1] over the dataset's range as the model does. Loss: L1 + MSE of the reconstruction
(from a posterior sample) plus `kl_weight` x KL. At the end the per-channel latent mean and
standard deviation are measured on the dataset and stored in the config (what `WanVAE`
normalises with), and `<output>/vae/` is written in the diffusers layout that
`WanVAE.from_pretrained`, `xwam train --vae` and a model YAML's `vae:` read. Held-out clips
(the dataset's validation split, or training clips if there is none) are reconstructed whole
at the end: RGB PSNR (dB) and depth RMSE (m) go to `<output>/vae_report.json`.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKLWan
from tqdm import tqdm

from ..data.dataset import ClipDataset
from ..normalization import Normalization
from ..vae import DepthRange, WanVAE, depth_to_video, tiny_vae_config
from .objective import pixels_to_video
from .trainer import cosine_with_warmup

VAE_FOLDER = "vae"
REPORT_FILE = "vae_report.json"
LOG_FILE = "vae_log.jsonl"


@dataclass(frozen=True)
class AutoencoderConfig:
    """Settings of a VAE training run."""

    dataset: str
    output_dir: str
    init_vae: str = ""
    """A diffusers AutoencoderKLWan folder to fine-tune; empty: `tiny_vae_config` from scratch."""
    steps: int = 2000
    batch_size: int = 8
    lr: float = 5e-4
    frames: int = 9
    """Frames per training video, 1 + 4k: the model's clip length (9 for 3 latent frames).
    Shorter videos train faster but leave the causal cache of later 4-frame groups untrained:
    a VAE trained on 5 frames reconstructs frames 5-8 of a 9-frame clip at ~10 dB instead of
    ~20 dB."""
    crop: int = 64
    """Side of the random square crop (a multiple of 16); 0 trains on whole frames."""
    depth_share: float = 0.5
    kl_weight: float = 1e-6
    seed: int = 0
    log_every: int = 25
    eval_clips: int = 8

    def __post_init__(self) -> None:
        if self.frames < 1 or (self.frames - 1) % 4:
            raise ValueError(f"frames: expected 1 + 4k, got {self.frames}")
        if self.crop < 0 or self.crop % 16:
            raise ValueError(f"crop: expected 0 or a multiple of 16, got {self.crop}")
        for name in ("steps", "batch_size", "log_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.depth_share <= 1.0:
            raise ValueError(f"depth_share: expected a value in [0, 1], got {self.depth_share}")


class _Videos:
    """Random single-view training videos (RGB or depth) cut from a dataset's clips."""

    def __init__(self, dataset: ClipDataset, config: AutoencoderConfig, ranges: list[DepthRange]):
        self.dataset, self.config, self.ranges = dataset, config, ranges
        self.rng = np.random.default_rng(config.seed)
        spec = dataset.spec
        self.height, self.width = spec.height, spec.width
        self.clip_frames = spec.frames_per_clip
        if config.frames > self.clip_frames:
            raise ValueError(f"frames: the dataset's clips hold only {self.clip_frames} frames")
        crop = config.crop or min(self.height, self.width)
        if crop > min(self.height, self.width):
            raise ValueError(f"crop {crop} exceeds the dataset's {self.height}x{self.width}")
        self.crop = crop

    def batch(self, depth: bool) -> torch.Tensor:
        """[B, 3, T, H, W] in [-1, 1]."""
        config, rng = self.config, self.rng
        videos = []
        while len(videos) < config.batch_size:
            item = self.dataset[int(rng.integers(len(self.dataset)))]
            view = int(rng.integers(item["video"].shape[1]))
            if depth and not bool(item["depth_valid"][view]):
                continue
            first = int(rng.integers(self.clip_frames - config.frames + 1))
            top = int(rng.integers(self.height - self.crop + 1))
            left = int(rng.integers(self.width - self.crop + 1))
            window = (
                slice(first, first + config.frames),
                slice(view, view + 1),
                slice(top, top + self.crop),
                slice(left, left + self.crop),
            )
            if depth:
                metres = item["depth"][window][None]  # [1, T, 1, h, w]
                range_ = self.ranges[view] if len(self.ranges) > 1 else self.ranges[0]
                videos.append(depth_to_video(metres, range_, nan_fill=range_.far)[:, :, :, 0])
            else:
                videos.append(pixels_to_video(item["video"][window][None])[:, :, :, 0])
        return torch.cat(videos)


def _reconstruction_losses(model: AutoencoderKLWan, video: torch.Tensor, generator, kl_weight):
    posterior = model.encode(video).latent_dist
    noise = torch.randn(posterior.mean.shape, generator=generator)
    sample = posterior.mean + posterior.std * noise
    reconstruction = model.decode(sample).sample
    l1 = (reconstruction - video).abs().mean()
    mse = ((reconstruction - video) ** 2).mean()
    kl = 0.5 * (posterior.mean**2 + posterior.var - 1.0 - posterior.logvar).mean()
    parts = {"l1": float(l1.detach()), "mse": float(mse.detach()), "kl": float(kl.detach())}
    return l1 + mse + kl_weight * kl, parts


@torch.no_grad()
def _latent_statistics(model: AutoencoderKLWan, videos: _Videos, batches: int) -> tuple[list, list]:
    """Per-channel mean and std of the posterior means over RGB and depth videos."""
    sums, squares, count = 0.0, 0.0, 0
    for index in range(batches):
        mode = model.encode(videos.batch(depth=bool(index % 2))).latent_dist.mode()
        flat = mode.transpose(0, 1).reshape(mode.shape[1], -1).double()
        sums = sums + flat.sum(1)
        squares = squares + (flat**2).sum(1)
        count += flat.shape[1]
    mean = sums / count
    std = (squares / count - mean**2).clamp_min(1e-8).sqrt()
    return [round(float(m), 5) for m in mean], [round(float(s), 5) for s in std]


@torch.no_grad()
def evaluate_reconstruction(
    vae: WanVAE, dataset: ClipDataset, ranges: list[DepthRange], clips: int
) -> dict[str, float]:
    """RGB PSNR (dB, uint8 peak) and depth RMSE (m) of whole clips encoded and decoded."""
    picks = np.linspace(0, len(dataset) - 1, min(clips, len(dataset))).round().astype(int)
    squared, pixels, depth_squared, depth_pixels = 0.0, 0, 0.0, 0
    range_arg = ranges[0] if len(ranges) == 1 else ranges
    for index in picks:
        item = dataset[int(index)]
        video = pixels_to_video(item["video"][None])
        decoded = vae.decode_video(vae.encode_video(video))
        actual = item["video"].numpy().astype(np.float64)
        predicted = ((decoded[0].permute(1, 2, 3, 4, 0) + 1.0) * 127.5).clamp(0, 255).round()
        squared += float(((predicted.numpy() - actual) ** 2).sum())
        pixels += actual.size
        valid_views = item["depth_valid"]
        if bool(valid_views.any()):
            depth = item["depth"][None]
            far = max(r.far for r in ranges)
            latents = vae.encode_depth(depth, range_arg, nan_fill=far)
            metres = vae.decode_depth(latents, range_arg)[0]
            near_t = torch.tensor([r.near for r in ranges]).view(1, -1, 1, 1)
            far_t = torch.tensor([r.far for r in ranges]).view(1, -1, 1, 1)
            truth = item["depth"]
            mask = torch.isfinite(truth) & (truth >= near_t) & (truth <= far_t)
            mask &= valid_views.view(1, -1, 1, 1)
            depth_squared += float(((metres - truth)[mask] ** 2).sum())
            depth_pixels += int(mask.sum())
    mse = squared / max(pixels, 1)
    return {
        "clips": len(picks),
        "rgb_psnr_db": round(10 * math.log10(255.0**2 / mse), 2) if mse > 0 else math.inf,
        "depth_rmse_m": round(math.sqrt(depth_squared / depth_pixels), 4) if depth_pixels else None,
    }


def train_autoencoder(config: AutoencoderConfig, *, progress: bool = True) -> dict:
    """Train (see the module docstring); the report written to `<output>/vae_report.json`."""
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    dataset_path = Path(config.dataset)
    train_data = ClipDataset(dataset_path, "train", _normalization(dataset_path))
    held_out = ClipDataset(dataset_path, "val", train_data.normalization)
    held_out = held_out if len(held_out) else train_data
    ranges = [DepthRange.from_dict(r) for r in train_data.spec.depth_ranges] or [
        DepthRange(0.05, 2.5)
    ]
    if config.init_vae:
        model = WanVAE.from_pretrained(config.init_vae).model
    else:
        model = WanVAE.from_config(tiny_vae_config(z_dim=48), seed=config.seed).model
    model.train().requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, cosine_with_warmup(config.steps, min(50, config.steps // 10), 0.1)
    )
    videos = _Videos(train_data, config, ranges)
    log = (output / LOG_FILE).open("w")
    started = time.monotonic()
    window: list[dict] = []
    for step in tqdm(range(1, config.steps + 1), desc="vae", unit="step", disable=not progress):
        depth = bool(torch.rand((), generator=generator) < config.depth_share)
        loss, parts = _reconstruction_losses(
            model, videos.batch(depth), generator, config.kl_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        window.append({"loss": float(loss.detach()), **parts, "depth": depth})
        if step % config.log_every == 0 or step == config.steps:
            record = {
                "step": step,
                "loss": float(np.mean([w["loss"] for w in window])),
                "mse": float(np.mean([w["mse"] for w in window])),
                "lr": schedule.get_last_lr()[0],
                "elapsed_s": round(time.monotonic() - started, 1),
            }
            log.write(json.dumps(record) + "\n")
            log.flush()
            window.clear()
    log.close()
    model.eval().requires_grad_(False)
    mean, std = _latent_statistics(model, videos, 16)
    model.register_to_config(latents_mean=mean, latents_std=std)
    model.save_pretrained(output / VAE_FOLDER)
    vae = WanVAE.from_pretrained(output / VAE_FOLDER)
    report = {
        "config": asdict(config),
        "train_time_s": round(time.monotonic() - started, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "held_out": evaluate_reconstruction(vae, held_out, ranges, config.eval_clips),
        "vae": str(output / VAE_FOLDER),
    }
    (output / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _normalization(dataset: Path) -> Normalization:
    from ..data.format import read_index

    return Normalization.from_dict(read_index(dataset).normalization, source=str(dataset))


def main(argv: list[str] | None = None, prog: str = "python -m xwam_model.training.autoencoder"):
    """The command line (`xwam train-vae`)."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset folder (xwam dataset build)")
    parser.add_argument("--output", required=True, help="run folder; the VAE goes to OUTPUT/vae")
    defaults = AutoencoderConfig("", "")
    for name in (
        "init_vae",
        "steps",
        "batch_size",
        "lr",
        "frames",
        "crop",
        "depth_share",
        "kl_weight",
        "seed",
        "log_every",
        "eval_clips",
    ):
        value = getattr(defaults, name)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(value),
            default=value,
            help=f"AutoencoderConfig.{name} (default {value!r})",
        )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    values = {k: v for k, v in vars(args).items() if k not in ("dataset", "output", "quiet")}
    try:
        config = AutoencoderConfig(args.dataset, args.output, **values)
        report = train_autoencoder(config, progress=not args.quiet)
    except (ValueError, FileNotFoundError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    held = report["held_out"]
    print(
        f"{prog}: {config.steps} steps in {report['train_time_s']:.0f} s; held-out "
        f"reconstruction RGB {held['rgb_psnr_db']} dB, depth RMSE {held['depth_rmse_m']} m; "
        f"VAE in {report['vae']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
