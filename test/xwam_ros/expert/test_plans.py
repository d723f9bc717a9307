"""The Lift expert's plan on the Panda: the grasp turn that squares the hand with the cube, the
minimum-jerk profile, and `plan_lift` (phase lengths, gripper, grasp and lift poses by FK,
smoothness, unreachable cubes) and `LiftTiming.jittered`."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pinocchio as pin
import pytest

from xwam_ros.config.robot import load_robot_config
from xwam_ros.executor.kinematics import RobotKinematics, pose_from_xyz_wxyz
from xwam_ros.expert.plans import (
    LiftTiming,
    PlanningError,
    StackTiming,
    grasp_turn,
    min_jerk,
    plan_lift,
    plan_stack,
    yaw_of,
)
from xwam_ros.paths import config_dir

ROBOT = load_robot_config(config_dir() / "robots" / "panda.yaml")
# robosuite's Panda home pose: the hand above the table, fingers pointing down.
HOME = np.array([0.0, 0.196, 0.0, -2.618, 0.0, 2.942, 0.785])
PERIOD = 0.05
CUBE_XYZ = (0.56, 0.0, -0.08)


@pytest.fixture(scope="module")
def arm():
    return RobotKinematics(ROBOT).arms[0]


def rz(angle: float) -> np.ndarray:
    return pin.utils.rpyToMatrix(0.0, 0.0, angle)


def cube_pose(yaw: float, xyz=CUBE_XYZ) -> list[float]:
    """x, y, z, qw, qx, qy, qz of a cube turned by `yaw` about the vertical."""
    return [*xyz, math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def phase_steps(timing: LiftTiming, period: float) -> list[int]:
    names = ("settle", "reach", "descend", "close", "lift", "hold")
    return [int(round(getattr(timing, n) / period)) for n in names]


def test_home_pose_points_the_gripper_down(arm):
    pose = arm.forward(HOME)
    assert pose.rotation[2, 2] < -0.9  # the TCP's z axis (the approach) points down


@pytest.mark.parametrize(
    ("relative_deg", "turn_deg"),
    [(0, 0), (30, 30), (80, -10), (-30, -30), (90, 0), (44, 44), (46, -44), (-50, 40), (170, -10)],
)
def test_grasp_turn_is_the_smallest_squaring_turn(relative_deg, turn_deg):
    for hand_yaw in (0.0, 0.7, -2.5):
        hand = rz(hand_yaw)
        cube = rz(hand_yaw + math.radians(relative_deg))
        assert grasp_turn(hand, cube) == pytest.approx(math.radians(turn_deg), abs=1e-9)


def test_grasp_turn_stays_in_a_quarter_turn_and_squares_the_hand():
    rng = np.random.default_rng(0)
    for hand_yaw, cube_yaw in rng.uniform(-math.pi, math.pi, (200, 2)):
        turn = grasp_turn(rz(hand_yaw), rz(cube_yaw))
        assert -math.pi / 4 - 1e-12 <= turn < math.pi / 4
        turned = rz(turn) @ rz(hand_yaw)
        assert grasp_turn(turned, rz(cube_yaw)) == pytest.approx(0.0, abs=1e-9)


def test_min_jerk_runs_from_zero_to_one_monotonically():
    assert min_jerk(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.0, 0.5, 1.0])
    values = min_jerk(np.linspace(0.0, 1.0, 101))
    assert np.all(np.diff(values) > 0)
    # Zero velocity at both ends: the first and last steps are much smaller than the middle.
    steps = np.diff(values)
    assert steps[0] < 0.01 * steps.max() and steps[-1] < 0.01 * steps.max()


def test_plan_has_the_phases_length_and_a_gripper_that_closes_once(arm):
    timing = LiftTiming()
    plan = plan_lift(arm, HOME, cube_pose(0.3), PERIOD, timing)
    total = timing.settle + timing.reach + timing.descend + timing.close
    total += timing.lift + timing.hold
    assert plan.arm.shape[1] == 7 and plan.arm.ndim == 2
    assert plan.gripper.shape == (len(plan.arm),)
    assert abs(len(plan.arm) - (total / PERIOD + 1)) <= 1
    assert len(plan.arm) == sum(phase_steps(timing, PERIOD)) + 1
    assert plan.period == PERIOD
    assert plan.duration == pytest.approx((len(plan.arm) - 1) * PERIOD)
    assert plan.gripper[0] == 0.0 and plan.gripper[-1] == 1.0
    assert np.all(np.diff(plan.gripper) >= 0)
    # Open until the fingers reach the cube, closed from the end of the close phase on.
    settle, reach, descend, close, _, _ = phase_steps(timing, PERIOD)
    at_grasp = settle + reach + descend
    assert np.all(plan.gripper[: at_grasp + 1] == 0.0)
    assert np.all(plan.gripper[at_grasp + close :] == 1.0)
    # The plan starts where the arm is.
    assert plan.arm[0] == pytest.approx(HOME, abs=1e-3)


@pytest.mark.parametrize("grasp_offset", [0.0, 0.01])
def test_plan_grasps_the_cube_centre_and_lifts_it(arm, grasp_offset):
    timing = LiftTiming(grasp_offset=grasp_offset)
    cube = cube_pose(0.0)
    plan = plan_lift(arm, HOME, cube, PERIOD, timing)
    settle, reach, descend, close, _, _ = phase_steps(timing, PERIOD)
    centre = np.array(CUBE_XYZ)
    grasp_point = centre + [0.0, 0.0, grasp_offset]
    for index in range(settle + reach + descend, settle + reach + descend + close + 1):
        tcp = arm.forward(plan.arm[index]).translation
        assert np.linalg.norm(tcp - grasp_point) < 0.005, index
    above = arm.forward(plan.arm[settle + reach]).translation
    assert np.linalg.norm(above - (centre + [0.0, 0.0, timing.approach_height])) < 0.005
    final = arm.forward(plan.arm[-1]).translation
    assert np.linalg.norm(final - (grasp_point + [0.0, 0.0, timing.lift_height])) < 0.005
    # The hand keeps pointing down throughout.
    for q in plan.arm[:: len(plan.arm) // 10]:
        assert arm.forward(q).rotation[2, 2] < -0.9


def test_plan_moves_in_small_joint_steps(arm):
    plan = plan_lift(arm, HOME, cube_pose(math.radians(40)), PERIOD)
    assert np.abs(np.diff(plan.arm, axis=0)).max() < 0.1
    lower = np.array([j.lower for j in ROBOT.arms[0].joints])
    upper = np.array([j.upper for j in ROBOT.arms[0].joints])
    assert np.all(plan.arm >= lower - 1e-9) and np.all(plan.arm <= upper + 1e-9)


@pytest.mark.parametrize("yaw_deg", [30.0, -25.0, 80.0])
def test_hand_is_squared_with_a_yawed_cube_at_the_grasp(arm, yaw_deg):
    timing = LiftTiming()
    cube = cube_pose(math.radians(yaw_deg))
    plan = plan_lift(arm, HOME, cube, PERIOD, timing)
    settle, reach, descend, _, _, _ = phase_steps(timing, PERIOD)
    grasp = arm.forward(plan.arm[settle + reach + descend])
    cube_rotation = pose_from_xyz_wxyz(cube).rotation
    assert grasp_turn(grasp.rotation, cube_rotation) == pytest.approx(0.0, abs=0.02)
    # The hand turned by the smallest squaring turn, not more.
    start = arm.forward(HOME)
    expected = grasp_turn(start.rotation, cube_rotation)
    turned = (yaw_of(grasp.rotation) - yaw_of(start.rotation) + math.pi) % (2 * math.pi) - math.pi
    assert turned == pytest.approx(expected, abs=0.02)
    assert abs(turned) <= math.pi / 4 + 0.02


def test_unreachable_cube_raises_planning_error_naming_step_and_distance(arm):
    with pytest.raises(PlanningError, match=r"IK leaves \d+(\.\d+)? mm at step \d+") as caught:
        plan_lift(arm, HOME, cube_pose(0.0, xyz=(3.0, 0.0, -0.08)), PERIOD)
    message = str(caught.value)
    millimetres = float(message.split("IK leaves ")[1].split(" mm")[0])
    assert millimetres > 5.0  # above the 5 mm tolerance


def test_jittered_scales_only_the_moving_phases_and_is_reproducible():
    timing = LiftTiming()
    moving = ("reach", "descend", "close", "lift")
    jittered = timing.jittered(np.random.default_rng(7))
    base, changed = asdict(timing), asdict(jittered)
    for name, value in base.items():
        if name in moving:
            assert 0.85 * value <= changed[name] <= 1.15 * value
            assert changed[name] != value
        else:
            assert changed[name] == value, name
    assert timing.jittered(np.random.default_rng(7)) == jittered
    assert timing.jittered(np.random.default_rng(8)) != jittered
    for seed in range(50):
        other = asdict(timing.jittered(np.random.default_rng(seed), spread=0.15))
        for name in moving:
            assert 0.85 * base[name] <= other[name] <= 1.15 * base[name]


def test_stack_plan_carries_cube_a_onto_cube_b_and_lets_go(arm):
    period = 0.05
    timing = StackTiming()
    cube_a, cube_b = cube_pose(0.3), cube_pose(0.0, xyz=(0.60, -0.08, -0.077))
    plan = plan_stack(arm, HOME, cube_a, cube_b, period, timing)
    tcp = np.array([arm.forward(q).translation for q in plan.arm])
    # Closed on cube A's centre, open at the end, 4-5 cm above B's centre when opening.
    closed = np.flatnonzero(plan.gripper >= 1.0 - 1e-9)
    assert np.linalg.norm(tcp[closed[0]] - np.array(cube_a[:3])) < 0.005
    assert plan.gripper[0] == 0.0 and plan.gripper[-1] == 0.0
    opening = closed[-1] + 1
    above_b = tcp[opening] - np.array(cube_b[:3])
    assert np.linalg.norm(above_b[:2]) < 0.005
    assert above_b[2] == pytest.approx(timing.stack_height, abs=0.005)
    # Carried high enough to clear B: over B's centre the hand is at the carry height first.
    over_b = np.linalg.norm(tcp[:, :2] - np.array(cube_b[:2]), axis=1) < 0.005
    assert tcp[over_b, 2].max() - cube_b[2] == pytest.approx(timing.carry_height, abs=0.005)
    assert np.abs(np.diff(plan.arm, axis=0)).max() < 0.1
