"""Joint targets with their times -> the messages the controllers take.

A `Plan` is an accepted chunk, ready to send: the kept steps' times (seconds from the moment
it was planned), arm positions and velocities, and gripper positions. `trajectory_messages`
turns it into one `trajectory_msgs/JointTrajectory` per controller (keyed by the topic or the
FollowJointTrajectory action it goes to): header stamp 0 (start on receipt),
`time_from_start` strictly increasing, positions and velocities at every point so the
joint_trajectory_controller interpolates with cubic splines. `hold_trajectories` is the JTC's
way to stop: a trajectory that brakes to a point at zero velocity a short time ahead, stamped
with the time its braking curve starts when the controller's clock is known to agree (so a
late delivery joins the curve where it is by then, instead of starting it over behind the arm).
Forward-command grippers get their positions at each step's time, action grippers an open or
close goal when the decision changes, both from a `GripperSchedule`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_ros.config.robot import RobotConfig
from xwam_ros.executor.gripper import gripper_value


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
    unreachable: str = ""  # why the chunk's later steps are not in the plan (out of reach)
    blended: int = 0  # leading steps blended in from the command being executed
    blend_offset: float = 0.0  # largest |chunk - command| at its first point (rad or m)

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

    def gripper_at(self, t_ns: int) -> list[np.ndarray] | None:
        """Commanded gripper joint positions per arm at `t_ns` (linear between points, the
        first point before it), or None when the plan commands no gripper."""
        if self.gripper is None:
            return None
        t = (t_ns - self.planned_ns) * 1e-9
        return [
            np.array([np.interp(t, self.times, g[:, j]) for j in range(g.shape[1])])
            for g in self.gripper
        ]


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
    joint_names: list[str],
    times: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray,
    start_ns: int = 0,
) -> JointTrajectory:
    """A JointTrajectory through the given points (times [P] s after its start, positions and
    velocities [P, J]), starting at `start_ns` (header stamp; 0: on receipt)."""
    msg = JointTrajectory()
    msg.header.stamp = Time(sec=start_ns // 10**9, nanosec=start_ns % 10**9)
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


def _controller_columns(
    config: RobotConfig,
    arm_columns: list[tuple[np.ndarray, np.ndarray]],
    gripper_columns: list[list[tuple[np.ndarray, np.ndarray]] | None],
) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """Group per-joint columns (positions, velocities over the points) by controller: per
    command name, the joint names and the [points, joints] positions and velocities."""
    columns: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    start = 0
    for a, arm in enumerate(config.arms):
        for j, name in enumerate(arm.joint_names):
            columns.setdefault(arm.command_name, []).append((name, *arm_columns[start + j]))
        start += len(arm.joints)
        if gripper_columns[a] is not None and arm.gripper.interface == "joint_trajectory":
            for j, name in enumerate(arm.gripper.joints):
                columns.setdefault(arm.gripper.topic, []).append((name, *gripper_columns[a][j]))
    return {
        name: (
            [n for n, _, _ in entries],
            np.stack([p for _, p, _ in entries], axis=1),
            np.stack([v for _, _, v in entries], axis=1),
        )
        for name, entries in columns.items()
    }


def trajectory_messages(config: RobotConfig, plan: Plan) -> dict[str, JointTrajectory]:
    """One JointTrajectory per controller, keyed by its command name (`ArmConfig.command_name`:
    a topic, or a FollowJointTrajectory action): the arms', and joint_trajectory grippers'."""
    arm_columns = [(plan.arm[:, j], plan.arm_velocity[:, j]) for j in range(plan.arm.shape[1])]
    gripper_columns = [
        None
        if plan.gripper is None
        else [
            (plan.gripper[a][:, j], plan.gripper_velocity[a][:, j])
            for j in range(plan.gripper[a].shape[1])
        ]
        for a in range(len(config.arms))
    ]
    return {
        name: joint_trajectory(names, plan.times, positions, velocities)
        for name, (names, positions, velocities) in _controller_columns(
            config, arm_columns, gripper_columns
        ).items()
    }


HOLD_TAIL = 1.0
"""Seconds a stamped hold trajectory stays at its stop point after reaching it: the JTC refuses
a stamped trajectory that ends in the past, so a hold delivered late must still end ahead."""


def stop_point(
    q: np.ndarray, velocity: np.ndarray, hold_time: float, limits: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Where joints at `q` [J] moving at `velocity` [J] come to rest braking evenly within
    `hold_time` s: q + v t / 2, clipped to `limits` = (lower, upper) [J]."""
    return np.clip(np.asarray(q) + np.asarray(velocity) * hold_time / 2, *limits)


