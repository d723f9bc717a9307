"""Training curves from a synthetic `train_log.jsonl` in the trainer's record format."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image

from xwam_model.training import curves, trainer
from xwam_model.training.curves import main, read_log, write_training_curves


def step_record(step: int, loss: float, depth: bool = True) -> dict:
    # The keys of Trainer.run's step record: the losses of flow_matching_losses, their
    # weighted total, the gradient norm, the learning rate and the speed.
    parts = {"video": 0.6 * loss, "action": 0.3 * loss, "proprio": 0.1 * loss}
    if depth:
        parts["depth"] = 0.05 * loss
    return {
        "time": 1700000000.0 + step,
        "step": step,
        **parts,
        "loss": loss,
        "grad_norm": 1.5,
        "lr": 1e-4,
        "steps_per_s": 2.0,
    }


def validation_record(step: int, depth: bool = True) -> dict:
    metrics = {"action_mse": 1.0 / step, "rgb_psnr": 10.0 + step / 10}
    if depth:
        metrics["depth_psnr"] = 15.0 + step / 10
    return {"time": 1700000000.0 + step, "step": step, "validation": metrics, "split": "val"}


def write_log(path, lines: list[str]) -> None:
    path.write_text("".join(lines))


@pytest.fixture
def run_dir(tmp_path):
    """A run of 50 steps killed after step 50 was half written, resumed once at step 30."""
    records = [
        {
            "time": 1700000000.0,
            "event": "start",
            "step": 0,
            "weights": "random",
            "parallelism": "single",
            "world_size": 1,
            "train_clips": 8,
            "val_clips": 2,
            "device": "cpu",
        },
        step_record(10, 1.0) | {"depth": 0.0},  # a batch without depth: not on a log axis
        step_record(20, 0.5),
        validation_record(20),
        step_record(30, 0.25),
        {"time": 1700000030.0, "event": "checkpoint", "step": 30, "path": "/run/checkpoint-30"},
        step_record(40, 9.0),  # superseded: logged again after the resume
        {"time": 1700000050.0, "event": "resume", "step": 30, "from": "/run/state-30"},
        step_record(40, 0.2),
        validation_record(40),
    ]
    lines = [json.dumps(r) + "\n" for r in records]
    lines.append(json.dumps(step_record(50, 0.1))[:37])  # killed mid-write
    write_log(tmp_path / trainer.LOG_FILE, lines)
    return tmp_path


def png_size(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
    with Image.open(path) as image:
        return image.size


def test_the_log_name_is_the_trainers():
    assert curves.LOG_FILE == trainer.LOG_FILE


def test_reads_the_log_skipping_the_partial_last_line(run_dir):
    records, skipped = read_log(run_dir / trainer.LOG_FILE)
    assert len(records) == 10
    assert skipped == 1


def test_draws_the_curves_and_counts_them(run_dir, tmp_path):
    png = tmp_path / "out.png"
    drawn = write_training_curves(run_dir / trainer.LOG_FILE, png)
    assert drawn["points"] == {
        "loss": 4,
        "video": 4,
        "action": 4,
        "proprio": 4,
        "depth": 3,
        "val/action_mse": 2,
        "val/rgb_psnr": 2,
        "val/depth_psnr": 2,
    }
    assert drawn["first_loss"] == 1.0
    assert drawn["last_loss"] == 0.2  # the resumed run's step 40, not the superseded one
    assert drawn["skipped_lines"] == 1
    assert png_size(png) == (1200, 800)


def test_a_run_without_depth_or_validation_and_an_empty_log(tmp_path):
    log = tmp_path / "train_log.jsonl"
    write_log(log, [json.dumps(step_record(s, 1.0 / s, depth=False)) + "\n" for s in (1, 2)])
    drawn = write_training_curves(log, tmp_path / "a.png")
    assert drawn["points"] == {"loss": 2, "video": 2, "action": 2, "proprio": 2}
    assert math.isclose(drawn["last_loss"], 0.5)
    png_size(tmp_path / "a.png")

    write_log(log, [])
    drawn = write_training_curves(log, tmp_path / "b.png")
    assert drawn == {"points": {}, "first_loss": None, "last_loss": None, "skipped_lines": 0}
    png_size(tmp_path / "b.png")


def test_command_line(run_dir, tmp_path, capsys):
    assert main([str(run_dir)]) == 0
    assert png_size(run_dir / "curves.png") == (1200, 800)
    assert "curves.png" in capsys.readouterr().out
    assert main([str(run_dir), "-o", str(tmp_path / "elsewhere.png")]) == 0
    png_size(tmp_path / "elsewhere.png")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
