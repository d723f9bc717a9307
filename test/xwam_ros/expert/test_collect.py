"""`xwam collect` on the real simulator and recorder: the scripted expert lifts the cube, every
episode is a bag marked with its outcome, and the bags become a dataset whose actions are the
expert's motion (reach, descend, close, lift)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from xwam_model.data import ClipDataset
from xwam_model.normalization import Normalization

pytestmark = pytest.mark.ros


@pytest.mark.timeout(400)
def test_collect_two_episodes_then_build(tmp_path):
    output = tmp_path / "collect"
    result = subprocess.run(
        [sys.executable, "-m", "xwam_ros.cli", "collect", "--episodes", "2", "--seed", "7"]
        + ["--output", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = (output / "launch.log").read_text() if (output / "launch.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-4000:]
    summary = json.loads((output / "collect.json").read_text())
    assert summary["episodes"] == 2
    assert [row["seed"] for row in summary["rows"]] == [7, 8]
    # The expert succeeds (120/120 when the shipped checkpoint's data was collected).
    assert all(row["success"] for row in summary["rows"]), summary["rows"]
    poses = [row["objects"]["cube"] for row in summary["rows"]]
    assert poses[0] != poses[1], "the seeds should place the cube differently"
    for row in summary["rows"]:
        metadata = (output / "bags" / row["bag"].split("/")[-1] / "metadata.yaml").read_text()
        assert "success" in metadata and f"seed={row['seed']}" in metadata

    dataset = tmp_path / "dataset"
    build = subprocess.run(
        [sys.executable, "-m", "xwam_ros.cli", "dataset", "build", str(output / "bags")]
        + ["-o", str(dataset), "--model", "small", "--val-fraction", "0", "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    index = json.loads((dataset / "dataset.json").read_text())
    assert len(index["episodes"]) == 2
    assert sum(len(e["clip_starts"]) for e in index["episodes"]) >= 30
    per_frame = index["spec"]["actions_per_frame"]
    for episode in index["episodes"]:
        actions = np.load(dataset / "episodes" / episode["name"] / "actions.npy")
        # The steps the clips use (not the filler of the gap before the first command): a
        # commanded motion at 20 Hz, no jumps (<= 2 cm a step).
        first = min(episode["clip_starts"]) * per_frame + 1
        last = (max(episode["clip_starts"]) + 8) * per_frame
        steady = actions[first:last]
        assert np.abs(steady[:, :3]).max() < 0.02
        dz = steady[:, 2]
        assert dz.min() < -0.004 and dz.max() > 0.004, "descends, then lifts"
        gripper = steady[:, 6]
        # Open while reaching (from the fingers' reset width), closed at the end.
        assert gripper.min() == pytest.approx(0.0) and gripper[-1] == pytest.approx(1.0)
        lifting = np.flatnonzero(dz > 0.002)
        assert gripper[lifting].min() == pytest.approx(1.0), "lifts with the fingers closed"
    clips = ClipDataset(dataset, "train", Normalization.from_dict(index["normalization"]))
    item = clips[0]
    assert item["video"].shape == (9, 3, 128, 128, 3)
    assert bool(item["depth_valid"].all())


@pytest.mark.timeout(300)
def test_collect_stacks_one_cube_on_the_other(tmp_path):
    output = tmp_path / "stack"
    result = subprocess.run(
        [sys.executable, "-m", "xwam_ros.cli", "collect", "--task", "Stack", "--episodes", "1"]
        + ["--seed", "3", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    log = (output / "launch.log").read_text() if (output / "launch.log").exists() else ""
    assert result.returncode == 0, result.stdout + result.stderr + log[-4000:]
    (row,) = json.loads((output / "collect.json").read_text())["rows"]
    assert sorted(row["objects"]) == ["cubeA", "cubeB"]
    assert row["success"], row  # robosuite's Stack success: A rests on B, released
    metadata = (output / "bags" / row["bag"].split("/")[-1] / "metadata.yaml").read_text()
    assert "stack the red cube on the green cube" in metadata
