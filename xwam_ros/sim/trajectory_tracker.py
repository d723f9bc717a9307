"""Joint trajectory tracking with the semantics of ros2_control's joint_trajectory_controller.

Pure Python and numpy, no ROS: the sim node turns each `trajectory_msgs/JointTrajectory` into a
`Trajectory` and asks a `TrajectoryTracker` for the joint setpoint at every control step.

What it does, as the ROS 2 joint_trajectory_controller (JTC) does:

- A trajectory is accepted whole or rejected (`InvalidTrajectoryError` says why): it has points,
  names every tracked joint exactly once (any order; unknown joints are refused), its
  `time_from_start` values increase strictly, every point has one position per joint (and one
  velocity / acceleration per joint where it has them), and a trajectory with a start time
  that already lies in the past at its last point is refused. Non-finite values are refused, and
  so is a last point with a velocity other than zero (JTC's default
  `allow_nonzero_velocity_at_trajectory_end: false`).
- Start time 0 (a header stamp of 0) means "start now": at the first control step after it
  was accepted. Otherwise point k is due at `start_time + time_from_start[k]`.
- A new trajectory replaces the active one at the first step after it arrived: the old one
  is dropped, and the state at that moment becomes the point before the new trajectory (the
  measured state, or with `from_desired_state` the last setpoint, as JTC's
  `interpolate_from_desired_state`, `open_loop_control` before Jazzy). Before
  the first point's time the setpoint moves from that state to the first point. A future start
  time therefore lengthens that first segment; the old trajectory does not keep running until
  then (that was ROS 1's trajectory merging, which ROS 2's JTC no longer does).
- Between two points: linear interpolation when either lacks velocities, cubic (positions and
  velocities) when both have them, quintic when both also have accelerations.
- After the last point the setpoint holds it (its positions, zero velocity).
- After each `sample`, `state` says where the trajectory stands as JTC's action feedback and
  tolerance checks see it: the index of the next point due, the time since the last one was
  due, and whether that sample was the trajectory's first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# JTC compares the last point's velocities with float's epsilon (in double precision).
END_VELOCITY_EPSILON = float(np.finfo(np.float32).eps)


class InvalidTrajectoryError(ValueError):
    """A trajectory was refused; the message says why (the active trajectory is unchanged)."""


@dataclass(frozen=True)
class TrajectoryPoint:
    """One waypoint: due `time_from_start` seconds after the trajectory's start."""

    time_from_start: float
    positions: np.ndarray
    velocities: np.ndarray | None = None
    accelerations: np.ndarray | None = None


@dataclass(frozen=True)
class Trajectory:
    """Waypoints for named joints; `start_time` 0 means: start when it is first sampled."""

    joint_names: tuple[str, ...]
    points: tuple[TrajectoryPoint, ...]
    start_time: float = 0.0


@dataclass(frozen=True)
class Setpoint:
    """Commanded joint positions, velocities and accelerations at one instant."""

    positions: np.ndarray
    velocities: np.ndarray
    accelerations: np.ndarray


