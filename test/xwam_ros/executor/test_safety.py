"""The safety filter's checks and clamps, one by one."""

from __future__ import annotations

import numpy as np
import pytest

from xwam_ros.executor.chunk import Chunk
from xwam_ros.executor.safety import (
    ChunkRejectedError,
    Rejection,
    check_jumps,
    check_structure,
    check_tracking,
    first_kept_step,
    joint_columns,
    limit_motion,
)

NOW = 1_000 * 10**9
PERIOD_NS = 50_000_000


def chunk(config, actions, **fields) -> Chunk:
    actions = np.asarray(actions, dtype=np.float64)
    values = dict(
        chunk_id=1,
        stamp_ns=NOW,
        frame_id=config.frame_id,
        action_space="joint_position",
        num_steps=actions.shape[0],
        action_dim=actions.shape[1],
        step_period_ns=PERIOD_NS,
        actions=actions.ravel(),
        joint_names=tuple(config.joint_names),
    )
    values.update(fields)
    return Chunk(**values)


def rejected(call, *args) -> str:
    with pytest.raises(ChunkRejectedError) as caught:
        call(*args)
    return str(caught.value.rejection)


def test_structure_checks_name_what_is_wrong(panda_config, ready):
    rows = np.tile(ready, (4, 1))
    check_structure(chunk(panda_config, rows), panda_config)  # a good one passes
    cases = {
        "action_space": chunk(panda_config, rows, action_space="cartesian"),
        "step_period": chunk(panda_config, rows, step_period_ns=2 * PERIOD_NS),
        "size": chunk(panda_config, rows, num_steps=5),
        "joint_names": chunk(panda_config, rows, joint_names=("a",) * 7),
    }
    for category, bad in cases.items():
        assert rejected(check_structure, bad, panda_config).startswith(category)
    too_wide = chunk(panda_config, np.tile(np.append(ready, [0, 0]), (4, 1)))
    assert rejected(check_structure, too_wide, panda_config).startswith("size")
    ee_rows = np.zeros((4, 6))
    ee = chunk(panda_config, ee_rows, action_space="ee_delta", joint_names=())
    assert "expected 7" in rejected(check_structure, ee, panda_config)
    ee_frame = chunk(
        panda_config, np.zeros((4, 7)), action_space="ee_delta", frame_id="world", joint_names=()
    )
    assert rejected(check_structure, ee_frame, panda_config).startswith("frame")
    for bad_value in (np.nan, np.inf, -np.inf):
        broken = rows.copy()
        broken[2, 5] = bad_value
        reason = rejected(check_structure, chunk(panda_config, broken), panda_config)
        assert reason.startswith("non_finite") and "step 2, column 5" in reason


def test_joint_columns_are_matched_by_name_in_any_order(panda_config, dual_config):
    names = panda_config.joint_names
    assert joint_columns(names, 7, panda_config).tolist() == list(range(7))
    assert joint_columns(names[::-1], 7, panda_config).tolist() == list(range(6, -1, -1))
    # With a gripper column: the joints reordered, the gripper (last column) where it was.
    assert joint_columns(names[::-1], 8, panda_config).tolist() == [*range(6, -1, -1), 7]
    rng = np.random.default_rng(0)
    left, right = dual_config.arms[0].joint_names, dual_config.arms[1].joint_names
    # Without grippers, the arms' joints may be mixed in any order.
    mixed = list(rng.permutation(left + right))
    order = joint_columns(mixed, 14, dual_config)
    assert [mixed[k] for k in order] == dual_config.joint_names
    # With grippers: per-arm blocks [that arm's joints in any order, gripper].
    left_shuffled, right_shuffled = list(rng.permutation(left)), list(rng.permutation(right))
    order = joint_columns(left_shuffled + right_shuffled, 16, dual_config)
    columns = [*left_shuffled, "left gripper", *right_shuffled, "right gripper"]
    assert [columns[k] for k in order] == [*left, "left gripper", *right, "right gripper"]


def test_joint_names_missing_unknown_or_repeated_are_refused_by_name(panda_config, dual_config):
    names = panda_config.joint_names
    rows = np.zeros((4, 7))
    cases = {
        "unknown ['panda_joint9']": [*names[:6], "panda_joint9"],
        "missing ['panda_joint7']": names[:6],
        "repeated ['panda_joint1']": [*names[:6], "panda_joint1"],
    }
    for problem, bad in cases.items():
        reason = rejected(
            check_structure, chunk(panda_config, rows, joint_names=tuple(bad)), panda_config
        )
        assert reason.startswith("joint_names") and problem in reason, reason
    # A duplicate leaves a joint out: both are named.
    reason = rejected(
        check_structure,
        chunk(panda_config, rows, joint_names=(*names[:6], "panda_joint1")),
        panda_config,
    )
    assert "missing ['panda_joint7']" in reason
    # With gripper columns each arm's block holds exactly its own joints.
    left, right = dual_config.arms[0].joint_names, dual_config.arms[1].joint_names
    swapped = (*left[:6], right[0], left[6], *right[1:])
    grippers = chunk(dual_config, np.zeros((4, 16)), joint_names=swapped)
    reason = rejected(check_structure, grippers, dual_config)
    assert reason.startswith("joint_names") and "arm 'left'" in reason, reason
    assert "['right_panda_joint1'] of another arm and lacks ['left_panda_joint7']" in reason
    # The same names without gripper columns are a valid permutation.
    check_structure(chunk(dual_config, np.zeros((4, 14)), joint_names=swapped), dual_config)


