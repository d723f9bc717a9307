"""The 4D quality of an imagined future against what the simulator then rendered.

RGB: PSNR and SSIM. Depth: absolute relative error and RMSE over the rendered depth's valid
readings. Geometry: the symmetric Chamfer distance between the point clouds the two depth
images unproject to. Pure numpy / scipy / scikit-image, so it runs without ROS or torch.

Camera conventions are those of `xwam_model.geometry` (REP 103 / 118): the optical frame has
x right, y down, z forward; depth is metres along z; pixel (u, v) = (column, row) has its
centre at integer coordinates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree
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


def _cloud(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{name}: expected points [N, 3], got {points.shape}")
    if len(points) == 0:
        raise ValueError(f"{name}: empty point cloud")
    if not np.isfinite(points).all():
        raise ValueError(f"{name}: non-finite coordinates")
    return points


def chamfer_distance(predicted_points: np.ndarray, actual_points: np.ndarray) -> float:
    """Symmetric Chamfer distance, in metres (not squared), of clouds `[N, 3]` and `[M, 3]`.

    The mean of the two directions: the mean distance from each predicted point to its
    nearest actual point, and from each actual point to its nearest predicted point.
    """
    predicted = _cloud("predicted_points", predicted_points)
    actual = _cloud("actual_points", actual_points)
    to_actual, _ = cKDTree(actual).query(predicted)
    to_predicted, _ = cKDTree(predicted).query(actual)
    return float((to_actual.mean() + to_predicted.mean()) / 2.0)


def unproject(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    near: float,
    far: float,
    stride: int = 1,
) -> np.ndarray:
    """Points `[N, 3]` float32 in the camera's optical frame from a metric depth `[H, W]`.

    For comparing imagined and rendered geometry with `chamfer_distance`. Keeps every
    `stride`-th row and column, and only finite depths within `[near, far]`.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth: expected [H, W], got {depth.shape}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride: expected a positive integer, got {stride!r}")
    if not (fx > 0 and fy > 0):
        raise ValueError(f"focal lengths: expected positive, got fx={fx}, fy={fy}")
    rows, cols = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    z = depth[rows, cols].astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(z) & (z >= near) & (z <= far)
    rows, cols, z = rows[valid], cols[valid], z[valid]
    x = (cols - cx) / fx * z
    y = (rows - cy) / fy * z
    return np.stack([x, y, z], axis=1).astype(np.float32)
