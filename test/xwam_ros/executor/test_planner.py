"""Chunk -> plan, end to end without ROS: timing, observation-time state, rejections."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from xwam_ros.executor.chunk import Chunk
from xwam_ros.executor.gripper import gripper_positions, gripper_value
from xwam_ros.executor.measured_state import RobotJointStates
from xwam_ros.executor.planner import ChunkPlanner
from xwam_ros.executor.safety import Rejection
from xwam_ros.executor.trajectory import Plan

NOW = 1_000 * 10**9
MS = 1_000_000


def buffer_with(config, samples) -> RobotJointStates:
    """The robot's view of a store fed (stamp_ns, arm q) samples, grippers open."""
    buffer = RobotJointStates(config)
    fingers = [n for a in config.arms for n in a.gripper.joints]
    for stamp, q in samples:
        names = config.joint_names + fingers
        buffer.store.update(names, [*q, *[0.04] * len(fingers)], [], stamp, stamp)
    return buffer


def joint_chunk(
    config, rows, stamp_ns, chunk_id=1, action_space="joint_position", joint_names=None
) -> Chunk:
    rows = np.asarray(rows, dtype=np.float64)
    names = tuple(config.joint_names if joint_names is None else joint_names)
    return Chunk(
        chunk_id, stamp_ns, config.frame_id, action_space, rows.shape[0], rows.shape[1],
        50 * MS, rows.ravel(), names,
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


def test_joint_columns_in_reversed_order_give_the_same_plan(panda_config, ready):
    planner = ChunkPlanner(panda_config)
    start = ready.copy()
    start[3] = -0.0698 - 0.01  # joint 4 just below its upper limit: the clamp acts on it
    state = buffer_with(panda_config, [(NOW - 10 * MS, start)])
    steps = np.arange(1, 11)[:, None]
    motion = 0.002 * np.arange(1, 8)  # every joint moves at its own speed
    closing = steps > 5  # one gripper column, closing halfway through
    chunks = {
        "joint_position": np.hstack([start + motion * steps, closing]),
        "joint_delta": np.hstack([np.tile(motion, (10, 1)), closing]),
    }
    reverse = [*range(6, -1, -1), 7]  # the joints reversed, the gripper column last
    for space, rows in chunks.items():
        for width in (7, 8):  # without, then with the gripper column
            configured = planner.plan(
                joint_chunk(panda_config, rows[:, :width], NOW - 60 * MS, action_space=space),
                state,
                NOW,
            )
            named = planner.plan(
                joint_chunk(
                    panda_config,
                    rows[:, reverse][:, :width],
                    NOW - 60 * MS,
                    action_space=space,
                    joint_names=panda_config.joint_names[::-1],
                ),
                state,
                NOW,
            )
            assert isinstance(configured, Plan) and isinstance(named, Plan), (configured, named)
            assert configured.clamped > 0 and np.all(configured.arm[:, 3] <= -0.0698)
            np.testing.assert_array_equal(named.arm, configured.arm)
            np.testing.assert_array_equal(named.arm_velocity, configured.arm_velocity)
            assert named.clamped == configured.clamped
            if width == 8:
                np.testing.assert_array_equal(named.gripper[0], configured.gripper[0])
            else:
                assert named.gripper is None
    # The targets are the joints' in the robot's order (joint 7 moving fastest), not reversed.
    kept = start + motion * steps[named.dropped :]
    np.testing.assert_allclose(named.arm[:, [0, 6]], kept[:, [0, 6]], atol=1e-12)


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


def continuing_from_the_command(config):
    """`config` with every arm's controller continuing from its last command."""
    return dataclasses.replace(
        config,
        arms=[dataclasses.replace(a, interpolate_from_desired_state=True) for a in config.arms],
    )


def test_a_chunk_splices_onto_the_command_where_the_controller_continues_from_it(
    panda_config, ready
):
    """The arm lags its command by 0.36 rad on joint 2 (a soft position loop). A chunk that
    continues the command is spliced onto it where the controller starts from its last
    command (interpolate_from_desired_state), and refused as a jump from the measured state
    where it starts from the measured state (JTC's default, the sim's panda.yaml)."""
    assert not panda_config.arms[0].interpolate_from_desired_state
    from_measured, panda_config = panda_config, continuing_from_the_command(panda_config)
    lag = np.array([0, 0.6, 0, 0, 0, 0, 0])
    steps = np.arange(1, 21)[:, None] * 0.002
    first_rows = ready + lag * np.linspace(0, 1, 20)[:, None]  # the command ramps ahead
    results = {}
    for name, config in (("desired", panda_config), ("measured", from_measured)):
        planner = ChunkPlanner(config)
        state = buffer_with(config, [(NOW - 400 * MS, ready), (NOW - 5 * MS, ready)])
        first = planner.plan(joint_chunk(config, first_rows, NOW - 20 * MS), state, NOW)
        assert isinstance(first, Plan), first
        later = NOW + 600 * MS
        commanded = first.sample(later)[0]
        assert 0.3 < commanded[1] - ready[1] < panda_config.safety.max_tracking_error
        # The arm is still where it was (it lags); the next chunk continues the command.
        state = buffer_with(config, [(NOW - 400 * MS, ready), (later - 5 * MS, ready)])
        rows = commanded + steps
        results[name] = planner.plan(
            joint_chunk(config, rows, later - 20 * MS, 2), state, later, first
        )
    spliced, refused = results["desired"], results["measured"]
    assert isinstance(spliced, Plan), spliced
    np.testing.assert_allclose(spliced.start, first.sample(NOW + 600 * MS)[0])
    assert isinstance(refused, Rejection) and refused.category == "jump", refused
    assert "from the measured state" in refused.reason and "lags its command by" in refused.reason


def with_blend_time(config, seconds):
    """`config` with `timing.blend_time` set to `seconds`."""
    return dataclasses.replace(
        config, timing=dataclasses.replace(config.timing, blend_time=seconds)
    )


def ramp_under_way(config, ready):
    """A plan ramping joint 2 by 0.6 rad over a second, executing; 300 ms on, the arm on its
    command: the planner, that plan, the joint states, the time, the next chunk's stamp and
    what the plan commands at each of that chunk's 20 steps [20, 7]."""
    planner = ChunkPlanner(config)
    state = buffer_with(config, [(NOW - 400 * MS, ready), (NOW - 5 * MS, ready)])
    ramp = ready + np.array([0, 0.6, 0, 0, 0, 0, 0]) * np.linspace(0, 1, 20)[:, None]
    first = planner.plan(joint_chunk(config, ramp, NOW - 20 * MS), state, NOW)
    assert isinstance(first, Plan), first
    later, stamp = NOW + 300 * MS, NOW + 280 * MS
    on_command = first.sample(later)[0]
    state = buffer_with(config, [(NOW - 400 * MS, ready), (later - 5 * MS, on_command)])
    due = stamp + 50 * MS * np.arange(1, 21)
    command = np.array([first.sample(int(t))[0] for t in due])
    return planner, first, state, later, stamp, command


@pytest.mark.parametrize("from_command", [False, True])
def test_a_chunk_that_jumps_from_the_command_is_blended_in_from_it(
    panda_config, ready, from_command
):
    """The new chunk runs 0.3 rad off the command being executed on joint 2 (the policy
    changed its mind; beyond `max_jump`), whether the controller starts from the measured
    state (the arm is on its command here) or from its last command. Its steps due within
    `blend_time` go from the command to the chunk with smoothstep weights, unclamped by the
    limits: no step in position (the first point 0.3 x w_0 off the command) or velocity,
    then the chunk as it is. Without a blend (`blend_time: 0`) it is refused as a jump; one
    0.5 rad off, past `max_divergence`, is refused too."""
    if from_command:
        panda_config = continuing_from_the_command(panda_config)
    planner, first, state, later, stamp, command = ramp_under_way(panda_config, ready)
    off = np.zeros((20, 7))
    off[:, 1] = 0.3
    chunk = command + off
    plan = planner.plan(joint_chunk(panda_config, chunk, stamp, 2), state, later, first)
    assert isinstance(plan, Plan), plan
    steps = plan.blended
    blend_time = panda_config.timing.blend_time
    assert steps == int(round(blend_time / panda_config.control_period))  # 0.5 s of 50 ms
    kept = slice(plan.dropped, plan.dropped + steps)
    s = np.arange(1, steps + 1) / (steps + 1)
    weights = s * s * (3 - 2 * s)
    expected = command[kept] + weights[:, None] * off[kept]
    np.testing.assert_allclose(plan.arm[:steps], expected, atol=1e-9)
    # Then the chunk's own steps (its end, where the ramp it follows stops, is braked by the
    # acceleration limit as any chunk's would be).
    after = plan.dropped + steps
    np.testing.assert_allclose(plan.arm[steps : steps + 3], chunk[after : after + 3], atol=1e-9)
    # Where the controller starts, the blend starts: a step of 0.3 w_0 (15 mrad), not 0.3.
    assert (
        np.abs(plan.arm[0] - plan.start).max()
        < 0.1 * 0.3 + np.abs(command[plan.dropped] - plan.start).max()
    )
    # Velocity: the blend adds 0.3 (w_k - w_{k-1}) per step to the command's, at most
    # smoothstep's steepest slope (1.5) over the blend: 0.8 rad/s, where switching at once
    # would step 0.3 rad in one 50 ms step (6 rad/s), past the limit (2.175).
    velocity = np.diff(plan.arm[: steps + 1, 1]) / 0.05
    ramp = (command[1, 1] - command[0, 1]) / 0.05
    assert np.abs(velocity - ramp).max() <= 1.5 * 0.3 / (steps + 1) / 0.05 + 1e-9

    refused = with_blend_time(panda_config, 0.0)
    result = ChunkPlanner(refused).plan(joint_chunk(refused, chunk, stamp, 2), state, later, first)
    assert isinstance(result, Rejection) and result.category == "jump", result

    off[:, 1] = 0.5  # past safety.max_divergence (0.4): not this arm's motion at all
    result = planner.plan(joint_chunk(panda_config, command + off, stamp, 3), state, later, first)
    assert isinstance(result, Rejection) and result.category == "jump", result
    assert "panda_joint2" in result.reason and "safety.max_divergence" in result.reason


def test_a_chunk_that_continues_the_command_is_not_changed_by_the_blend(panda_config, ready):
    planner, first, state, later, stamp, command = ramp_under_way(panda_config, ready)
    plan = planner.plan(joint_chunk(panda_config, command, stamp, 2), state, later, first)
    assert isinstance(plan, Plan), plan
    assert plan.blended > 0
    # (Its end, where the ramp stops, is braked by the acceleration limit, blend or not.)
    kept = plan.blended + 1
    np.testing.assert_allclose(
        plan.arm[:kept], command[plan.dropped : plan.dropped + kept], atol=1e-9
    )


def test_an_arm_far_behind_its_command_is_refused_for_tracking(panda_config, ready):
    panda_config = continuing_from_the_command(panda_config)
    planner = ChunkPlanner(panda_config)
    state = buffer_with(panda_config, [(NOW - 400 * MS, ready), (NOW - 5 * MS, ready)])
    far = ready + np.array([0, 1.0, 0, 0, 0, 0, 0]) * np.linspace(0, 1, 20)[:, None]
    first = planner.plan(joint_chunk(panda_config, far, NOW - 20 * MS), state, NOW)
    assert isinstance(first, Plan), first
    later = NOW + 600 * MS
    commanded = first.sample(later)[0]
    assert abs(commanded[1] - ready[1]) > panda_config.safety.max_tracking_error
    state = buffer_with(panda_config, [(NOW - 400 * MS, ready), (later - 5 * MS, ready)])
    rows = np.tile(commanded, (10, 1))
    result = planner.plan(joint_chunk(panda_config, rows, later - 20 * MS, 2), state, later, first)
    assert isinstance(result, Rejection) and result.category == "tracking", result
    assert result.holds and "panda_joint2" in result.reason


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
    np.testing.assert_allclose(state.arms_at(NOW + 25 * MS, 0), ready + 0.025)
    np.testing.assert_allclose(state.arms_at(NOW - 10**9, 10**9), ready)
    np.testing.assert_allclose(state.arms_at(NOW + 10**9, 10**9), ready + 0.1)
    assert state.arms_at(NOW - 10**9, 10**8) is None  # the history does not reach back there
    # Joint states in pieces: a message without the arm joints keeps the arm's latest values.
    later = NOW + 200 * MS
    state.store.update(["panda_finger_joint1", "panda_finger_joint2"], [0.0, 0.0], [], later, later)
    latest = state.latest()
    np.testing.assert_allclose(latest.q, ready + 0.1)
    np.testing.assert_allclose(latest.gripper[0], [0.0, 0.0])


def test_a_cleared_history_refuses_chunks_of_the_old_timeline(panda_config, ready):
    """After a time jump the store is cleared: a chunk observed on the old timeline finds no
    joint state at its observation time and is refused, not planned from a guess."""
    planner = ChunkPlanner(panda_config)
    state = buffer_with(panda_config, [(NOW - 10 * MS, ready)])
    state.store.clear()
    late = 5 * 10**9  # the new timeline: time went from 1000 s back to 5 s
    state.store.update(
        panda_config.joint_names + ["panda_finger_joint1", "panda_finger_joint2"],
        [*ready, 0.04, 0.04],
        [],
        late - 10 * MS,
        late - 10 * MS,
    )
    hold = Chunk(1, NOW - 20 * MS, panda_config.frame_id, "ee_delta", 10, 7, 50 * MS, np.zeros(70))
    assert isinstance(planner.plan(hold, state, NOW), Rejection)
    frame = panda_config.frame_id
    fresh = Chunk(2, late - 20 * MS, frame, "ee_delta", 10, 7, 50 * MS, np.zeros(70))
    assert isinstance(planner.plan(fresh, state, late), Plan)


def ee_chunk(config, rows, stamp_ns, chunk_id=1) -> Chunk:
    rows = np.asarray(rows, dtype=np.float64)
    return Chunk(
        chunk_id, stamp_ns, config.frame_id, "ee_delta", rows.shape[0], rows.shape[1],
        50 * MS, rows.ravel(), (),
    )  # fmt: skip


def test_an_ee_chunk_going_out_of_reach_keeps_its_reachable_prefix(panda_config, ready):
    planner = ChunkPlanner(panda_config)
    state = buffer_with(panda_config, [(NOW - 10 * MS, ready)])
    rows = np.zeros((16, 7))
    rows[:, 0] = 0.006  # forward 6 mm a step ...
    rows[8:, 0] = 0.6  # ... then 60 cm a step: out of the Panda's reach from step 8 on
    plan = planner.plan(ee_chunk(panda_config, rows, NOW - 20 * MS), state, NOW)
    assert isinstance(plan, Plan), plan
    assert len(plan.times) == 8 - plan.dropped and len(plan.arm) == len(plan.times)
    assert "step 8: target out of reach" in plan.unreachable
    # The kept steps are exactly those of the whole-chunk plan of the reachable part.
    whole = planner.plan(ee_chunk(panda_config, rows[:8], NOW - 20 * MS), state, NOW)
    np.testing.assert_allclose(plan.arm, whole.arm, atol=1e-9)
    assert whole.unreachable == ""


def test_an_ee_chunk_out_of_reach_from_its_start_is_refused(panda_config, ready):
    planner = ChunkPlanner(panda_config)
    state = buffer_with(panda_config, [(NOW - 10 * MS, ready)])
    rows = np.zeros((16, 7))
    rows[:, 0] = 0.6
    rows[0, 0] = 0.006  # one reachable step: fewer than ik.min_reachable_steps (2)
    refused = planner.plan(ee_chunk(panda_config, rows, NOW - 20 * MS), state, NOW)
    assert isinstance(refused, Rejection) and refused.category == "ik"
    assert "out of reach" in refused.reason


def test_delta_gripper_columns_start_from_the_gripper_at_the_observation_time(panda_config, ready):
    action_space = dataclasses.replace(panda_config.action_space, gripper="delta")
    config = dataclasses.replace(panda_config, action_space=action_space)
    gripper = config.arms[0].gripper
    planner = ChunkPlanner(config)
    state = buffer_with(config, [(NOW - 200 * MS, ready), (NOW - 10 * MS, ready)])
    observed = gripper_value(gripper, [0.04] * len(gripper.joints))
    rows = np.column_stack([np.tile(ready, (10, 1)), np.full(10, 0.1)])
    plan = planner.plan(joint_chunk(config, rows, NOW - 120 * MS), state, NOW)
    assert isinstance(plan, Plan), plan
    expected = np.clip(observed + 0.1 * np.arange(1, 11), 0.0, 1.0)[plan.dropped :]
    np.testing.assert_allclose(plan.gripper[0], gripper_positions(gripper, expected), atol=1e-12)
