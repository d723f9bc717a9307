"""Clip latents encoded once: the frozen VAE's work taken out of the training loop.

The VAE is frozen and the clips are fixed, so every epoch would encode the same frames to the
same latents; on a CPU that encoding is most of a step (the tiny VAE: ~2 of 2.2 s at batch 8,
three 128x128 views). `LatentCache` encodes each training clip once, RGB and depth, and keeps
the latents (float16 by default, ~110 KB a clip for the `small` preset at 128x128) in memory
and in `<run>/latent_cache.pt`, which a resumed run reads back when the dataset and the VAE
are the ones it was made with. Clips are encoded whole (the VAE is causal in time, so a
clip's latents depend on where the clip starts); nothing is shared between overlapping clips.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.dataset import ClipDataset
from ..vae import DepthRange, WanVAE
from .objective import pixels_to_video

CACHE_FILE = "latent_cache.pt"


def vae_fingerprint(vae: WanVAE) -> str:
    """A digest of the VAE's weights and latent statistics (what the cache depends on)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(vae.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    config = {k: v for k, v in vae.model.config.items() if not k.startswith("_")}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class LatentCache:
    """Video and depth latents of every clip of a dataset split, by clip index."""

    def __init__(self, video: torch.Tensor, depth: torch.Tensor | None, key: dict):
        self.video = video  # [N, C, t, V, h, w]
        self.depth = depth  # [N, C, t, V, h, w] or None
        self.key = key

    def __len__(self) -> int:
        return len(self.video)

    def lookup(self, indices: torch.Tensor, device: torch.device):
        """Float32 video and depth latents of the clips `indices` on `device`."""
        video = self.video[indices].to(device, torch.float32)
        depth = None if self.depth is None else self.depth[indices].to(device, torch.float32)
        return video, depth

    @classmethod
    def build(
        cls,
        dataset: ClipDataset,
        vae: WanVAE,
        depth_ranges: list[DepthRange],
        *,
        batch_size: int = 8,
        dtype: torch.dtype = torch.float16,
        folder: Path | None = None,
        progress: bool = True,
    ) -> LatentCache:
        """Encode every clip of `dataset` (or read `folder/latent_cache.pt` if it fits)."""
        key = {
            "dataset": str(Path(dataset.path).resolve()),
            "split": dataset.split,
            "clips": [list(c) for c in dataset.clips],
            "vae": vae_fingerprint(vae),
            "depth_ranges": [r.to_dict() for r in depth_ranges],
            "dtype": str(dtype),
        }
        path = folder / CACHE_FILE if folder is not None else None
        if path is not None and path.is_file():
            stored = torch.load(path, map_location="cpu", weights_only=True)
            if stored.get("key") == key:
                return cls(stored["video"], stored.get("depth"), key)
        ranges = depth_ranges[0] if len(depth_ranges) == 1 else depth_ranges
        far = max(r.far for r in depth_ranges)
        videos, depths, any_depth = [], [], False
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
        for batch in tqdm(loader, desc="encode clips", unit="batch", disable=not progress):
            frames = pixels_to_video(batch["video"].to(vae.device))
            videos.append(vae.encode_video(frames).to("cpu", dtype))
            # Views without depth are encoded too (as the far end) and masked in the loss.
            depth = vae.encode_depth(batch["depth"].to(vae.device), ranges, nan_fill=far)
            depths.append(depth.to("cpu", dtype))
            any_depth |= bool(batch["depth_valid"].any())
        video = torch.cat(videos)
        depth = torch.cat(depths) if any_depth else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            torch.save({"key": key, "video": video, "depth": depth}, partial)
            partial.replace(path)
        return cls(video, depth, key)
