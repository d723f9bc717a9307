"""Training curves of a fine-tuning run, drawn from its `train_log.jsonl` (ROS-free).

The trainer appends one JSON object per line (see `Trainer._log`), each with a `time`:

- step records, every `log_every` steps: `step`, the averaged losses (`loss`, the weighted
  total, and its parts `video`, `action`, `proprio` and, with a depth branch, `depth`),
  `grad_norm`, `lr`, `steps_per_s`;
- validation records: `step`, `validation` (a dict of `action_mse`, `rgb_psnr` and, when
  depth was scored, `depth_psnr`) and `split`;
- events: `event` (`start`, `checkpoint`, `resume`) with the `step` and details.

Usage: `python -m xwam_model.training.curves RUN_DIR [-o PNG]` (default `RUN_DIR/curves.png`).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

# Set before pyplot is imported, so that no display is needed (training boxes are headless).
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The trainer's LOG_FILE, repeated so that drawing curves never imports torch's trainer.
LOG_FILE = "train_log.jsonl"
DEFAULT_PNG = "curves.png"

_TOTAL = "loss"
_LOSS_PARTS = ("video", "action", "proprio", "depth")


def read_log(log_path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a `train_log.jsonl` and how many lines could not be read.

    A run killed mid-write leaves a partial last line; it (and any other line that is not a
    JSON object) is skipped rather than refused.
    """
    records, skipped = [], 0
    with Path(log_path).open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                skipped += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                skipped += 1
    return records, skipped


def _series(records: list[dict[str, Any]]) -> tuple[dict[str, dict], dict[str, dict], list]:
    """Per-curve {step: value} of the losses and of the validation metrics, and resumes."""
    losses: dict[str, dict[int, float]] = {}
    validation: dict[str, dict[int, float]] = {}
    resumes: list[int] = []
    for record in records:
        step = record.get("step")
        if not isinstance(step, int):
            continue
        if record.get("event") == "resume":
            resumes.append(step)
        elif "event" in record:
            continue
        elif isinstance(record.get("validation"), dict):
            for name, value in record["validation"].items():
                if _finite(value):
                    validation.setdefault(name, {})[step] = float(value)
        else:
            for name in (_TOTAL, *_LOSS_PARTS):
                value = record.get(name)
                # A log axis has no place for 0: the depth loss is exactly 0 on batches
                # without depth, so such points are left out (and not counted).
                if _finite(value) and value > 0:
                    # After a resume the steps since the last checkpoint are logged again;
                    # the later record (the run that went on) overwrites the earlier.
                    losses.setdefault(name, {})[step] = float(value)
    return losses, validation, resumes


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def write_training_curves(log_path: str | Path, png_path: str | Path) -> dict[str, Any]:
    """Draw the losses (log y) and each validation metric against step, as a PNG.

    Returns what was drawn: `points` (curve name -> number of points; validation curves are
    named `val/<metric>`; losses of 0, which a log axis cannot show, are neither drawn nor
    counted), `first_loss` and `last_loss` (the total loss at the first and last logged
    step, None when no step was logged) and `skipped_lines`.
    """
    records, skipped = read_log(log_path)
    losses, validation, resumes = _series(records)

    columns = max(1, len(validation))
    fig = plt.figure(figsize=(12, 8), dpi=100)
    try:
        grid = fig.add_gridspec(2, columns, height_ratios=(1.3, 1), hspace=0.35, wspace=0.3)
        _loss_panel(fig.add_subplot(grid[0, :]), losses, resumes)
        if not validation:
            axes = fig.add_subplot(grid[1, 0])
            axes.set_title("validation")
            axes.text(0.5, 0.5, "no validation logged", ha="center", va="center")
            axes.set_xticks([])
            axes.set_yticks([])
        for column, (name, points) in enumerate(sorted(validation.items())):
            axes = fig.add_subplot(grid[1, column])
            steps = sorted(points)
            axes.plot(steps, [points[s] for s in steps], "o-", markersize=3)
            axes.set_title(f"validation {name}")
            axes.set_xlabel("step")
            axes.grid(alpha=0.3)
        fig.suptitle(f"training curves: {Path(log_path).parent.name or Path(log_path).name}")
        fig.savefig(Path(png_path), dpi=100, format="png")
    finally:
        plt.close(fig)

    total = losses.get(_TOTAL, {})
    ordered = [total[s] for s in sorted(total)]
    counts = {name: len(points) for name, points in losses.items()}
    counts.update({f"val/{name}": len(points) for name, points in validation.items()})
    return {
        "points": counts,
        "first_loss": ordered[0] if ordered else None,
        "last_loss": ordered[-1] if ordered else None,
        "skipped_lines": skipped,
    }


def _loss_panel(axes, losses: dict[str, dict[int, float]], resumes: list[int]) -> None:
    axes.set_title("training loss")
    axes.set_xlabel("step")
    drawn = False
    for name in (_TOTAL, *_LOSS_PARTS):
        points = losses.get(name, {})
        if not points:
            continue
        steps = sorted(points)
        style = {"linewidth": 2.0, "color": "black"} if name == _TOTAL else {"linewidth": 1.0}
        axes.plot(steps, [points[s] for s in steps], label=name, **style)
        drawn = True
    if not drawn:
        axes.text(0.5, 0.5, "no steps logged", ha="center", va="center", transform=axes.transAxes)
        return
    axes.set_yscale("log")
    for index, step in enumerate(resumes):
        axes.axvline(step, color="grey", linestyle="--", label="resume" if index == 0 else None)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=9)


def main(argv: list[str] | None = None) -> int:
    """Command line: draw RUN_DIR's curves and print what was drawn."""
    parser = argparse.ArgumentParser(
        prog="python -m xwam_model.training.curves",
        description="Draw a fine-tuning run's training and validation curves as a PNG.",
    )
    parser.add_argument("run_dir", type=Path, help=f"the run folder (holding {LOG_FILE})")
    parser.add_argument(
        "-o", "--output", type=Path, help=f"the PNG (default RUN_DIR/{DEFAULT_PNG})"
    )
    args = parser.parse_args(argv)
    log_path = args.run_dir / LOG_FILE
    if not log_path.is_file():
        parser.error(f"no {LOG_FILE} in {args.run_dir}")
    output = args.output or args.run_dir / DEFAULT_PNG
    drawn = write_training_curves(log_path, output)
    print(f"wrote {output}: {json.dumps(drawn)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
