"""The executor node in its own process, over real DDS: this process plays the model (chunks,
on request) and the arm (joint states following the trajectories it receives)."""

from __future__ import annotations

import numpy as np
import pinocchio as pin
import pytest

from xwam_ros.executor.action_spaces import ee_deltas_from_poses
from xwam_ros.executor.kinematics import RobotKinematics

pytestmark = pytest.mark.ros


def seconds(duration) -> float:
    return duration.sec + duration.nanosec * 1e-9


def test_chunk_becomes_trajectory_with_dropped_prefix(executor, panda_yaml, panda_config, ready):
    ex = executor(panda_yaml)
    # Nothing is executing yet, so the executor asks for a chunk.
    assert ex.ctx.spin_until(lambda: ex.requests, 3.0), "no chunk request"
    request = ex.requests[0][1]
    assert request.current_chunk_id == 0
    assert request.expected_decode_latency == pytest.approx(0.5)

    period, num_steps = panda_config.control_period, 16
    steps = np.arange(1, num_steps + 1)
    joints = ready + 0.002 * steps[:, None]  # 0.04 rad/s on every joint
    gripper = (steps > 8).astype(float)
    # Observed 2.5 periods ago: steps 0 and 1 are past, step 2 is due within min_lead_time.
    stamp = ex.now_ns() - int(2.5 * period * 1e9)
    received, traj = ex.expect_sent(ex.chunk(np.column_stack([joints, gripper]), stamp_ns=stamp))

    assert traj.joint_names == panda_config.joint_names
    assert (traj.header.stamp.sec, traj.header.stamp.nanosec) == (0, 0)
    times = np.array([seconds(p.time_from_start) for p in traj.points])
    assert np.all(np.diff(times) > 0)
    dropped = num_steps - len(traj.points)
    assert dropped in (3, 4)
    assert times[0] >= panda_config.timing.min_lead_time - 0.02
    for k, point, t in zip(range(dropped, num_steps), traj.points, times):
        np.testing.assert_allclose(point.positions, joints[k], atol=1e-9)
        due_ns = stamp + (k + 1) * period * 1e9
        assert abs(received + t * 1e9 - due_ns) < 30e6, f"step {k} is not timed at its due time"
    np.testing.assert_allclose(traj.points[len(times) // 2].velocities, 0.04, atol=1e-6)
    np.testing.assert_allclose(traj.points[-1].velocities, 0.0)

    gripper_topic = panda_config.arms[0].gripper.topic
    assert ex.ctx.spin_until(lambda: ex.trajectories[gripper_topic], 2.0)
    _, fingers = ex.trajectories[gripper_topic][0]
    assert fingers.joint_names == ["panda_finger_joint1", "panda_finger_joint2"]
    expected = np.where(gripper[dropped:, None] > 0.5, 0.0, 0.04)
    np.testing.assert_allclose([p.positions for p in fingers.points], np.repeat(expected, 2, 1))
    status = ex.wait_status(lambda s: s.chunks_published == 1)
    assert status.model_id == "test_harness" and status.chunks_rejected == 0


def test_ee_delta_chunk_follows_the_end_effector_path(
    executor, panda_yaml, panda_kinematics, smooth_path
):
    ex = executor(panda_yaml)
    ex.ctx.spin_for(0.1)
    start = panda_kinematics.ee_poses(ex.q)[0]
    poses = smooth_path(start, num_steps=24)
    actions = with_gripper(ee_deltas_from_poses(start, poses), 0.0)
    _, traj = ex.expect_sent(ex.chunk(actions, "ee_delta"))

    kept = poses[len(poses) - len(traj.points) :]
    assert len(kept) >= 20
    for point, target in zip(traj.points, kept):
        reached = panda_kinematics.ee_poses(np.array(point.positions))[0]
        assert np.linalg.norm(reached.translation - target.translation) < 1e-3
        assert np.linalg.norm(pin.log3(reached.rotation @ target.rotation.T)) < 0.01


def test_unsafe_chunks_send_nothing_and_say_why(executor, panda_yaml, panda_config, ready):
    ex = executor(panda_yaml)
    rows = np.tile(np.append(ready, 0.0), (8, 1))

    nan = rows.copy()
    nan[3, 2] = np.nan
    ex.expect_rejected(ex.chunk(nan), "non_finite")
    inf = rows.copy()
    inf[5, 7] = np.inf
    ex.expect_rejected(ex.chunk(inf), "non_finite")
    jump = rows.copy()
    jump[:, 3] += 0.5  # half a radian away from the measured state
    status = ex.expect_rejected(ex.chunk(jump), "jump")
    assert "panda_joint4" in status.last_refusal_reason
    unknown = [*panda_config.joint_names[:6], "panda_joint9"]
    status = ex.expect_rejected(ex.chunk(rows, joint_names=unknown), "joint_names")
    assert "unknown ['panda_joint9']" in status.last_refusal_reason
    ex.expect_rejected(ex.chunk(rows[:, :6]), "size")
    ex.expect_rejected(ex.chunk(rows, num_steps=9), "size")
    old = ex.now_ns() - int(0.6e9)  # all 8 steps (0.4 s) are over
    ex.expect_rejected(ex.chunk(rows, stamp_ns=old), "deadline")
    ex.expect_rejected(ex.chunk(rows, stamp_ns=ex.now_ns() - int(5e9)), "deadline")
    ex.expect_rejected(ex.chunk(rows, step_period=0.1), "step_period")
    far = np.zeros((8, 7))
    far[:, 0] = 0.2  # 1.6 m forward: out of reach
    ex.expect_rejected(ex.chunk(far, "ee_delta"), "ik")

    status = ex.wait_status(lambda s: True)
    assert status.chunks_rejected == 10 and status.chunks_published == 0
    # The same executor still executes a good chunk.
    ex.expect_sent(ex.chunk(rows))
    # Joints in another order are matched by name: sent in the robot's order, same positions.
    moved = rows.copy()
    moved[:, :7] += 0.002 * np.arange(1, 8)  # within the jump and acceleration bounds
    reverse = [*range(6, -1, -1), 7]
    names = panda_config.joint_names[::-1]
    _, traj = ex.expect_sent(ex.chunk(moved[:, reverse], joint_names=names))
    assert traj.joint_names == panda_config.joint_names
    # Blended in from the chunk before (timing.blend_time), it ends where it was sent.
    np.testing.assert_allclose(traj.points[-1].positions, moved[0, :7], atol=1e-9)
    for before, point in zip(traj.points, traj.points[1:]):
        assert np.all(np.array(point.positions) - before.positions >= -1e-12)


def test_watchdog_stops_sending_until_streams_return(executor, robot_yaml, ready):
    path = robot_yaml("panda", safety={"joint_state_timeout": 0.3, "chunk_timeout": 0.8})
    ex = executor(path)
    rows = np.tile(np.append(ready, 0.0), (8, 1))
    ex.expect_sent(ex.chunk(rows))
    running = ex.wait_status(lambda s: s.state == 1)
    assert running.chunks_published == 1

    # Chunks stop: the executor turns idle and says why.
    status = ex.wait_status(lambda s: s.state == 0, timeout=3.0)
    assert status.last_refusal_reason.startswith("watchdog: no action chunk")

    # Joint states stop: nothing is sent, whatever arrives.
    ex.publish_joint_states = False
    ex.wait_status(lambda s: "joint state" in s.last_refusal_reason, timeout=3.0)
    requests = len(ex.requests)
    ex.expect_rejected(ex.chunk(rows), "watchdog")
    ex.ctx.spin_for(0.6)
    assert len(ex.requests) == requests, "chunks requested without joint states"

    # Both return: sending resumes.
    ex.publish_joint_states = True
    ex.ctx.spin_for(0.2)
    ex.expect_sent(ex.chunk(rows))
    ex.wait_status(lambda s: s.state == 1)


def test_emergency_stop_latches_until_reset_and_stop_start(executor, panda_yaml, ready):
    ex = executor(panda_yaml)
    rows = np.tile(np.append(ready, 0.0), (8, 1))

    assert ex.call("emergency_stop").success
    ex.wait_status(lambda s: s.state == 3)
    ex.expect_rejected(ex.chunk(rows), "estop")
    refused = ex.call("start")
    assert not refused.success and "reset" in refused.message
    ex.expect_rejected(ex.chunk(rows), "estop")
    requests = len(ex.requests)
    ex.ctx.spin_for(0.7)
    assert len(ex.requests) == requests, "chunks requested while e-stopped"

    assert ex.call("reset").success
    status = ex.wait_status(lambda s: s.state != 3)
    assert status.chunks_rejected == 0 and status.last_refusal_reason == ""
    # Cleared, but paused: nothing moves again until an explicit start.
    assert status.state == 2
    ex.expect_rejected(ex.chunk(rows), "stopped")
    assert ex.call("start").success
    ex.expect_sent(ex.chunk(rows))

    assert ex.call("stop").success
    ex.wait_status(lambda s: s.state == 2)
    ex.expect_rejected(ex.chunk(rows), "stopped")
    assert ex.call("start").success
    ex.expect_sent(ex.chunk(rows))


def test_consecutive_chunks_join_without_gap_under_decode_latency(
    executor, panda_yaml, panda_config, ready
):
    """The model answers each request after an injected latency; chunks must overlap in time
    and agree where they join."""
    ex = executor(panda_yaml)
    latency, num_steps, period = 0.3, 16, panda_config.control_period
    amplitude, frequency = 0.15, 0.4
    motion_per_period = amplitude * 2 * np.pi * frequency * period
    clock = {}

    def path(t_ns):
        t = (t_ns - clock["t0"]) * 1e-9
        return ready + amplitude * np.sin(2 * np.pi * frequency * t)

    def decode(request):
        if clock.get("busy"):
            return
        clock["busy"] = True
        observed = ex.now_ns()
        clock.setdefault("t0", observed)
        due = observed + period * 1e9 * np.arange(1, num_steps + 1)
        actions = np.array([path(t) for t in due])

        def publish():
            timer.cancel()
            ex.publish(ex.chunk(actions, stamp_ns=observed, decode_latency=latency))
            clock["busy"] = False

        timer = ex.node.create_timer(latency, publish)

    ex.on_request = decode
    topic = panda_config.arms[0].trajectory_topic
    assert ex.ctx.spin_until(lambda: len(ex.trajectories[topic]) >= 6, 10.0)
    sent = ex.trajectories[topic]

    for (t_a, a), (t_b, b) in zip(sent, sent[1:]):
        times_a = np.array([0.0] + [seconds(p.time_from_start) for p in a.points])
        end_a = t_a + times_a[-1] * 1e9
        assert t_b < end_a, f"gap of {(t_b - end_a) * 1e-9:.3f} s between chunks"
        first_b = t_b + seconds(b.points[0].time_from_start) * 1e9
        assert first_b < end_a
        positions_a = np.array([p.positions for p in a.points])
        at_join = [
            np.interp((first_b - t_a) * 1e-9, times_a[1:], positions_a[:, j]) for j in range(7)
        ]
        step = np.abs(np.array(b.points[0].positions) - at_join).max()
        print(f"join: overlap {(end_a - t_b) * 1e-6:.0f} ms, step {step:.5f} rad")
        assert step <= motion_per_period, f"position step {step:.4f} at the join"
    # Requests went out when the time left fell below the latency estimate plus the margin.
    timed = [r for _, r in ex.requests if r.current_chunk_id != 0]
    assert timed, "no request made during a chunk"
    margin = panda_config.timing.request_margin
    for request in timed:
        assert request.time_left <= request.expected_decode_latency + margin + 0.02
    # The initial latency counts as one of the measured ones until the window is full.
    initial = panda_config.timing.initial_decode_latency
    assert timed[-1].expected_decode_latency == pytest.approx(max(latency, initial))
    assert ex.status().last_decode_latency == pytest.approx(latency)  # as the chunk said
    assert ex.status().chunks_rejected == 0


def test_time_going_back_starts_a_new_timeline(executor, panda_yaml, ready):
    """A simulator reset rewinds /clock from 100 s to 5 s (the executor on use_sim_time, the
    joint states stamped with simulated time): chunks are requested again at once and a chunk
    observed at 5 s is executed, not refused against the joint states of the old timeline."""
    ex = executor(panda_yaml, clock=100.0)
    rows = np.tile(np.append(ready, 0.0), (8, 1))
    assert ex.ctx.spin_until(lambda: ex.requests, 3.0), "no chunk request"
    assert ex.requests[0][1].header.stamp.sec >= 100  # the executor runs on the /clock
    received, _ = ex.expect_sent(ex.chunk(rows))
    assert received >= 100e9
    ex.wait_status(lambda s: s.chunks_published == 1)

    ex.set_clock(5.0)
    # Nothing executes on the new timeline: the executor asks for a chunk (before any comes).
    assert ex.ctx.spin_until(lambda: any(r.header.stamp.sec < 50 for _, r in ex.requests), 3.0), (
        f"no chunk request after the jump; status: {ex.status()}"
    )
    received, _ = ex.expect_sent(ex.chunk(rows))  # observed now, at about 5 s
    assert 5e9 <= received < 50e9
    status = ex.wait_status(lambda s: s.chunks_published == 2)
    assert status.chunks_rejected == 0, status.last_refusal_reason
    # Requests go on: the next chunk is asked for before this one (0.4 s) runs out.
    chunk_id = ex.chunk_id
    assert ex.ctx.spin_until(
        lambda: any(r.current_chunk_id == chunk_id for _, r in ex.requests), 3.0
    ), "no chunk request for the chunk executing after the jump"


def test_two_arms_with_forward_command_grippers(executor, dual_yaml, dual_config, smooth_path):
    ex = executor(dual_yaml)
    kinematics = RobotKinematics(dual_config)
    ex.ctx.spin_for(0.1)
    starts = kinematics.ee_poses(ex.q)
    num_steps = 16
    blocks = []
    for arm, start in enumerate(starts):
        poses = smooth_path(start, num_steps, sign=1 if arm == 0 else -1)
        blocks.append(with_gripper(ee_deltas_from_poses(start, poses), 1.0))
    _, left = ex.expect_sent(ex.chunk(np.hstack(blocks), "ee_delta"))
    right_topic = dual_config.arms[1].trajectory_topic
    assert ex.ctx.spin_until(lambda: ex.trajectories[right_topic], 2.0)
    _, right = ex.trajectories[right_topic][0]
    assert left.joint_names == dual_config.arms[0].joint_names
    assert right.joint_names == dual_config.arms[1].joint_names
    # The arms move apart along mirrored paths.
    q_end = np.concatenate([left.points[-1].positions, right.points[-1].positions])
    ends = kinematics.ee_poses(q_end)
    assert ends[0].translation[1] - ends[1].translation[1] > (
        starts[0].translation[1] - starts[1].translation[1] + 0.05
    )
    # Each gripper is told to close, step by step, on its own topic.
    for topic in ("/left_gripper_controller/commands", "/right_gripper_controller/commands"):
        assert ex.ctx.spin_until(lambda t=topic: len(ex.gripper_commands[t]) >= 3, 3.0)
        np.testing.assert_allclose(ex.gripper_commands[topic][-1][1].data, [0.0, 0.0])


def with_gripper(deltas: np.ndarray, gripper: float) -> np.ndarray:
    return np.column_stack([deltas, np.full(len(deltas), gripper)])


def test_a_bad_robot_file_stops_the_node_naming_the_key(robot_yaml):
    from xwam_testing.ros import Peer

    path = robot_yaml("panda", control_period=-0.05)
    peer = Peer("--ros-args", "-p", f"robot_config:={path}", module="xwam_ros.nodes.executor")
    peer.process.wait(timeout=30)
    code, output = peer.stop()
    assert code == 2
    assert f"{path}: control_period: expected a period > 0 seconds" in output