def test_elapsed_steps_are_dropped_and_late_chunks_refused(panda_config, ready):
    rows = np.tile(ready, (8, 1))
    # Steps are due at stamp + 50, 100, ... ms; min_lead_time is 50 ms.
    assert first_kept_step(chunk(panda_config, rows), NOW, panda_config) == 0
    late = chunk(panda_config, rows, stamp_ns=NOW - 120_000_000)
    assert first_kept_step(late, NOW, panda_config) == 3  # due at 30 ms: dropped; 80 ms: kept
    over = chunk(panda_config, rows, stamp_ns=NOW - 400_000_000)
    assert "all 8 steps" in rejected(first_kept_step, over, NOW, panda_config)
    stale = chunk(panda_config, np.tile(ready, (40, 1)), stamp_ns=NOW - 1_500_000_000)
    assert "old on arrival" in rejected(first_kept_step, stale, NOW, panda_config)
    future = chunk(panda_config, rows, stamp_ns=NOW + 10**9)
    assert rejected(first_kept_step, future, NOW, panda_config).startswith("clock")


def test_jumps_from_the_measured_state_and_between_steps(panda_config, ready):
    names = panda_config.joint_names
    path = ready + np.linspace(0.01, 0.1, 10)[:, None]
    check_jumps(ready, path, 0.2, names)
    reason = rejected(check_jumps, ready, path + [0, 0, 0.3, 0, 0, 0, 0], 0.2, names)
    assert "panda_joint3" in reason and "from the measured state" in reason
    path[6, 5] += 0.25
    assert "panda_joint6 moves 0.260 at point 6" in rejected(check_jumps, ready, path, 0.2, names)
    # With the executing trajectory's command: how much of the jump is the arm lagging it.
    lagging = ready + [0, 0, 0.25, 0, 0, 0, 0]
    first = path[:1] + [0, 0, 0.26, 0, 0, 0, 0]
    reason = rejected(lambda: check_jumps(ready, first, 0.2, names, commanded=lagging))
    assert "panda_joint3 moves 0.270 from the measured state" in reason
    assert "commands it 0.020 from the first point; the arm lags its command by 0.250" in reason


def test_an_arm_far_from_its_command_is_refused_and_held(panda_config, ready):
    names = panda_config.joint_names
    check_tracking(ready, ready + 0.3, 0.5, names)
    reason = rejected(check_tracking, ready, ready + [0, 0, 0, 0, -0.6, 0, 0], 0.5, names)
    assert reason == "tracking: panda_joint5 is 0.600 from its command, bound 0.500"
    assert Rejection("tracking", reason).holds and not Rejection("jump", reason).holds
    assert Rejection("non_finite", reason).holds


def test_limits_clamp_position_velocity_and_acceleration(panda_config):
    joints = panda_config.arms[0].joints
    lower = np.array([j.lower for j in joints])
    upper = np.array([j.upper for j in joints])
    v_max = np.array([j.velocity for j in joints])
    a_max = np.array([j.acceleration for j in joints])
    times = 0.05 * np.arange(1, 21)
    start = (lower + upper) / 2
    zero = np.zeros(7)

    # A feasible path (gentle, from rest) is left exactly as it was.
    gentle = start + 0.1 * np.sin(np.linspace(0, np.pi, 20))[:, None] ** 2
    unchanged, changed = limit_motion(start, zero, times, gentle, lower, upper, v_max, a_max)
    assert changed == 0
    np.testing.assert_array_equal(unchanged, gentle)

    # Straight to the upper limit and beyond: limited in speed, acceleration and position.
    times = 0.05 * np.arange(1, 61)
    target = np.tile(upper + 0.5, (60, 1))
    limited, changed = limit_motion(start, zero, times, target, lower, upper, v_max, a_max)
    assert changed == 60
    path = np.vstack([start, limited])
    velocity = np.diff(path, axis=0) / 0.05
    assert np.all(np.abs(velocity) <= v_max + 1e-9)
    assert np.all(np.abs(np.diff(np.vstack([zero, velocity]), axis=0)) <= a_max * 0.05 + 1e-9)
    # It brakes in time and comes to rest just inside the limit.
    assert np.all(limited <= upper) and np.all(upper - limited[-1] < 0.05)
    np.testing.assert_allclose(velocity[-1], 0.0)
