"""The expert's plans for Lift and Stack: from the gripper's start pose and the cubes' poses to
joint positions at every control step (pure Python, no ROS).

The motion, in the robot base frame: reach above the cube (`approach_height` over its centre)
while turning the hand about the vertical so the fingers close on two faces of the cube (the
smallest turn that aligns them; a cube looks the same every 90 degrees), descend to the cube's
centre, close the fingers, lift by `lift_height`, hold (Stack: carry it over the other cube,
lower it onto it, open, retreat). Positions follow minimum-jerk profiles
between waypoints and orientations a slerp; Pinocchio IK (the executor's solver) turns each
pose into joint positions, each solve seeded with the previous step's solution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pinocchio as pin

from xwam_ros.executor.kinematics import ArmKinematics, pose_from_xyz_wxyz


class PlanningError(RuntimeError):
    """The expert cannot reach a pose of its plan; says which and how far off IK stayed."""


def _scaled(timing, names: tuple[str, ...], rng: np.random.Generator, spread: float):
    """`timing` with the durations `names` each scaled by a factor drawn in 1 +- `spread`."""
    factors = {n: getattr(timing, n) * float(rng.uniform(1 - spread, 1 + spread)) for n in names}
    return replace(timing, **factors)


@dataclass(frozen=True)
class LiftTiming:
    """Durations (s) of the phases of a lift, and its heights (m)."""

    settle: float = 0.3
    reach: float = 1.8
    descend: float = 1.0
    close: float = 0.7
    lift: float = 1.5
    hold: float = 0.5
    approach_height: float = 0.10
    grasp_offset: float = 0.0
    """Height of the fingertip centre (TCP) over the cube's centre when the fingers close."""
    lift_height: float = 0.15

    def jittered(self, rng: np.random.Generator, spread: float = 0.15) -> LiftTiming:
        """These timings with each phase's duration scaled by a factor in 1 +- `spread`, so
        demonstrations of one task do not all move at one speed."""
        return _scaled(self, ("reach", "descend", "close", "lift"), rng, spread)


@dataclass(frozen=True)
class ExpertPlan:
    """Joint positions and gripper commands at every control step, from the episode's start."""

    arm: np.ndarray
    """[T, joints] arm joint positions (the robot YAML's order)."""
    gripper: np.ndarray
    """[T] gripper command, 0 open to 1 closed."""
    period: float
    """Seconds between steps."""

    @property
    def duration(self) -> float:
        """Seconds from the first step to the last."""
        return (len(self.arm) - 1) * self.period


def yaw_of(rotation: np.ndarray) -> float:
    """Heading (rad) of a rotation's x axis in the base's xy plane."""
    return math.atan2(rotation[1, 0], rotation[0, 0])


def grasp_turn(hand: np.ndarray, cube: np.ndarray) -> float:
    """The smallest turn about the vertical (rad, in [-pi/4, pi/4)) that squares the hand
    with the cube's faces."""
    quarter = math.pi / 2
    difference = yaw_of(cube) - yaw_of(hand)
    return (difference + quarter / 2) % quarter - quarter / 2


def min_jerk(s: np.ndarray) -> np.ndarray:
    """The minimum-jerk time scaling of s in [0, 1]."""
    return s**3 * (10 - 15 * s + 6 * s**2)


def _segment(start: pin.SE3, end: pin.SE3, steps: int) -> list[pin.SE3]:
    """Poses from start (excluded) to end (included) in `steps` steps."""
    if steps <= 0:
        return []
    q0, q1 = pin.Quaternion(start.rotation), pin.Quaternion(end.rotation)
    poses = []
    for s in min_jerk(np.arange(1, steps + 1) / steps):
        rotation = q0.slerp(float(s), q1).toRotationMatrix()
        translation = (1 - s) * start.translation + s * end.translation
        poses.append(pin.SE3(rotation, translation))
    return poses


def follow(
    arm: ArmKinematics,
    q_start: np.ndarray,
    phases: list[tuple[pin.SE3, float, float]],
    period: float,
    tolerance: float = 0.005,
) -> ExpertPlan:
    """Joint positions along `phases` (target pose, seconds, gripper at its end) from the
    arm's `q_start`: minimum-jerk segments, the gripper ramping linearly over a phase that
    changes it, each pose solved by IK seeded with the previous step's solution."""
    poses: list[pin.SE3] = [arm.forward(q_start)]
    gripper: list[float] = [phases[0][2] if phases else 0.0]
    for target, seconds, grip in phases:
        n = max(int(round(seconds / period)), 0)
        poses += _segment(poses[-1], target, n)
        gripper += list(np.linspace(gripper[-1], grip, n + 1)[1:])
    joints = np.empty((len(poses), len(q_start)))
    q = np.asarray(q_start, dtype=np.float64)
    for index, pose in enumerate(poses):
        result = arm.inverse(pose, q)
        if result.position_error > tolerance:
            raise PlanningError(
                f"IK leaves {result.position_error * 1e3:.1f} mm at step {index} "
                f"(target {np.round(pose.translation, 3).tolist()} in the base frame)"
            )
        q = result.q
        joints[index] = q
    return ExpertPlan(arm=joints, gripper=np.asarray(gripper), period=period)


