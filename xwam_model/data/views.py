"""Camera images to the model's view size, exactly as the policy prepares them at run time.

Training frames must look like deployment frames: the same centred crop to the model's aspect
ratio (`ViewCrop.centred`) and the same antialiased bilinear resize as `XWAMPolicy.begin`.
The only difference is that the dataset keeps uint8 (rounded), within half a grey level of
the policy's float result. Depth is cropped the same way and resized by nearest neighbour, so
no depth is invented across object edges and missing readings stay missing.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..policy import ViewCrop


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 RGB `[H, W, 3]` -> uint8 `[height, width, 3]` (centre crop, antialiased resize)."""
    crop = ViewCrop.centred(image.shape[0], image.shape[1], height, width)
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8))  # a writable copy
    pixels = pixels[crop.top : crop.top + crop.crop_height, crop.left : crop.left + crop.crop_width]
    pixels = pixels.permute(2, 0, 1).float()[None]
    if (crop.crop_height, crop.crop_width) != (height, width):
        pixels = F.interpolate(pixels, size=(height, width), mode="bilinear", antialias=True)
    pixels = pixels.clamp(0.0, 255.0).round().to(torch.uint8)
    return pixels[0].permute(1, 2, 0).numpy()


def resize_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Metres `[H, W]` (NaN = no reading) -> `[height, width]`: centre crop, nearest neighbour."""
    crop = ViewCrop.centred(depth.shape[0], depth.shape[1], height, width)
    cropped = depth[crop.top : crop.top + crop.crop_height, crop.left : crop.left + crop.crop_width]
    rows = ((np.arange(height) + 0.5) * crop.crop_height / height).astype(np.int64)
    cols = ((np.arange(width) + 0.5) * crop.crop_width / width).astype(np.int64)
    return np.ascontiguousarray(cropped[rows[:, None], cols[None, :]])


def view_intrinsics(
    k: np.ndarray, source_height: int, source_width: int, height: int, width: int
) -> np.ndarray:
    """The intrinsics of a view after `resize_rgb` (for unprojecting its depth later)."""
    return ViewCrop.centred(source_height, source_width, height, width).intrinsics(k)
