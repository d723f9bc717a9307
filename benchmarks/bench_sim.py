"""Speed of the simulated arm: control steps per second with and without rendering.

    python benchmarks/bench_sim.py
    python benchmarks/bench_sim.py --task Stack --size 256 192 --control-rate 50 --seconds 5

Measures the simulation core the `sim_arm` node runs (robosuite physics, the joint position
controller, the fast offscreen renderer; no ROS), on the setup's three cameras (RGB + metric
depth), in three schedules:

- no rendering: physics and control only;
- rendering every step: all cameras rendered after each control step;
- node schedule: cameras rendered every control_rate / camera_rate steps, as the node does.

The real-time factor is simulated seconds per wall second: what the node reaches uncapped
(`real_time_factor:=0`), before its ROS publishing. Timings exclude the first steps (numba
compilation, first frame).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from xwam_ros.sim.environment import PandaSimulation  # noqa: E402

CAMERAS = ["agentview", "sideview", "robot0_eye_in_hand"]


def run(sim: PandaSimulation, steps: int, render_every: int | None) -> float:
    """Wall seconds for `steps` control steps, rendering every `render_every` steps."""
    arm, fingers = sim.arm_positions, sim.finger_positions
    wiggle = np.array([0.1, -0.1, 0.1, 0.1, 0.0, 0.1, 0.1])
    start = time.perf_counter()
    for step in range(1, steps + 1):
        # A slow sinusoid keeps the arm moving, as it would under a policy.
        sim.step(arm + wiggle * np.sin(step * sim.control_period), fingers)
        if render_every and step % render_every == 0:
            for camera in sim.cameras.values():
                camera.render()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="Lift")
    parser.add_argument("--size", type=int, nargs=2, default=[128, 128], metavar=("W", "H"))
    parser.add_argument("--control-rate", type=float, default=100.0, help="Hz")
    parser.add_argument("--camera-rate", type=float, default=10.0, help="Hz")
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated s per schedule")
    args = parser.parse_args()

    sim = PandaSimulation(args.task, args.control_rate, CAMERAS, tuple(args.size))
    run(sim, 5, render_every=1)  # warm-up: numba kernels, first frames
    steps = max(1, round(args.seconds * args.control_rate))
    node_every = max(1, round(args.control_rate / args.camera_rate))
    print(
        f"{args.task}, Panda, control {args.control_rate:g} Hz, {len(CAMERAS)} cameras "
        f"{args.size[0]}x{args.size[1]} RGB + depth (a frame: all of them), "
        f"{args.seconds:g} simulated s per row"
    )
    print(f"{'schedule':<34}{'steps/s':>10}{'frames/s':>10}{'real-time factor':>18}")
    for name, every in (
        ("no rendering", None),
        ("rendering every step", 1),
        (f"node schedule (cameras {args.control_rate / node_every:g} Hz)", node_every),
    ):
        sim.reset(seed=0)
        wall = run(sim, steps, every)
        frames = steps // every if every else 0
        simulated = steps / args.control_rate
        print(f"{name:<34}{steps / wall:>10.1f}{frames / wall:>10.1f}{simulated / wall:>18.2f}")
    sim.close()


if __name__ == "__main__":
    main()
