"""The data flywheel's speed: bag write rate, dataset build time, training steps/s (CPU).

    python benchmarks/bench_training.py
    python benchmarks/bench_training.py --seconds 10 --steps 40

- bag: the recorder's writer (rosbags MCAP splits, 1 s) taking 3 cameras of 640x480 rgb8 at
  30 Hz plus 100 Hz joint states, as fast as it can: MB/s and messages/s, and the splits.
- build: `xwam dataset build` on synthetic two-camera Panda episodes (the dataset tests'
  bags, 64x48 images at 20 Hz, tiny preset at 64x64): seconds per episode-second.
- train: the tiny preset, batch 2, on a synthetic 32x32 dataset: steps/s and the logged loss
  over the first and last 5 steps; and the small preset as the shipped checkpoint trained
  (3 views at 128x128 with depth, batch 8), with and without the latent cache.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "test"))

from xwam_ros.recording import message_types  # noqa: E402
from xwam_ros.recording.bag_writer import EpisodeBagWriter  # noqa: E402
from xwam_ros.recording.episode_info import EpisodeInfo  # noqa: E402


def _test_module(relative: str):
    """A helper module of the test suite (the synthetic bags and datasets), by path."""
    path = ROOT / "test" / relative
    spec = importlib.util.spec_from_file_location(relative.replace("/", "_")[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_bag(folder: Path, seconds: float) -> None:
    store = message_types.type_store()
    types = store.types
    writer = EpisodeBagWriter(folder / "bag", EpisodeInfo(instruction="bench"), split_period=1.0)
    image_type, joint_type = "sensor_msgs/msg/Image", "sensor_msgs/msg/JointState"
    cameras = [
        writer.add_topic(f"/cam{i}/image_raw", image_type, *message_types.definition(image_type))
        for i in range(3)
    ]
    joints = writer.add_topic("/joint_states", joint_type, *message_types.definition(joint_type))
    header = types["std_msgs/msg/Header"](
        stamp=types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="cam"
    )
    pixels = np.random.default_rng(0).integers(0, 256, 640 * 480 * 3, dtype=np.uint8)
    image = bytes(
        store.serialize_cdr(
            types[image_type](
                header=header,
                height=480,
                width=640,
                encoding="rgb8",
                is_bigendian=0,
                step=1920,
                data=pixels,
            ),
            image_type,
        )
    )
    state = bytes(
        store.serialize_cdr(
            types[joint_type](
                header=header,
                name=[f"j{i}" for i in range(9)],
                position=np.zeros(9),
                velocity=np.zeros(9),
                effort=np.zeros(9),
            ),
            joint_type,
        )
    )
    messages = 0
    started = time.perf_counter()
    for step in range(int(seconds * 300)):  # a 300 Hz tick: cameras every 10th, joints every 3rd
        stamp = step * 3_333_333
        if step % 10 == 0:
            for camera in cameras:
                writer.write(camera, stamp, image)
                messages += 1
        if step % 3 == 0:
            writer.write(joints, stamp, state)
            messages += 1
    summary = writer.close()
    elapsed = time.perf_counter() - started
    print(
        f"bag: {summary.bytes_written / 1e6:.0f} MB ({seconds:g} s of 3x 640x480 rgb8 at 30 Hz "
        f"+ joints at 100 Hz) in {elapsed:.2f} s: {summary.bytes_written / 1e6 / elapsed:.0f} "
        f"MB/s, {messages / elapsed:.0f} messages/s, {len(summary.files)} splits"
    )


def bench_build(folder: Path, episodes: int) -> None:
    from xwam_ros.config import load
    from xwam_ros.config.cameras import CameraSetup
    from xwam_ros.config.model import load_model_config
    from xwam_ros.config.robot import load_robot_config
    from xwam_ros.dataset.builder import build_dataset
    from xwam_ros.dataset.spec import BuildOptions, dataset_spec
    from xwam_ros.paths import config_dir

    write_episode = _test_module("xwam_ros/dataset/conftest.py").write_episode

    duration = 10.0
    for index in range(episodes):
        write_episode(folder / "bags" / f"ep{index}", duration=duration, start=100.0 * index + 1)
    robot = load_robot_config(config_dir() / "robots" / "panda.yaml")
    options = BuildOptions(val_fraction=0.0)
    spec, views = dataset_spec(
        load_model_config(config_dir() / "model" / "tiny.yaml"),
        robot,
        load(CameraSetup, config_dir() / "cameras" / "two_cameras.yaml"),
        options,
    )
    started = time.perf_counter()
    report = build_dataset(
        [folder / "bags"], folder / "data", spec, views, robot, options, progress=False
    )
    elapsed = time.perf_counter() - started
    clips = sum(o.clips for o in report.accepted)
    print(
        f"build: {episodes} episodes x {duration:g} s (2 views 64x48 at 20 Hz, 100 Hz joints, "
        f"commands) -> {clips} clips in {elapsed:.2f} s: "
        f"{elapsed / (episodes * duration):.3f} s per recorded second"
    )


def bench_train(folder: Path, steps: int) -> None:
    write_dataset = _test_module("xwam_model/training/conftest.py").write_dataset
    from xwam_model.training import TrainingConfig, train

    write_dataset(folder / "dataset")
    config = TrainingConfig(
        dataset=str(folder / "dataset"),
        output_dir=str(folder / "run"),
        preset="tiny",
        steps=steps,
        batch_size=2,
        lr=2e-3,
        warmup_steps=2,
        num_workers=0,
        val_every=0,
        checkpoint_every=10_000,
    )
    result = train(config, progress=False)
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-5:])
    print(
        f"train: tiny preset, batch 2, 2 views 32x32, 9 frames, CPU: "
        f"{result.steps_per_second:.2f} steps/s; loss {first:.3f} -> {last:.3f} "
        f"(first/last 5 of {steps} steps)"
    )


def _small_dataset(path: Path) -> None:
    """Three episodes of 20 frames of the sim's three views at 128x128 with depth (random
    pixels: speed does not depend on what they show)."""
    from xwam_model.data import DatasetSpec, DatasetWriter, EpisodeArrays, EpisodeEntry
    from xwam_model.normalization import Normalization

    spec = DatasetSpec(
        view_names=("agentview", "sideview", "wrist"),
        height=128,
        width=128,
        latent_frames=3,
        actions_per_frame=4,
        control_period=0.05,
        action_space="ee_delta",
        action_dim=7,
        proprio_dim=8,
        depth_ranges=({"near": 0.05, "far": 2.5},),
        robot="panda",
    )
    rng = np.random.default_rng(0)
    writer, arrays, frames = DatasetWriter(path, spec), [], 20
    for index in range(3):
        steps = (frames - 1) * spec.actions_per_frame
        data = EpisodeArrays(
            rgb=rng.integers(0, 255, (frames, 3, 128, 128, 3), dtype=np.uint8),
            proprio=rng.normal(size=(frames, 8)).astype(np.float32),
            actions=(rng.normal(size=(steps, 7)) * 0.01).astype(np.float32),
            first_actions=(rng.normal(size=(steps, 7)) * 0.01).astype(np.float32),
            depth=np.full((frames, 3, 128, 128), 900, np.uint16),
        )
        arrays.append(data)
        writer.add_episode(
            EpisodeEntry(
                name=f"ep{index}",
                split="train",
                instruction="lift the red cube",
                frames=frames,
                clip_starts=list(range(frames - spec.frames_per_clip + 1)),
                depth_views=[True, True, True],
            ),
            data,
        )
    normalization = Normalization.from_data(
        np.concatenate([a.actions for a in arrays]), np.concatenate([a.proprio for a in arrays])
    )
    writer.finish(normalization, {"synthetic": True})


def bench_train_small(folder: Path, steps: int) -> None:
    """The `small` preset as the shipped checkpoint trained (3 views at 128x128, batch 8),
    with the VAE encoding every step and with the latent cache."""
    from xwam_model.training import TrainingConfig, train

    _small_dataset(folder / "small")
    for cached in (False, True):
        started = time.perf_counter()
        result = train(
            TrainingConfig(
                dataset=str(folder / "small"),
                output_dir=str(folder / f"run_small_{cached}"),
                preset="small",
                steps=steps,
                batch_size=8,
                warmup_steps=2,
                num_workers=0,
                val_every=0,
                checkpoint_every=10_000,
                cache_latents=cached,
            ),
            progress=False,
        )
        total = time.perf_counter() - started
        print(
            f"train: small preset, batch 8, 3 views 128x128 + depth, "
            f"{'latents cached' if cached else 'VAE every step'}: "
            f"{result.steps_per_second:.2f} steps/s ({total:.0f} s in all for {steps} steps, "
            f"{'including encoding 36 clips once' if cached else 'no cache'})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of bag data")
    parser.add_argument("--episodes", type=int, default=4, help="episodes to build")
    parser.add_argument("--steps", type=int, default=40, help="training steps")
    parser.add_argument(
        "--small-steps", type=int, default=10, help="training steps of the small preset runs"
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="xwam_bench_"))
    try:
        bench_bag(folder, args.seconds)
        bench_build(folder, args.episodes)
        bench_train(folder, args.steps)
        bench_train_small(folder, args.small_steps)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