def interpolate(
    t: float, t0: float, a: TrajectoryPoint | Setpoint, t1: float, b: TrajectoryPoint
) -> Setpoint:
    """The setpoint at `t` on the segment from state `a` at `t0` to point `b` at `t1`.

    Linear without velocities at both ends, cubic with them, quintic with accelerations too;
    outside [t0, t1] the time is clamped and the segment treated as linear, as JTC does.
    """
    duration = t1 - t0
    s = t - t0
    has_velocity = a.velocities is not None and b.velocities is not None
    has_acceleration = has_velocity and a.accelerations is not None and b.accelerations is not None
    if s < 0.0 or s > duration:
        s = min(max(s, 0.0), duration)
        has_velocity = has_acceleration = False
    p0, p1 = a.positions, b.positions
    zeros = np.zeros_like(p0)
    if duration <= 0.0:
        return Setpoint(p1.copy(), zeros, zeros.copy())
    if not has_velocity:
        slope = (p1 - p0) / duration
        return Setpoint(p0 + slope * s, slope, zeros)
    v0, v1 = a.velocities, b.velocities
    T = duration
    if not has_acceleration:
        c2 = (-3.0 * p0 + 3.0 * p1 - 2.0 * v0 * T - v1 * T) / T**2
        c3 = (2.0 * p0 - 2.0 * p1 + v0 * T + v1 * T) / T**3
        return Setpoint(
            p0 + v0 * s + c2 * s**2 + c3 * s**3,
            v0 + 2.0 * c2 * s + 3.0 * c3 * s**2,
            2.0 * c2 + 6.0 * c3 * s,
        )
    a0, a1 = a.accelerations, b.accelerations
    c2 = 0.5 * a0
    c3 = (-20 * p0 + 20 * p1 - 3 * a0 * T**2 + a1 * T**2 - 12 * v0 * T - 8 * v1 * T) / (2 * T**3)
    c4 = (30 * p0 - 30 * p1 + 3 * a0 * T**2 - 2 * a1 * T**2 + 16 * v0 * T + 14 * v1 * T) / (
        2 * T**4
    )
    c5 = (-12 * p0 + 12 * p1 - a0 * T**2 + a1 * T**2 - 6 * v0 * T - 6 * v1 * T) / (2 * T**5)
    return Setpoint(
        p0 + v0 * s + c2 * s**2 + c3 * s**3 + c4 * s**4 + c5 * s**5,
        v0 + 2 * c2 * s + 3 * c3 * s**2 + 4 * c4 * s**3 + 5 * c5 * s**4,
        2 * c2 + 6 * c3 * s + 12 * c4 * s**2 + 20 * c5 * s**3,
    )


@dataclass(frozen=True)
class TrackingState:
    """Where the active trajectory stood at the last `TrajectoryTracker.sample`."""

    next_index: int
    """Index of the next point due: 0 before the first point's time, k + 1 between points k
    and k + 1, the number of points after the last one (JTC's feedback `index`)."""
    elapsed: float
    """Seconds since the trajectory's start (negative while a future start is awaited)."""
    after_end: float
    """Seconds since the last point was due (negative before then)."""
    first_sample: bool
    """Whether that sample was the first of this trajectory (it starts from that state)."""

    @property
    def finished(self) -> bool:
        """Whether the last point's time has come (the setpoint holds the last point)."""
        return self.after_end >= 0.0


@dataclass
class _ActiveTrajectory:
    """A trajectory being executed: its absolute start and the state it started from."""

    trajectory: Trajectory
    start: float
    before_time: float
    before: Setpoint | TrajectoryPoint

    def sample(self, now: float) -> Setpoint:
        points = self.trajectory.points
        first_time = self.start + points[0].time_from_start
        if now < first_time:
            return interpolate(now, self.before_time, self.before, first_time, points[0])
        for a, b in zip(points[:-1], points[1:]):
            t0, t1 = self.start + a.time_from_start, self.start + b.time_from_start
            if t0 <= now < t1:
                return interpolate(now, t0, a, t1, b)
        last = points[-1].positions
        return Setpoint(last.copy(), np.zeros_like(last), np.zeros_like(last))

    def state(self, now: float, first_sample: bool) -> TrackingState:
        points = self.trajectory.points
        due = [self.start + p.time_from_start for p in points]
        next_index = sum(1 for t in due if t <= now)
        return TrackingState(next_index, now - self.start, now - due[-1], first_sample)


