"""The policy's gripper value (0 = open, 1 = closed) and the gripper joint positions it means."""

from __future__ import annotations

import numpy as np

from xwam_ros.config.robot import GripperConfig


def gripper_positions(gripper: GripperConfig, value: np.ndarray) -> np.ndarray:
    """Joint positions [..., n_joints] for gripper values [...] (clipped to [0, 1])."""
    value = np.clip(np.asarray(value, dtype=np.float64), 0.0, 1.0)[..., None]
    open_ = np.asarray(gripper.open_positions, dtype=np.float64)
    closed = np.asarray(gripper.closed_positions, dtype=np.float64)
    return open_ + value * (closed - open_)


def gripper_value(gripper: GripperConfig, positions: np.ndarray) -> float:
    """The gripper value in [0, 1] that joint `positions` are closest to (mean over joints)."""
    open_ = np.asarray(gripper.open_positions, dtype=np.float64)
    closed = np.asarray(gripper.closed_positions, dtype=np.float64)
    fraction = (np.asarray(positions, dtype=np.float64) - open_) / (closed - open_)
    return float(np.clip(fraction.mean(), 0.0, 1.0))


def gripper_limits(gripper: GripperConfig) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper position of each gripper joint (its open and closed positions)."""
    open_ = np.asarray(gripper.open_positions, dtype=np.float64)
    closed = np.asarray(gripper.closed_positions, dtype=np.float64)
    return np.minimum(open_, closed), np.maximum(open_, closed)
