"""Scoring an imagined future against the rendered frames (`score_imagination`,
`score_frame`) on synthetic frames: perfect and offset predictions, the `until_ns` cut-off,
the stamp tolerance, missing or mismatched sides, and the horizon of each row."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xwam_model.geometry import chamfer_distance, depth_to_points
from xwam_ros.evaluation.imagination_quality import score_frame, score_imagination

MS = 1_000_000
T0 = 10_000 * MS  # the observation the imagination started from
NEAR, FAR = 0.05, 2.0
K = np.array([[30.0, 0.0, 15.5], [0.0, 30.0, 15.5], [0.0, 0.0, 1.0]])
METRICS = ("rgb_psnr", "rgb_ssim", "depth_abs_rel", "depth_rmse_m", "chamfer_m")


def rgb_frame(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(20, 230, (size, size, 3), dtype=np.uint8)


def depth_frame(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed + 100).uniform(0.5, 1.5, (size, size)).astype(np.float32)


def renderer(rgb_stamps_ms, depth_stamps_ms=None, view="front"):
    """A FrameLookup over rendered frames of one view at T0 + the given milliseconds; frame
    content is seeded by its stamp, so an imagined frame made with that seed matches."""
    depth_stamps_ms = rgb_stamps_ms if depth_stamps_ms is None else depth_stamps_ms
    calls = []

    def lookup(name: str, time_ns: int, depth: bool):
        calls.append((name, time_ns, depth))
        stamps = depth_stamps_ms if depth else rgb_stamps_ms
        if name != view or not stamps:
            return None
        nearest = min(stamps, key=lambda ms: abs(T0 + ms * MS - time_ns))
        pixels = depth_frame(nearest) if depth else rgb_frame(nearest)
        return T0 + nearest * MS, pixels

    lookup.calls = calls
    return lookup


def score(rgb, depth, lookup, until_ms=10_000, **kwargs):
    return score_imagination(
        T0,
        rgb,
        depth,
        lookup,
        {"front": K},
        NEAR,
        FAR,
        until_ns=T0 + until_ms * MS,
        **kwargs,
    )


def imagined(ms_list, offset=0.0, view="front"):
    rgb = {view: {T0 + ms * MS: rgb_frame(ms) for ms in ms_list}}
    depth = {view: {T0 + ms * MS: depth_frame(ms) + np.float32(offset) for ms in ms_list}}
    return rgb, depth


def test_a_perfect_imagination_scores_perfectly():
    rgb, depth = imagined([200, 400])
    rows = score(rgb, depth, renderer([200, 400]))
    assert [r["view"] for r in rows] == ["front", "front"]
    assert [r["horizon_s"] for r in rows] == [0.2, 0.4]
    for row in rows:
        assert row["rgb_psnr"] == math.inf
        assert row["rgb_ssim"] == pytest.approx(1.0)
        assert row["depth_abs_rel"] == pytest.approx(0.0, abs=1e-12)
        assert row["depth_rmse_m"] == pytest.approx(0.0, abs=1e-12)
        assert row["chamfer_m"] == pytest.approx(0.0, abs=1e-12)


def test_a_depth_offset_gives_its_rmse_and_relative_error():
    rgb, depth = imagined([200, 400], offset=0.1)
    rows = score(rgb, depth, renderer([200, 400]))
    assert len(rows) == 2
    for row, ms in zip(rows, (200, 400)):
        truth = depth_frame(ms).astype(np.float64)
        assert row["depth_rmse_m"] == pytest.approx(0.1, rel=1e-5)
        assert row["depth_abs_rel"] == pytest.approx(np.mean(0.1 / truth), rel=1e-5)
        assert row["rgb_psnr"] == math.inf  # the pictures were right
        # The clouds moved apart: a positive Chamfer distance, below the 0.1 m offset in depth
        # plus the sideways spread it causes.
        assert 0 < row["chamfer_m"] < 0.2


def test_chamfer_is_that_of_the_unprojected_clouds():
    predicted = depth_frame(1)
    rendered = depth_frame(2)
    scores = score_frame(None, predicted, None, rendered, K, NEAR, FAR, cloud_stride=2)
    pose = np.eye(4)
    expected = chamfer_distance(
        depth_to_points(predicted, K, pose, stride=2, min_depth=NEAR, max_depth=FAR - 1e-3),
        depth_to_points(rendered, K, pose, stride=2, min_depth=NEAR, max_depth=FAR - 1e-3),
    )
    assert scores["chamfer_m"] == pytest.approx(expected)
    assert scores["rgb_psnr"] is None and scores["rgb_ssim"] is None
    # Without intrinsics the depth errors are there but no cloud is made.
    scores = score_frame(None, predicted, None, rendered, None, NEAR, FAR)
    assert scores["chamfer_m"] is None and scores["depth_rmse_m"] > 0


def test_frames_depicted_after_until_are_skipped():
    rgb, depth = imagined([200, 400, 600])
    lookup = renderer([200, 400, 600])
    rows = score(rgb, depth, lookup, until_ms=500)
    assert [r["horizon_s"] for r in rows] == [0.2, 0.4]
    assert all(time <= T0 + 500 * MS for _, time, _ in lookup.calls)
    # A frame depicted exactly at `until_ns` is still scored.
    assert [r["horizon_s"] for r in score(rgb, depth, lookup, until_ms=600)] == [0.2, 0.4, 0.6]


def test_rendered_frames_beyond_the_tolerance_are_not_used():
    # Imagined at 0.2 s (rendered exactly), 0.22 s (rendered 20 ms off: within the default
    # 25 ms) and 0.3 s (100 ms from either rendered frame: no truth, the row is dropped).
    rgb, depth = imagined([200, 220, 300])
    rows = score(rgb, depth, renderer([200, 400]))
    assert [r["horizon_s"] for r in rows] == [0.2, 0.22]
    assert rows[0]["rgb_psnr"] == math.inf
    assert rows[1]["rgb_psnr"] < 40  # scored against the 0.2 s frame, a different picture
    # A tighter tolerance drops the 20 ms match too.
    rows = score(rgb, depth, renderer([200, 400]), tolerance_ns=10 * MS)
    assert [r["horizon_s"] for r in rows] == [0.2]


def test_a_side_without_a_close_render_scores_only_the_other():
    rgb, depth = imagined([200])
    # RGB rendered at 0.2 s, depth only at 0.4 s: the row keeps the RGB scores.
    rows = score(rgb, depth, renderer([200], depth_stamps_ms=[400]))
    assert len(rows) == 1
    assert rows[0]["rgb_psnr"] == math.inf
    assert rows[0]["depth_rmse_m"] is None and rows[0]["chamfer_m"] is None
    # Depth rendered, RGB not: the depth scores only.
    rows = score(rgb, depth, renderer([], depth_stamps_ms=[200]))
    assert len(rows) == 1
    assert rows[0]["rgb_psnr"] is None and rows[0]["rgb_ssim"] is None
    assert rows[0]["depth_rmse_m"] == pytest.approx(0.0, abs=1e-12)
    # Nothing rendered for the view: no row.
    assert score(rgb, depth, renderer([200], view="wrist")) == []


def test_only_imagined_rgb_gives_rgb_scores_only():
    rgb, _ = imagined([200, 400])
    rows = score(rgb, {}, renderer([200, 400]))
    assert len(rows) == 2
    for row in rows:
        assert row["rgb_ssim"] == pytest.approx(1.0)
        assert row["depth_abs_rel"] is None and row["chamfer_m"] is None


def test_mismatched_sizes_give_none_rather_than_an_error():
    rgb = {"front": {T0 + 200 * MS: rgb_frame(200, size=16)}}
    depth = {"front": {T0 + 200 * MS: depth_frame(200, size=16)}}
    rows = score(rgb, depth, renderer([200]))
    assert len(rows) == 1
    assert all(rows[0][name] is None for name in METRICS)
    assert rows[0]["horizon_s"] == 0.2


def test_rendered_depth_without_a_reading_in_range_gives_none():
    rendered = np.full((32, 32), 5.0, np.float32)  # beyond the 2 m far end everywhere
    scores = score_frame(rgb_frame(0), depth_frame(0), rgb_frame(0), rendered, K, NEAR, FAR)
    assert scores["rgb_psnr"] == math.inf
    assert scores["depth_abs_rel"] is None and scores["chamfer_m"] is None


def test_horizon_is_the_time_from_the_observation_and_views_are_sorted():
    wrist_rgb, wrist_depth = imagined([150], view="wrist")
    front_rgb, front_depth = imagined([50, 1250])

    def lookup(view, time_ns, depth):
        # Every time has a rendered frame of its own (a perfect match).
        ms = (time_ns - T0) // MS
        return time_ns, depth_frame(ms) if depth else rgb_frame(ms)

    rows = score_imagination(
        T0,
        {**front_rgb, **wrist_rgb},
        {**front_depth, **wrist_depth},
        lookup,
        {"front": K, "wrist": K},
        NEAR,
        FAR,
        until_ns=T0 + 2000 * MS,
    )
    assert [(r["view"], r["horizon_s"]) for r in rows] == [
        ("front", 0.05),
        ("front", 1.25),
        ("wrist", 0.15),
    ]
    assert all(r["rgb_psnr"] == math.inf for r in rows)
