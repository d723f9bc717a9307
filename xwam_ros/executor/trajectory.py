"""Joint targets with their times -> the messages the controllers take.

A `Plan` is an accepted chunk, ready to send: the kept steps' times (seconds from the moment
it was planned), arm positions and velocities, and gripper positions. `trajectory_messages`
turns it into one `trajectory_msgs/JointTrajectory` per controller topic: header stamp 0
(start on receipt), `time_from_start` strictly increasing, positions and velocities at every
point so the joint_trajectory_controller interpolates with cubic splines. Forward-command
grippers get their positions at each step's time from a `GripperSchedule`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_ros.config.robot import RobotConfig


@dataclass(frozen=True)
class Plan:
    """An accepted chunk as timed joint targets; times are seconds after `planned_ns`."""

    chunk_id: int
    chunk_stamp_ns: int
    planned_ns: int
    dropped: int
    times: np.ndarray
    start: np.ndarray
    start_velocity: np.ndarray
    arm: np.ndarray
    arm_velocity: np.ndarray
    gripper: list[np.ndarray] | None
    gripper_velocity: list[np.ndarray] | None
    clamped: int = 0

    def rebased(self, now_ns: int) -> Plan:
        """The same points with times counted from `now_ns` (planning took time)."""
        shift = (now_ns - self.planned_ns) * 1e-9
        return dataclasses.replace(self, planned_ns=now_ns, times=self.times - shift)

    @property
    def end_ns(self) -> int:
        """When the last point is reached."""
        return self.planned_ns + int(round(self.times[-1] * 1e9))

    def sample(self, t_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """Commanded arm positions and velocities at `t_ns` (linear between points)."""
        t = (t_ns - self.planned_ns) * 1e-9
        times = np.concatenate([[0.0], self.times])
        positions = np.vstack([self.start[None, :], self.arm])
        velocities = np.vstack([self.start_velocity[None, :], self.arm_velocity])
        q = np.array([np.interp(t, times, positions[:, j]) for j in range(positions.shape[1])])
        v = np.array([np.interp(t, times, velocities[:, j]) for j in range(positions.shape[1])])
        return q, v


def point_velocities(start: np.ndarray, times: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Velocities at each point: central differences, the start (time 0) before the first.

    The last point gets zero velocity: if no further chunk arrives the arm comes to rest
    there rather than overshoot it; a chunk that does arrive replaces the tail before.
    """
    times_all = np.concatenate([[0.0], times])
    path = np.vstack([start[None, :], positions])
    velocities = np.zeros_like(positions)
    if len(times) > 1:
        span = (times_all[2:] - times_all[:-2])[:, None]
        velocities[:-1] = (path[2:] - path[:-2]) / span
    return velocities


def duration(seconds: float) -> Duration:
    """A builtin_interfaces/Duration of `seconds` (>= 0)."""
    nanoseconds = int(round(seconds * 1e9))
    return Duration(sec=nanoseconds // 10**9, nanosec=nanoseconds % 10**9)


def joint_trajectory(
    joint_names: list[str], times: np.ndarray, positions: np.ndarray, velocities: np.ndarray
) -> JointTrajectory:
    """A JointTrajectory starting on receipt (header stamp 0) through the given points."""
    msg = JointTrajectory()
    msg.joint_names = list(joint_names)
    for t, q, v in zip(times, positions, velocities):
        msg.points.append(
            JointTrajectoryPoint(
                positions=[float(x) for x in q],
                velocities=[float(x) for x in v],
                time_from_start=duration(float(t)),
            )
        )
    return msg


def trajectory_messages(config: RobotConfig, plan: Plan) -> dict[str, JointTrajectory]:
    """One JointTrajectory per controller topic: the arms', and joint_trajectory grippers'."""
    columns: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    start = 0
    for a, arm in enumerate(config.arms):
        for j, name in enumerate(arm.joint_names):
            entry = (name, plan.arm[:, start + j], plan.arm_velocity[:, start + j])
            columns.setdefault(arm.trajectory_topic, []).append(entry)
        start += len(arm.joints)
        if plan.gripper is not None and arm.gripper.interface == "joint_trajectory":
            for j, name in enumerate(arm.gripper.joints):
                entry = (name, plan.gripper[a][:, j], plan.gripper_velocity[a][:, j])
                columns.setdefault(arm.gripper.topic, []).append(entry)
    messages = {}
    for topic, entries in columns.items():
        names = [name for name, _, _ in entries]
        positions = np.stack([p for _, p, _ in entries], axis=1)
        velocities = np.stack([v for _, _, v in entries], axis=1)
        messages[topic] = joint_trajectory(names, plan.times, positions, velocities)
    return messages


def forward_gripper_commands(
    config: RobotConfig, plan: Plan
) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Per forward-command gripper topic: (send time ns, joint positions) of every kept step.

    Each step's positions are sent one control period before the step is due, at the start
    of the segment that leads to it, so the gripper moves during the segment as the arm does.
    """
    commands: dict[str, list[tuple[int, np.ndarray]]] = {}
    if plan.gripper is None:
        return commands
    send = np.maximum(plan.times - config.control_period, 0.0)
    due = plan.planned_ns + np.round(send * 1e9).astype(np.int64)
    for a, arm in enumerate(config.arms):
        if arm.gripper.interface == "forward_command":
            commands[arm.gripper.topic] = [
                (int(t), positions) for t, positions in zip(due, plan.gripper[a])
            ]
    return commands


class GripperSchedule:
    """Forward-command gripper positions waiting for their time.

    A new chunk replaces a topic's schedule. `due(now)` gives, per topic, the latest positions
    whose time has come (one command per topic per call, never a backlog).
    """

    def __init__(self):
        self._pending: dict[str, list[tuple[int, np.ndarray]]] = {}

    def replace(self, commands: dict[str, list[tuple[int, np.ndarray]]]) -> None:
        """Replace the schedule of each topic in `commands`."""
        for topic, entries in commands.items():
            self._pending[topic] = list(entries)

    def due(self, now_ns: int) -> dict[str, Float64MultiArray]:
        """The commands to send now, and remove them (and anything older) from the schedule."""
        ready = {}
        for topic, entries in self._pending.items():
            passed = [entry for entry in entries if entry[0] <= now_ns]
            if passed:
                ready[topic] = Float64MultiArray(data=[float(x) for x in passed[-1][1]])
                self._pending[topic] = entries[len(passed) :]
        return ready

    def clear(self) -> None:
        """Forget everything scheduled (stop sending)."""
        self._pending.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._pending.values())
