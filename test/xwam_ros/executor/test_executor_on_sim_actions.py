"""The executor on the simulated arm's ros2_control action interfaces, over real DDS.

The sim arm serves FollowJointTrajectory for the arm and GripperCommand or
ParallelGripperCommand for the gripper (robot YAML variants); the executor sends its chunks
there as goals. Checked: chunks move the arm and open/close the gripper through goals, an
aborted goal (a path tolerance violated) is counted and pauses the executor, and an e-stop
cancels the goal and holds the arm.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from xwam_testing.chunks import action_chunk
from xwam_testing.robots import action_robot_variant
from xwam_testing.ros import Peer

from xwam_msgs.msg import ActionChunk, PolicyStatus
from xwam_ros.config.robot import load_robot_config

pytestmark = pytest.mark.ros

STEPS = 16
PAUSED = PolicyStatus.STATE_PAUSED


class Loop:
    """The test's side: /clock, joint states, the executor's status and services, chunks."""

    def __init__(self, ctx, config):
        self.ctx, self.config = ctx, config
        self.node = ctx.node("executor_on_sim")
        self.clock_ns = 0
        self.state: JointState | None = None
        self.statuses: list[PolicyStatus] = []
        self.node.create_subscription(Clock, "/clock", self._on_clock, 1)
        self.node.create_subscription(JointState, "/joint_states", self._on_state, 1)
        self.node.create_subscription(
            PolicyStatus, "/xwam_executor/status", self.statuses.append, 10
        )
        self.chunks = self.node.create_publisher(ActionChunk, "/xwam_model/action_chunk", 10)
        self.clients = {
            name: self.node.create_client(Trigger, f"/xwam_executor/{name}")
            for name in ("emergency_stop", "reset", "start", "stop")
        }
        self.chunk_id = 0
        self.sent_stamp_ns = -1

    def _on_clock(self, msg: Clock) -> None:
        self.clock_ns = msg.clock.sec * 10**9 + msg.clock.nanosec

    def _on_state(self, msg: JointState) -> None:
        self.state = msg

    def positions(self, names) -> np.ndarray:
        msg = self.state
        return np.array([msg.position[list(msg.name).index(n)] for n in names])

    def velocities(self, names) -> np.ndarray:
        msg = self.state
        return np.array([msg.velocity[list(msg.name).index(n)] for n in names])

    def call(self, name: str) -> Trigger.Response:
        future = self.clients[name].call_async(Trigger.Request())
        assert self.ctx.spin_until(future.done, 10.0), f"~/{name} did not answer"
        return future.result()

    def wait_status(self, predicate, timeout: float = 20.0) -> PolicyStatus:
        start = len(self.statuses)
        assert self.ctx.spin_until(
            lambda: any(predicate(s) for s in self.statuses[start:]), timeout
        ), f"no such status; last: {self.statuses[-1] if self.statuses else None}"
        return next(s for s in self.statuses[start:] if predicate(s))

    def wait_sim(self, seconds: float) -> None:
        end = self.clock_ns + int(seconds * 1e9)
        assert self.ctx.spin_until(lambda: self.clock_ns >= end, 60.0), "simulated time stuck"

    def wait_executing(self, tries: int = 30) -> PolicyStatus:
        """Send chunks holding the arm (gripper open), one at a time, each once the one before
        was refused, until the executor executes one: it may start, once its controllers are
        there, before its first joint state arrives, and refuses chunks until then
        (watchdog). The status after it."""

        def handled(status: PolicyStatus) -> int:
            return status.chunks_published + status.chunks_rejected

        before = handled(self.statuses[-1]) if self.statuses else 0
        for _ in range(tries):
            self.send_chunk(speed=0.0, gripper=0.0)
            status = self.wait_status(lambda s, seen=before: handled(s) > seen)
            if status.chunks_published:
                return status
            before = handled(status)
            self.wait_sim(0.2)
        raise AssertionError(f"no chunk executed; last status: {self.statuses[-1]}")

    def send_chunk(self, speed: float, gripper: float) -> np.ndarray:
        """A joint_position chunk from where the arm is: joint 1 at `speed` rad/s, the gripper
        value `gripper` (0 open, 1 closed) throughout, observed at the latest simulated time
        (later than the chunk before: the executor refuses one that is not). Its last arm
        target."""
        assert self.ctx.spin_until(lambda: self.clock_ns > self.sent_stamp_ns, 30.0)
        self.sent_stamp_ns = self.clock_ns
        period = self.config.control_period
        start = self.positions(self.config.joint_names)
        rows = np.tile(start, (STEPS, 1))
        rows[:, 0] += speed * period * np.arange(1, STEPS + 1)
        actions = np.column_stack([rows, np.full(STEPS, gripper)])
        self.chunk_id += 1
        msg = action_chunk(self.config, actions, self.sent_stamp_ns, self.chunk_id)
        self.chunks.publish(msg)
        return rows[-1]


@contextmanager
def running_loop(ctx, robot: Path, **sim_parameters):
    """A sim arm on the action interfaces of `robot` and an executor (autostart) commanding
    it, both running; yields the test's `Loop` once the executor runs."""
    config = load_robot_config(robot)
    sim = Peer.node(
        "xwam_ros.nodes.sim_arm",
        robot_config=robot,
        image_width=16,
        image_height=16,
        camera_rate=1.0,
        **sim_parameters,
    )
    executor = Peer.node(
        "xwam_ros.nodes.executor",
        robot_config=robot,
        use_sim_time="true",
        autostart="true",
        status_period=0.1,
    )
    with sim, executor:
        test = Loop(ctx, config)
        test.wait_status(lambda s: s.state != PAUSED and not s.unserved_commands, 60.0)
        assert ctx.spin_until(lambda: test.state is not None and test.clock_ns > 0, 30.0)
        test.wait_executing()
        yield test
        code, output = executor.stop()
        assert code == 0, output[-3000:]


