"""Chunk -> plan, end to end without ROS: timing, observation-time state, rejections."""

from __future__ import annotations

import numpy as np

from xwam_ros.executor.chunk import Chunk
from xwam_ros.executor.measured_state import JointStateBuffer
from xwam_ros.executor.planner import ChunkPlanner
from xwam_ros.executor.safety import Rejection
from xwam_ros.executor.trajectory import Plan

NOW = 1_000 * 10**9
MS = 1_000_000


def buffer_with(config, samples) -> JointStateBuffer:
    """A buffer fed (stamp_ns, arm q) samples, grippers open."""
    buffer = JointStateBuffer(config.joint_names, [a.gripper.joints for a in config.arms])
    fingers = [n for a in config.arms for n in a.gripper.joints]
    for stamp, q in samples:
        names = config.joint_names + fingers
        buffer.update(names, [*q, *[0.04] * len(fingers)], [], stamp, stamp)
    return buffer


def joint_chunk(config, rows, stamp_ns, chunk_id=1) -> Chunk:
    rows = np.asarray(rows, dtype=np.float64)
    return Chunk(
        chunk_id, stamp_ns, config.frame_id, "joint_position", rows.shape[0], rows.shape[1],
        50 * MS, rows.ravel(), tuple(config.joint_names),
    )  # fmt: skip


def test_plan_times_dropped_steps_and_joint_limit_clamp(panda_config, ready):
    planner = ChunkPlanner(panda_config)
    state = buffer_with(panda_config, [(NOW - 10 * MS, ready)])
    rows = np.tile(ready, (10, 1))
    rows[:, 3] = -0.0698 + np.linspace(0.001, 0.01, 10)  # joint 4 just past its upper limit
    state = buffer_with(panda_config, [(NOW - 10 * MS, rows[0] - [0, 0, 0, 0.02, 0, 0, 0])])
    plan = planner.plan(joint_chunk(panda_config, rows, NOW - 120 * MS), state, NOW)
    assert isinstance(plan, Plan), plan
    assert plan.dropped == 3
    np.testing.assert_allclose(plan.times, 0.03 + 0.05 * np.arange(1, 8))
    assert np.all(plan.arm[:, 3] <= -0.0698)
    assert plan.end_ns == NOW + round(plan.times[-1] * 1e9)


def test_rejections_come_back_as_values(panda_config, ready):
    planner = ChunkPlanner(panda_config)
    rows = np.tile(ready, (10, 1))
    empty = buffer_with(panda_config, [])
    result = planner.plan(joint_chunk(panda_config, rows, NOW), empty, NOW)
    assert isinstance(result, Rejection) and result.category == "no_state"

    state = buffer_with(panda_config, [(NOW - 10 * MS, ready)])
    first = planner.plan(joint_chunk(panda_config, rows, NOW - 20 * MS), state, NOW)
    older = planner.plan(joint_chunk(panda_config, rows, NOW - 40 * MS, 2), state, NOW, first)
    assert isinstance(older, Rejection) and older.category == "stale"


def test_ee_deltas_start_from_the_state_at_the_observation_time(
    panda_config, panda_kinematics, ready
):
    planner = ChunkPlanner(panda_config)
    moved = ready + 0.03
    # The arm was at `ready` when observed (100 ms ago) and has moved on since.
    state = buffer_with(
        panda_config, [(NOW - 300 * MS, ready), (NOW - 100 * MS, ready), (NOW - 5 * MS, moved)]
    )
    hold = Chunk(1, NOW - 100 * MS, panda_config.frame_id, "ee_delta", 10, 7, 50 * MS, np.zeros(70))
    plan = planner.plan(hold, state, NOW)
    assert isinstance(plan, Plan), plan
    observed_pose = panda_kinematics.ee_poses(ready)[0]
    reached = panda_kinematics.ee_poses(plan.arm[-1])[0]
    np.testing.assert_allclose(reached.translation, observed_pose.translation, atol=1e-4)
    # Starting from the latest state instead would have held the arm about 2 cm elsewhere.
    moved_pose = panda_kinematics.ee_poses(moved)[0]
    assert np.linalg.norm(moved_pose.translation - observed_pose.translation) > 0.01


def test_joint_state_history_interpolates(panda_config, ready):
    state = buffer_with(panda_config, [(NOW, ready), (NOW + 100 * MS, ready + 0.1)])
    np.testing.assert_allclose(state.arms_at(NOW + 25 * MS), ready + 0.025)
    np.testing.assert_allclose(state.arms_at(NOW - 10**9), ready)
    np.testing.assert_allclose(state.arms_at(NOW + 10**9), ready + 0.1)
    # Joint states in pieces: a message without the arm joints keeps the arm's latest values.
    state.update(["panda_finger_joint1", "panda_finger_joint2"], [0.0, 0.0], [], NOW, NOW)
    latest = state.latest()
    np.testing.assert_allclose(latest.q, ready + 0.1)
    np.testing.assert_allclose(latest.gripper[0], [0.0, 0.0])