def _grasp_rotation(start: pin.SE3, cube: pin.SE3) -> np.ndarray:
    turn = pin.utils.rpyToMatrix(0.0, 0.0, grasp_turn(start.rotation, cube.rotation))
    return turn @ start.rotation


def plan_lift(
    arm: ArmKinematics,
    q_start: np.ndarray,
    cube_pose: np.ndarray,
    period: float,
    timing: LiftTiming | None = None,
    tolerance: float = 0.005,
) -> ExpertPlan:
    """Plan a lift of the cube at `cube_pose` (x, y, z, qw, qx, qy, qz in the base frame)
    from the arm's joint positions `q_start`; raises PlanningError when IK cannot follow."""
    timing = timing or LiftTiming()
    start = arm.forward(q_start)
    cube = pose_from_xyz_wxyz(cube_pose)
    rotation = _grasp_rotation(start, cube)
    centre = cube.translation
    above = pin.SE3(rotation, centre + [0.0, 0.0, timing.approach_height])
    grasp = pin.SE3(rotation, centre + [0.0, 0.0, timing.grasp_offset])
    lifted = pin.SE3(rotation, grasp.translation + [0.0, 0.0, timing.lift_height])
    phases = [
        (start, timing.settle, 0.0),
        (above, timing.reach, 0.0),
        (grasp, timing.descend, 0.0),
        (grasp, timing.close, 1.0),
        (lifted, timing.lift, 1.0),
        (lifted, timing.hold, 1.0),
    ]
    return follow(arm, q_start, phases, period, tolerance)


@dataclass(frozen=True)
class StackTiming:
    """Durations (s) of the phases of a stack (cube A onto cube B), and its heights (m)."""

    settle: float = 0.3
    reach: float = 1.8
    descend: float = 1.0
    close: float = 0.7
    lift: float = 1.0
    carry: float = 1.8
    place: float = 1.0
    release: float = 0.5
    retreat: float = 0.8
    hold: float = 0.3
    approach_height: float = 0.10
    carry_height: float = 0.12
    """Height of A's centre over B's centre while carrying."""
    stack_height: float = 0.05
    """Height of A's centre over B's centre when the fingers open (the half sizes, 4.5 cm in
    robosuite's Stack, plus a few millimetres)."""

    def jittered(self, rng: np.random.Generator, spread: float = 0.15) -> StackTiming:
        """These timings with each motion's duration scaled by a factor in 1 +- `spread`."""
        names = ("reach", "descend", "close", "lift", "carry", "place")
        return _scaled(self, names, rng, spread)


def plan_stack(
    arm: ArmKinematics,
    q_start: np.ndarray,
    cube_pose: np.ndarray,
    base_pose: np.ndarray,
    period: float,
    timing: StackTiming | None = None,
    tolerance: float = 0.005,
) -> ExpertPlan:
    """Plan picking the cube at `cube_pose` and releasing it on the one at `base_pose` (both
    x, y, z, qw, qx, qy, qz in the base frame); raises PlanningError when IK cannot follow."""
    timing = timing or StackTiming()
    start = arm.forward(q_start)
    cube, base = pose_from_xyz_wxyz(cube_pose), pose_from_xyz_wxyz(base_pose)
    rotation = _grasp_rotation(start, cube)
    # The held cube keeps its yaw relative to the hand; turning the hand to square it with
    # the lower cube as well would be nicer, but any yaw stacks.
    centre, target = cube.translation, base.translation
    grasp = pin.SE3(rotation, centre.copy())
    phases = [
        (start, timing.settle, 0.0),
        (pin.SE3(rotation, centre + [0.0, 0.0, timing.approach_height]), timing.reach, 0.0),
        (grasp, timing.descend, 0.0),
        (grasp, timing.close, 1.0),
        (pin.SE3(rotation, centre + [0.0, 0.0, timing.carry_height]), timing.lift, 1.0),
        (pin.SE3(rotation, target + [0.0, 0.0, timing.carry_height]), timing.carry, 1.0),
        (pin.SE3(rotation, target + [0.0, 0.0, timing.stack_height]), timing.place, 1.0),
        (pin.SE3(rotation, target + [0.0, 0.0, timing.stack_height]), timing.release, 0.0),
        (pin.SE3(rotation, target + [0.0, 0.0, timing.carry_height]), timing.retreat, 0.0),
        (pin.SE3(rotation, target + [0.0, 0.0, timing.carry_height]), timing.hold, 0.0),
    ]
    return follow(arm, q_start, phases, period, tolerance)
