"""Chunk generator node: synthetic joint-position action chunks, without a model.

For bringing up the executor and the controller on a new arm before a checkpoint is
involved: every `chunk_period` seconds it publishes a chunk of `num_steps` joint positions
following `center + amplitude * sin(2 pi f t)` on every joint, stamped now, in the same
ActionChunk format the model node publishes.
"""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration
from rclpy.node import Node

from xwam_msgs.msg import ActionChunk
from xwam_ros.node_support import Param, declare_parameters, run_node

PARAMS = (
    Param("action_chunk_topic", "/xwam_model/action_chunk", "where chunks are published"),
    Param("joint_names", ["joint1"], "joint names, one per action column"),
    Param("center", [0.0], "joint positions the motion oscillates around (rad or m)"),
    Param("amplitude", 0.05, "oscillation amplitude (rad or m)"),
    Param("frequency", 0.2, "oscillation frequency (Hz)"),
    Param("num_steps", 8, "steps per chunk"),
    Param("step_period", 0.05, "seconds between steps"),
    Param("chunk_period", 0.4, "seconds between chunks"),
    Param("frame_id", "base_link", "frame of the chunk header"),
)


def sine_chunk(
    center: np.ndarray,
    amplitude: float,
    frequency: float,
    start: float,
    num_steps: int,
    step_period: float,
) -> np.ndarray:
    """Joint positions [num_steps, dof] of the sine motion, step k at start + (k+1)*period."""
    times = start + step_period * np.arange(1, num_steps + 1)
    wave = amplitude * np.sin(2.0 * math.pi * frequency * times)
    return (center[None, :] + wave[:, None]).astype(np.float32)


class ChunkGenerator(Node):
    """Publishes synthetic joint-position chunks at a fixed period."""

    def __init__(self):
        super().__init__("xwam_chunk_generator")
        self.p = declare_parameters(self, PARAMS)
        names, center = self.p["joint_names"], self.p["center"]
        if len(names) != len(center):
            raise ValueError(
                f"center has {len(center)} values but joint_names has "
                f"{len(names)}: give one center position per joint"
            )
        for key in ("num_steps", "step_period", "chunk_period"):
            if self.p[key] <= 0:
                raise ValueError(f"{key} must be > 0, got {self.p[key]}")
        self.center = np.asarray(center, dtype=np.float64)
        self.chunk_id = 0
        self.t0 = self.get_clock().now()
        self.publisher = self.create_publisher(ActionChunk, self.p["action_chunk_topic"], 10)
        self.create_timer(self.p["chunk_period"], self.publish_chunk)

    def publish_chunk(self) -> None:
        now = self.get_clock().now()
        start = (now - self.t0).nanoseconds * 1e-9
        actions = sine_chunk(
            self.center,
            self.p["amplitude"],
            self.p["frequency"],
            start,
            self.p["num_steps"],
            self.p["step_period"],
        )
        self.chunk_id += 1
        msg = ActionChunk()
        msg.header.stamp = now.to_msg()
        msg.header.frame_id = self.p["frame_id"]
        msg.chunk_id = self.chunk_id
        msg.action_space = ActionChunk.ACTION_SPACE_JOINT_POSITION
        msg.num_steps, msg.action_dim = actions.shape
        period_ns = round(self.p["step_period"] * 1e9)
        msg.step_period = Duration(sec=period_ns // 10**9, nanosec=period_ns % 10**9)
        msg.actions = actions.ravel()
        msg.joint_names = list(self.p["joint_names"])
        msg.model_id = "chunk_generator"
        self.publisher.publish(msg)


def main(args=None) -> int:
    return run_node(ChunkGenerator, args)


if __name__ == "__main__":
    raise SystemExit(main())
