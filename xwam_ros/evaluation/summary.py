"""A one-page PNG of an evaluation report: outcomes, latency, and imagination quality.

The report is the evaluation's dict: `policy`, `task`, `episodes` (each with `seed`,
`success`, `chunks`, `decode_latency_ms` and per-imagined-frame `imagination` metrics with
their `horizon_s`), `summary` (the aggregates, any of them None when nothing was measured)
and, optionally, `baseline` (a random-weights run's `summary`, shown beside the policy's).
Missing or None values are drawn as "n/a" rather than refused: the page should exist for a
run that failed early too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

# Set before pyplot is imported, so that no display is needed (headless CI, the sim box).
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

_SIZE_IN = (12, 8)
_DPI = 100
_GREEN, _RED = "#2ca02c", "#d62728"

# (key in an imagination record, axis label)
_METRICS = (
    ("rgb_psnr", "RGB PSNR (dB)"),
    ("rgb_ssim", "RGB SSIM"),
    ("depth_abs_rel", "depth abs rel"),
    ("depth_rmse_m", "depth RMSE (m)"),
    ("chamfer_m", "Chamfer (m)"),
)

# (key in a summary, row label)
_SUMMARY_ROWS = (
    ("success_rate", "success rate"),
    ("episodes", "episodes"),
    ("chunks_per_episode_mean", "chunks / episode"),
    ("decode_latency_ms_p50", "decode p50 (ms)"),
    ("decode_latency_ms_p95", "decode p95 (ms)"),
    ("rgb_psnr_db", "RGB PSNR (dB)"),
    ("rgb_ssim", "RGB SSIM"),
    ("depth_abs_rel", "depth abs rel"),
    ("depth_rmse_m", "depth RMSE (m)"),
    ("chamfer_m", "Chamfer (m)"),
)


def write_summary_png(report: dict[str, Any], path: str | Path) -> None:
    """Draw `report` (an evaluation report, see the module docstring) as a 1200x800 PNG."""
    episodes = list(report.get("episodes") or [])
    summary = report.get("summary") or {}
    baseline = report.get("baseline")

    fig = plt.figure(figsize=_SIZE_IN, dpi=_DPI)
    try:
        fig.suptitle(
            f"{report.get('policy', '?')} on {report.get('task', '?')}: "
            f"success rate {_format(summary.get('success_rate'), percent=True)} "
            f"over {len(episodes)} episode(s)",
            fontsize=14,
        )
        # 15 columns: three wide panels above, five metric panels of three columns below.
        grid = fig.add_gridspec(2, 15, height_ratios=(1.1, 1), hspace=0.45, wspace=1.6)
        _episode_bars(fig.add_subplot(grid[0, 0:5]), episodes)
        _latency_histogram(fig.add_subplot(grid[0, 5:10]), episodes)
        _summary_table(fig.add_subplot(grid[0, 10:15]), summary, baseline)
        for index, (key, label) in enumerate(_METRICS):
            axes = fig.add_subplot(grid[1, 3 * index : 3 * index + 3])
            _metric_against_horizon(axes, episodes, key, label)
        fig.subplots_adjust(left=0.06, right=0.98, top=0.9, bottom=0.08)
        # No bbox_inches="tight": it would crop the page away from its fixed size.
        fig.savefig(Path(path), dpi=_DPI, format="png")
    finally:
        plt.close(fig)


def _number(value: Any) -> float | None:
    """`value` as a float, or None when it is missing or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _format(value: Any, *, percent: bool = False) -> str:
    number = _number(value)
    if number is None:
        return "n/a"
    if math.isnan(number):
        return "n/a"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    if percent:
        return f"{100 * number:.0f}%"
    if number == int(number) and abs(number) < 1e6:
        return str(int(number))
    return f"{number:.4g}"


def _empty(axes, title: str, message: str) -> None:
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def _episode_bars(axes, episodes: list[dict]) -> None:
    title = "chunks per episode"
    if not episodes:
        _empty(axes, title, "no episodes")
        return
    heights = [_number(e.get("chunks")) or 0.0 for e in episodes]
    colours = [_GREEN if e.get("success") else _RED for e in episodes]
    positions = range(len(episodes))
    axes.bar(positions, heights, color=colours)
    axes.set_xticks(list(positions))
    # Many seeds would overlap written horizontally.
    axes.set_xticklabels(
        [str(e.get("seed", "?")) for e in episodes], rotation=90 if len(episodes) > 12 else 0
    )
    axes.set_xlabel("seed")
    axes.set_ylabel("chunks")
    axes.set_title(title)
    axes.legend(
        handles=[Patch(color=_GREEN, label="success"), Patch(color=_RED, label="failure")],
        fontsize=8,
    )


def _latency_histogram(axes, episodes: list[dict]) -> None:
    title = "decode latency"
    latencies = [
        number
        for episode in episodes
        for value in episode.get("decode_latency_ms") or []
        if (number := _number(value)) is not None and math.isfinite(number)
    ]
    if not latencies:
        _empty(axes, title, "no decode latencies")
        return
    axes.hist(latencies, bins=min(30, max(5, len(latencies) // 3)), color="#1f77b4")
    axes.set_xlabel("ms")
    axes.set_ylabel("chunks")
    axes.set_title(f"{title} ({len(latencies)} chunks)")


def _metric_against_horizon(axes, episodes: list[dict], key: str, label: str) -> None:
    horizons, values, infinite = [], [], 0
    for episode in episodes:
        for frame in episode.get("imagination") or []:
            horizon, value = _number(frame.get("horizon_s")), _number(frame.get(key))
            if horizon is None or value is None or math.isnan(value):
                continue
            # Infinite PSNR (a perfect frame) has no place on an axis: counted, not drawn.
            if math.isinf(value):
                infinite += 1
                continue
            horizons.append(horizon)
            values.append(value)
    if infinite:
        label = f"{label}\n({infinite} infinite left out)"
    if not values:
        _empty(axes, label, "n/a")
        return
    axes.scatter(horizons, values, s=8, alpha=0.35, color="#7f7f7f", label="frames")
    groups: dict[float, list[float]] = defaultdict(list)
    for horizon, value in zip(horizons, values):
        # Horizons are sums of control periods; rounding merges float noise.
        groups[round(horizon, 6)].append(value)
    means = sorted((h, sum(v) / len(v)) for h, v in groups.items())
    axes.plot([h for h, _ in means], [m for _, m in means], "o-", color="#ff7f0e", label="mean")
    axes.set_title(label, fontsize=10)
    axes.set_xlabel("horizon (s)")
    axes.tick_params(labelsize=8)


def _summary_table(axes, summary: dict, baseline: dict | None) -> None:
    axes.axis("off")
    axes.set_title("summary")
    columns = ["policy"]
    if baseline is not None:
        columns.append("random weights")
    cells = []
    for key, _ in _SUMMARY_ROWS:
        percent = key == "success_rate"
        row = [_format(summary.get(key), percent=percent)]
        if baseline is not None:
            row.append(_format((baseline or {}).get(key), percent=percent))
        cells.append(row)
    table = axes.table(
        cellText=cells,
        rowLabels=[label for _, label in _SUMMARY_ROWS],
        colLabels=columns,
        loc="center right",
        cellLoc="right",
        colWidths=[0.35] * len(columns),
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1.0, 1.3)