class TrajectoryTracker:
    """The setpoint generator of one joint_trajectory_controller (see the module docstring)."""

    def __init__(self, joint_names: Sequence[str], from_desired_state: bool = False):
        if len(set(joint_names)) != len(joint_names) or not joint_names:
            raise ValueError(f"joint names must be unique and not empty, got {list(joint_names)}")
        self.joint_names = tuple(joint_names)
        self.from_desired_state = from_desired_state
        self._pending: Trajectory | None = None
        self._active: _ActiveTrajectory | None = None
        self._last: Setpoint | None = None
        self.state: TrackingState | None = None
        """Progress of the active trajectory at the last `sample`; None while holding."""

    def hold(self, positions: np.ndarray) -> None:
        """Drop any trajectory and hold `positions` (at start, and after an episode reset)."""
        positions = np.asarray(positions, dtype=np.float64).copy()
        self._pending = self._active = self.state = None
        self._last = Setpoint(positions, np.zeros_like(positions), np.zeros_like(positions))

    def accept(self, trajectory: Trajectory, now: float) -> None:
        """Validate `trajectory` and make it replace the active one at the next `sample`.

        Raises InvalidTrajectoryError (see `validate`); the active trajectory is then kept.
        """
        self._pending = self.validate(trajectory, now)

    @property
    def setpoint(self) -> Setpoint | None:
        """The setpoint of the last `sample` (the held one after `hold`); None before any."""
        return self._last

    @property
    def following(self) -> bool:
        """Whether a trajectory is active or waiting for the next `sample` (not holding)."""
        return self._pending is not None or self._active is not None

    def sample(
        self, now: float, measured_positions: np.ndarray, measured_velocities: np.ndarray
    ) -> Setpoint:
        """The setpoint at `now`; the measured state starts a newly accepted trajectory."""
        first_sample = self._pending is not None
        if self._pending is not None:
            if self.from_desired_state and self._last is not None:
                before = self._last
            else:
                before = TrajectoryPoint(
                    now,
                    np.asarray(measured_positions, dtype=np.float64),
                    np.asarray(measured_velocities, dtype=np.float64),
                )
            start = self._pending.start_time or now
            self._active = _ActiveTrajectory(self._pending, start, now, before)
            self._pending = None
        if self._active is not None:
            self._last = self._active.sample(now)
            self.state = self._active.state(now, first_sample)
        elif self._last is None:
            self.hold(measured_positions)
        return self._last

    def validate(self, trajectory: Trajectory, now: float) -> Trajectory:
        """`trajectory` reordered to this tracker's joints, checked as the module docstring
        says at simulated time `now` (s).

        Raises InvalidTrajectoryError saying what is wrong. Reads nothing but the joint names,
        so it may run in any thread.
        """
        names = list(trajectory.joint_names)
        if not trajectory.points:
            raise InvalidTrajectoryError("empty trajectory: it has no points")
        if len(set(names)) != len(names):
            raise InvalidTrajectoryError(f"joint names repeat: {names}")
        unknown = sorted(set(names) - set(self.joint_names))
        missing = [n for n in self.joint_names if n not in names]
        if unknown or missing:
            raise InvalidTrajectoryError(
                f"joint names must be exactly {list(self.joint_names)} (unknown: {unknown}, "
                f"missing: {missing})"
            )
        order = [names.index(n) for n in self.joint_names]
        points = []
        previous = -math.inf
        for k, point in enumerate(trajectory.points):
            if not point.time_from_start > previous:
                raise InvalidTrajectoryError(
                    f"time_from_start must increase strictly: point {k} at "
                    f"{point.time_from_start:.6f} s follows {previous:.6f} s"
                )
            if point.time_from_start < 0:
                raise InvalidTrajectoryError(f"point {k}: negative time_from_start")
            previous = point.time_from_start
            points.append(self._reordered(point, order, k))
        end_velocities = points[-1].velocities
        if end_velocities is not None and np.abs(end_velocities).max() > END_VELOCITY_EPSILON:
            moving = [
                f"{name} {v:g}"
                for name, v in zip(self.joint_names, end_velocities)
                if abs(v) > END_VELOCITY_EPSILON
            ]
            raise InvalidTrajectoryError(
                f"the last point's velocities must be zero (a trajectory ends at rest): "
                f"{', '.join(moving)}"
            )
        if trajectory.start_time != 0.0 and trajectory.start_time + previous < now:
            raise InvalidTrajectoryError(
                f"the trajectory ends in the past: start {trajectory.start_time:.3f} s + "
                f"{previous:.3f} s is before now ({now:.3f} s)"
            )
        return Trajectory(self.joint_names, tuple(points), trajectory.start_time)

    def _reordered(self, point: TrajectoryPoint, order: list[int], k: int) -> TrajectoryPoint:
        fields = {}
        for field in ("positions", "velocities", "accelerations"):
            values = getattr(point, field)
            if values is None or len(values) == 0:
                if field == "positions":
                    raise InvalidTrajectoryError(
                        f"point {k} has no positions (the joints take position commands)"
                    )
                fields[field] = None
                continue
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (len(order),):
                raise InvalidTrajectoryError(
                    f"point {k}: {len(values)} {field} for {len(order)} joints"
                )
            if not np.all(np.isfinite(values)):
                raise InvalidTrajectoryError(f"point {k}: non-finite {field}")
            fields[field] = values[order]
        return TrajectoryPoint(point.time_from_start, **fields)
