"""The measured joint state: the latest value of every joint, and a short history of the arms.

`/joint_states` may come in pieces (arm and gripper from different publishers), so values are
merged by name. The history lets an ee_delta chunk start from the pose the robot had at the
chunk's observation time, not the pose it has when the chunk arrives.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MeasuredState:
    """The robot's joint vector (configured order) as last measured."""

    q: np.ndarray
    velocity: np.ndarray | None
    gripper: list[np.ndarray | None]
    stamp_ns: int
    received_ns: int


class JointStateBuffer:
    """Collects joint states by name; gives the latest state and the arms' state at a time."""

    def __init__(
        self, joint_names: list[str], gripper_joints: list[list[str]], history_s: float = 3.0
    ):
        self.joint_names = list(joint_names)
        self.gripper_joints = [list(g) for g in gripper_joints]
        self.history_ns = int(history_s * 1e9)
        self._position: dict[str, float] = {}
        self._velocity: dict[str, float] = {}
        self._history: deque[tuple[int, np.ndarray]] = deque()
        self._latest: MeasuredState | None = None

    def update(
        self,
        names: list[str],
        positions: list[float],
        velocities: list[float],
        stamp_ns: int,
        received_ns: int,
    ) -> None:
        """Merge one JointState message (a zero stamp means: measured when received)."""
        stamp_ns = stamp_ns or received_ns
        has_velocity = len(velocities) == len(names)
        for i, name in enumerate(names):
            if i < len(positions):
                self._position[name] = float(positions[i])
            if has_velocity:
                self._velocity[name] = float(velocities[i])
        if not all(name in self._position for name in self.joint_names):
            return
        q = np.array([self._position[n] for n in self.joint_names])
        velocity = None
        if all(n in self._velocity for n in self.joint_names):
            velocity = np.array([self._velocity[n] for n in self.joint_names])
        gripper = [
            np.array([self._position[n] for n in joints])
            if all(n in self._position for n in joints)
            else None
            for joints in self.gripper_joints
        ]
        self._latest = MeasuredState(q, velocity, gripper, stamp_ns, received_ns)
        if not self._history or stamp_ns > self._history[-1][0]:
            self._history.append((stamp_ns, q))
        while self._history and self._history[0][0] < stamp_ns - self.history_ns:
            self._history.popleft()

    def latest(self) -> MeasuredState | None:
        """The latest complete state (every arm joint known), or None before there is one."""
        return self._latest

    def arms_at(self, stamp_ns: int) -> np.ndarray | None:
        """The arms' joint vector at `stamp_ns`, interpolated (the nearest end outside history)."""
        if not self._history:
            return None
        stamps = np.array([s for s, _ in self._history])
        index = int(np.searchsorted(stamps, stamp_ns))
        if index == 0:
            return self._history[0][1]
        if index == len(stamps):
            return self._history[-1][1]
        (s0, q0), (s1, q1) = self._history[index - 1], self._history[index]
        weight = (stamp_ns - s0) / (s1 - s0)
        return q0 + weight * (q1 - q0)
