"""Score an imagined future against what the simulator then rendered (pure numpy, no ROS).

Every imagined frame depicts a time (its stamp); the rendered frame of the same view stamped
within `tolerance` of that time is the truth. Per frame: RGB PSNR and SSIM, depth AbsRel and
RMSE (metres, over the rendered pixels with a reading inside the model's depth range), and
the Chamfer distance between the two point clouds unprojected with the view's intrinsics, in
the camera's optical frame (for the wrist camera that is the camera wherever it was: the
geometry it sees, not the camera's pose).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xwam_model.geometry import chamfer_distance, depth_to_points
from xwam_ros.evaluation.metrics import depth_errors, rgb_psnr, rgb_ssim

# view, time (ns), depth? -> (stamp ns, pixels) of the rendered frame nearest that time
FrameLookup = Callable[[str, int, bool], tuple[int, np.ndarray] | None]


def score_frame(
    predicted_rgb: np.ndarray | None,
    predicted_depth: np.ndarray | None,
    rendered_rgb: np.ndarray | None,
    rendered_depth: np.ndarray | None,
    intrinsics: np.ndarray | None,
    near: float,
    far: float,
    cloud_stride: int = 2,
) -> dict[str, float | None]:
    """The five metrics of one imagined frame (None where a side is missing); `intrinsics`
    is the view's 3x3 camera matrix K."""
    scores: dict[str, float | None] = dict.fromkeys(
        ("rgb_psnr", "rgb_ssim", "depth_abs_rel", "depth_rmse_m", "chamfer_m")
    )
    comparable = predicted_rgb is not None and rendered_rgb is not None
    if comparable and predicted_rgb.shape == rendered_rgb.shape:
        scores["rgb_psnr"] = rgb_psnr(predicted_rgb, rendered_rgb)
        scores["rgb_ssim"] = rgb_ssim(predicted_rgb, rendered_rgb)
    if predicted_depth is None or rendered_depth is None:
        return scores
    if predicted_depth.shape != rendered_depth.shape:
        return scores
    try:
        errors = depth_errors(predicted_depth, rendered_depth, near, far)
    except ValueError:  # no rendered pixel with a reading inside the range
        return scores
    scores["depth_abs_rel"] = errors["abs_rel"]
    scores["depth_rmse_m"] = errors["rmse_m"]
    if intrinsics is not None:
        # The decoded depth is clipped to [near, far]: the far end means "nothing closer",
        # as a missing reading does in the rendered image, so neither is a point. Clouds stay
        # in the camera's optical frame (identity pose).
        clouds = [
            depth_to_points(
                depth,
                intrinsics,
                np.eye(4),
                stride=cloud_stride,
                min_depth=near,
                max_depth=far - 1e-3,
            ).points
            for depth in (predicted_depth, rendered_depth)
        ]
        predicted, rendered = clouds
        if len(predicted) and len(rendered):
            scores["chamfer_m"] = chamfer_distance(predicted, rendered)
    return scores


def score_imagination(
    observation_ns: int,
    rgb: dict[str, dict[int, np.ndarray]],
    depth: dict[str, dict[int, np.ndarray]],
    rendered: FrameLookup,
    intrinsics: dict[str, np.ndarray],
    near: float,
    far: float,
    *,
    until_ns: int,
    tolerance_ns: int = 25_000_000,
    cloud_stride: int = 2,
) -> list[dict]:
    """One row per imagined (view, time) that has a rendered counterpart before `until_ns`."""
    rows = []
    for view in sorted(set(rgb) | set(depth)):
        times = sorted(set(rgb.get(view, {})) | set(depth.get(view, {})))
        for depicted in times:
            if depicted > until_ns:
                continue
            truth_rgb = rendered(view, depicted, False)
            truth_depth = rendered(view, depicted, True)
            if truth_rgb is not None and abs(truth_rgb[0] - depicted) > tolerance_ns:
                truth_rgb = None
            if truth_depth is not None and abs(truth_depth[0] - depicted) > tolerance_ns:
                truth_depth = None
            if truth_rgb is None and truth_depth is None:
                continue
            scores = score_frame(
                rgb.get(view, {}).get(depicted),
                depth.get(view, {}).get(depicted),
                truth_rgb[1] if truth_rgb is not None else None,
                truth_depth[1] if truth_depth is not None else None,
                intrinsics.get(view),
                near,
                far,
                cloud_stride,
            )
            rows.append(
                {"view": view, "horizon_s": round((depicted - observation_ns) * 1e-9, 3), **scores}
            )
    return rows