def hold_trajectories(
    config: RobotConfig,
    arm_q: np.ndarray,
    arm_velocity: np.ndarray,
    gripper_q: list[np.ndarray | None],
    hold_time: float,
    limits: tuple[np.ndarray, np.ndarray],
    start_ns: int = 0,
) -> dict[str, JointTrajectory]:
    """Trajectories that stop every controller, keyed as `trajectory_messages`.

    The arm joints brake evenly from `arm_velocity` [J] (rad/s) to rest at `stop_point`
    (within `limits` = (lower, upper) [J]) at `hold_time` s (> 0): the spline from (q, v) to
    that point at zero velocity never turns back, while a hold at q itself would overshoot
    it and return.

    `start_ns` > 0: `arm_q` is where the arm is at `start_ns` on the controller's clock; the
    trajectory is stamped `start_ns` with points (q, v) at 0, the stop point at `hold_time`,
    and the stop point again `HOLD_TAIL` s later. The controller samples the curve at the time
    it receives it, so a delivery late by L starts braking from where the arm is by then (an
    error of v L^2 / (2 hold_time)), not from q. `start_ns` 0 (the controller's clock is not
    known to agree): one point, the stop point, `hold_time` s after receipt; a delivery late by
    more than `hold_time` / 6 then turns the arm back a little.

    Grippers on joint_trajectory controllers are held at `gripper_q` (per arm, when known). A
    gripper whose position is unknown is left out when it has a topic of its own; on its arm's
    topic its joints must be named (the JTC refuses partial goals), so `gripper_q` must hold
    it. Raises ValueError for `hold_time` <= 0 or such a missing gripper position.
    """
    if hold_time <= 0:
        raise ValueError(f"hold_time must be > 0 s, got {hold_time}")
    q = np.asarray(arm_q, dtype=np.float64)
    v = np.asarray(arm_velocity, dtype=np.float64)
    stop = stop_point(q, v, hold_time, limits)
    if start_ns:
        times = np.array([0.0, hold_time, hold_time + HOLD_TAIL])
        positions, velocities = np.stack([q, stop, stop]), np.stack([v, 0 * v, 0 * v])
    else:
        times = np.array([hold_time])
        positions, velocities = stop[None, :], np.zeros((1, len(stop)))
    arm_columns = [(positions[:, j], velocities[:, j]) for j in range(len(q))]
    rest = np.zeros(len(times))
    gripper_columns = [
        None if g is None else [(np.full(len(times), x), rest) for x in g] for g in gripper_q
    ]
    for arm, columns in zip(config.arms, gripper_columns):
        shared = arm.gripper.interface == "joint_trajectory" and arm.gripper.topic == (
            arm.command_name
        )
        if shared and columns is None:
            raise ValueError(
                f"the gripper of arm '{arm.name}' shares its controller ({arm.command_name}); "
                "its position is needed to hold the arm"
            )
    return {
        name: joint_trajectory(names, times, p, vel, start_ns)
        for name, (names, p, vel) in _controller_columns(
            config, arm_columns, gripper_columns
        ).items()
    }


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
    due = _send_times(config, plan)
    for a, arm in enumerate(config.arms):
        if arm.gripper.interface == "forward_command":
            commands[arm.gripper.topic] = [
                (int(t), positions) for t, positions in zip(due, plan.gripper[a])
            ]
    return commands


def gripper_goals(config: RobotConfig, plan: Plan) -> dict[str, list[tuple[int, bool]]]:
    """Per action gripper (keyed by its action name): (send time ns, close) of every kept step,
    close = the step's gripper value is at least the gripper's `close_threshold`. Timed as
    `forward_gripper_commands`; the sender skips a goal equal to the last one it sent."""
    goals: dict[str, list[tuple[int, bool]]] = {}
    if plan.gripper is None:
        return goals
    due = _send_times(config, plan)
    for a, arm in enumerate(config.arms):
        gripper = arm.gripper
        if gripper.uses_action:
            goals[gripper.action] = [
                (int(t), gripper_value(gripper, positions) >= gripper.close_threshold)
                for t, positions in zip(due, plan.gripper[a])
            ]
    return goals


def _send_times(config: RobotConfig, plan: Plan) -> np.ndarray:
    send = np.maximum(plan.times - config.control_period, 0.0)
    return plan.planned_ns + np.round(send * 1e9).astype(np.int64)


class GripperSchedule:
    """Gripper commands waiting for their time: per command name (a topic or an action),
    (send time ns, command) entries, the command being joint positions (forward_command) or a
    close decision (action grippers).

    A new chunk replaces a name's schedule. `due(now)` gives, per name, the latest command
    whose time has come (one command per name per call, never a backlog).
    """

    def __init__(self):
        self._pending: dict[str, list[tuple[int, Any]]] = {}

    def replace(self, commands: dict[str, list[tuple[int, Any]]]) -> None:
        """Replace the schedule of each name in `commands`."""
        for name, entries in commands.items():
            self._pending[name] = list(entries)

    def due(self, now_ns: int) -> dict[str, Any]:
        """The commands to send now, and remove them (and anything older) from the schedule."""
        ready = {}
        for name, entries in self._pending.items():
            passed = [entry for entry in entries if entry[0] <= now_ns]
            if passed:
                ready[name] = passed[-1][1]
                self._pending[name] = entries[len(passed) :]
        return ready

    def clear(self) -> None:
        """Forget everything scheduled (stop sending)."""
        self._pending.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._pending.values())