@pytest.fixture(params=["gripper_command", "parallel_gripper_command"])
def loop(request, ros_node, tmp_path):
    """A sim arm on action interfaces and an executor (autostart) commanding it."""
    with running_loop(ros_node, action_robot_variant(tmp_path, request.param), seed=3) as test:
        yield test


def test_chunks_become_goals_that_move_the_arm_and_the_gripper(loop):
    joints, fingers = loop.config.joint_names, loop.config.arms[0].gripper.joints
    target = loop.send_chunk(speed=0.3, gripper=1.0)
    loop.wait_sim(STEPS * loop.config.control_period + 0.6)
    np.testing.assert_allclose(loop.positions(joints), target, atol=0.02)
    # The gripper closed through its action (to closed_positions, nothing in the way).
    np.testing.assert_allclose(loop.positions(fingers), 0.0, atol=0.004)
    target = loop.send_chunk(speed=-0.3, gripper=0.0)
    loop.wait_sim(STEPS * loop.config.control_period + 0.6)
    np.testing.assert_allclose(loop.positions(joints), target, atol=0.02)
    np.testing.assert_allclose(loop.positions(fingers), 0.04, atol=0.004)
    status = loop.wait_status(lambda s: s.chunks_published == 3)  # with wait_executing's
    assert status.goals_rejected == 0 and status.goals_aborted == 0


def test_an_emergency_stop_cancels_the_goal_and_holds(loop):
    joints = loop.config.joint_names
    series: list[tuple[float, np.ndarray, np.ndarray]] = []

    def record(msg: JointState) -> None:
        index = [list(msg.name).index(n) for n in joints]
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        series.append((stamp, np.array(msg.position)[index], np.array(msg.velocity)[index]))

    loop.node.create_subscription(JointState, "/joint_states", record, 100)
    loop.send_chunk(speed=0.5, gripper=0.0)
    loop.wait_sim(0.3)
    assert abs(loop.velocities(joints)[0]) > 0.2, "the arm is not moving"
    called = loop.clock_ns * 1e-9
    assert loop.call("emergency_stop").success
    loop.wait_sim(0.8)
    after = [(t - called, q, v) for t, q, v in series if t > called]
    moving = [t for t, _, v in after if np.abs(v).max() >= 0.01]
    # Braking at once, and at rest (< 0.01 rad/s, staying so) as fast as the sim's joint PD
    # allows: kp 150, critically damped, time constant 82 ms, so from 0.5 rad/s at best
    # ln(50) x 82 ms = 0.32 s.
    # (About 0.5 rad/s, a little more while the chunk's fade-in from the hold catches up.)
    at_call = [v[0] for t, _, v in series if t <= called][-1]
    braking = next(v[0] for t, _, v in after if t >= 0.05)
    assert braking < 0.8 * at_call, f"not braking: {at_call:.3f} -> {braking:.3f} rad/s"
    assert moving and moving[-1] < 0.45, f"still moving {moving[-1]:.2f} s after the e-stop"
    # Held where it came to rest, not pulled back: the PD arm lags its setpoint by 2 v / w
    # (82 mrad at 0.5 rad/s) and a hold from the measured state (as the JTC's own
    # decelerate_to_hold_position does) lets it overshoot that setpoint a little.
    furthest = max(q[0] for _, q, _ in after)
    assert furthest - after[-1][1][0] < 0.004, "joint 1 moved back"
    status = loop.wait_status(lambda s: s.state == PolicyStatus.STATE_ESTOPPED)
    assert status.goals_aborted == 0  # its own cancel is not a failure


def test_an_aborted_goal_is_counted_and_pauses(ros_node, tmp_path):
    robot = action_robot_variant(tmp_path, "gripper_command", path_tolerance=0.002)
    with running_loop(ros_node, robot) as test:
        # 1.2 rad/s from rest: the arm lags the trajectory by more than 2 mrad at once.
        test.send_chunk(speed=1.2, gripper=0.0)
        status = test.wait_status(lambda s: s.goals_aborted == 1)
        assert status.state == PAUSED
        assert "PATH_TOLERANCE_VIOLATED" in status.last_refusal_reason
        assert test.config.arms[0].action_name in status.last_refusal_reason
        # Paused: a chunk is not executed until ~/start.
        rejected = status.chunks_rejected
        test.send_chunk(speed=0.0, gripper=0.0)
        status = test.wait_status(lambda s: s.chunks_rejected > rejected)
        assert status.last_refusal_reason.startswith("stopped:")
        assert test.call("start").success
