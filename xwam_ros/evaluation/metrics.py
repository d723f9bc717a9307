"""The 4D quality of an imagined future against what the simulator then rendered.

RGB: PSNR and SSIM. Depth: absolute relative error and RMSE over the rendered depth's valid
readings. (Geometry, the Chamfer distance of the unprojected clouds, is
`xwam_model.geometry`'s.) Pure numpy / scikit-image, so it runs without ROS or torch.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

_PEAK = 255
# skimage's default window; 32x32 images still hold it comfortably.
_SSIM_WINDOW = 7


def _rgb_pair(predicted: np.ndarray, actual: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predicted, actual = np.asarray(predicted), np.asarray(actual)
    for name, image in (("predicted", predicted), ("actual", actual)):
        if image.dtype != np.uint8:
            raise ValueError(f"{name}: expected uint8 RGB, got {image.dtype}")
        if image.ndim not in (3, 4) or image.shape[-1] != 3:
            raise ValueError(f"{name}: expected [H, W, 3] or [N, H, W, 3], got {image.shape}")
    if predicted.shape != actual.shape:
        raise ValueError(f"shape mismatch: predicted {predicted.shape}, actual {actual.shape}")
    if predicted.size == 0:
        raise ValueError(f"empty images: {predicted.shape}")
    return predicted, actual


def rgb_psnr(predicted: np.ndarray, actual: np.ndarray) -> float:
    """PSNR in dB (peak 255) of uint8 RGB images `[H, W, 3]` or stacks `[N, H, W, 3]`.

    The mean squared error is taken over the whole stack, as one signal; identical inputs
    give `math.inf`.
    """
    predicted, actual = _rgb_pair(predicted, actual)
    # skimage would divide by zero (with a RuntimeWarning) to get the same answer.
    if np.array_equal(predicted, actual):
        return math.inf
    return float(peak_signal_noise_ratio(actual, predicted, data_range=_PEAK))


def rgb_ssim(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Mean SSIM of uint8 RGB images `[H, W, 3]` or stacks `[N, H, W, 3]` (1 = identical).

    Each image is scored on its own (channels averaged, `channel_axis=-1`, `data_range=255`)
    and the scores are averaged. The window is skimage's default 7x7 uniform one, which fits
    images down to 7x7 (32x32 model frames included); smaller images use the largest odd
    window that fits, and images under 3x3 are refused.
    """
    predicted, actual = _rgb_pair(predicted, actual)
    if predicted.ndim == 3:
        predicted, actual = predicted[None], actual[None]
    side = min(predicted.shape[1:3])
    window = min(_SSIM_WINDOW, side if side % 2 else side - 1)
    if window < 3:
        raise ValueError(f"images too small for SSIM: {predicted.shape[1:3]}, need 3x3")
    scores = [
        structural_similarity(a, p, channel_axis=-1, data_range=_PEAK, win_size=window)
        for p, a in zip(predicted, actual)
    ]
    return float(np.mean(scores))


def depth_errors(
    predicted: np.ndarray, actual: np.ndarray, near: float, far: float
) -> dict[str, float]:
    """Depth error of a predicted metric depth against the rendered one.

    `predicted` and `actual` are metres, `[H, W]` or `[N, H, W]`, of one shape. Scored over
    the pixels where `actual` is a valid reading (finite, within `[near, far]`) and
    `predicted` is finite. Returns `abs_rel` (mean |p - a| / a), `rmse_m` (metres) and
    `valid_pixels` (how many pixels were scored, to weight averages over frames).
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if predicted.shape != actual.shape:
        raise ValueError(f"shape mismatch: predicted {predicted.shape}, actual {actual.shape}")
    if actual.ndim not in (2, 3):
        raise ValueError(f"depth: expected [H, W] or [N, H, W], got {actual.shape}")
    # near > 0 keeps the relative error's denominator away from zero.
    if not (math.isfinite(near) and math.isfinite(far) and 0 < near < far):
        raise ValueError(f"depth range: expected 0 < near < far, got near={near}, far={far}")
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(actual) & (actual >= near) & (actual <= far) & np.isfinite(predicted)
    count = int(valid.sum())
    if count == 0:
        raise ValueError(
            f"no valid pixel: no rendered depth within [{near}, {far}] m with a finite prediction"
        )
    p, a = predicted[valid], actual[valid]
    return {
        "abs_rel": float(np.mean(np.abs(p - a) / a)),
        "rmse_m": float(np.sqrt(np.mean((p - a) ** 2))),
        "valid_pixels": count,
    }
