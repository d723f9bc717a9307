"""The evaluation report's PNG: drawn for full, baseline and empty reports."""

from __future__ import annotations

import random

import pytest
from PIL import Image

from xwam_ros.evaluation.summary import write_summary_png


def synthetic_report(episodes: int = 4, baseline: bool = False) -> dict:
    rng = random.Random(0)
    runs = []
    for seed in range(episodes):
        imagination = [
            {
                "rgb_psnr": 25.0 - 2 * h + rng.random(),
                "rgb_ssim": 0.9 - 0.05 * h,
                "depth_abs_rel": 0.05 + 0.01 * h,
                "depth_rmse_m": 0.02 + 0.01 * h,
                "chamfer_m": 0.01 + 0.005 * h,
                "horizon_s": 0.1 * h,
            }
            for h in range(1, 5)
        ]
        # A perfect frame: infinite PSNR must not break the axis.
        imagination[0]["rgb_psnr"] = float("inf")
        runs.append(
            {
                "seed": seed,
                "success": seed % 2 == 0,
                "chunks": 3 + seed,
                "decode_latency_ms": [40 + rng.random() * 10 for _ in range(3 + seed)],
                "imagination": imagination,
            }
        )
    summary = {
        "success_rate": 0.5,
        "episodes": episodes,
        "chunks_per_episode_mean": 4.5,
        "decode_latency_ms_p50": 45.0,
        "decode_latency_ms_p95": 49.5,
        "rgb_psnr_db": 22.1,
        "rgb_ssim": 0.81,
        "depth_abs_rel": 0.07,
        "depth_rmse_m": 0.035,
        "chamfer_m": 0.017,
    }
    report = {"policy": "checkpoint-0001000", "task": "reach", "episodes": runs, "summary": summary}
    if baseline:
        report["baseline"] = {key: None for key in summary} | {"success_rate": 0.0}
    return report


def empty_report() -> dict:
    # Every key present, every value None: nothing was measured.
    summary = dict.fromkeys(synthetic_report()["summary"])
    return {"policy": "random", "task": "reach", "episodes": [], "summary": summary}


def none_metrics_report() -> dict:
    report = synthetic_report(episodes=2)
    for episode in report["episodes"]:
        episode["decode_latency_ms"] = []
        for frame in episode["imagination"]:
            frame.update(depth_abs_rel=None, depth_rmse_m=None, chamfer_m=None)
    report["summary"].update(depth_abs_rel=None, depth_rmse_m=None, chamfer_m=None)
    return report


@pytest.mark.parametrize(
    "report",
    [synthetic_report(), synthetic_report(baseline=True), empty_report(), none_metrics_report()],
    ids=["policy", "with-baseline", "empty", "none-metrics"],
)
def test_writes_a_one_page_png(tmp_path, report):
    path = tmp_path / "summary.png"
    write_summary_png(report, path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert abs(width - 1200) <= 10 and abs(height - 800) <= 10
