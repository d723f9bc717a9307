"""The model node's threads and run state, over real DDS, with the real tiny policy.

The node runs in this process (its own rclpy context, spun by an executor thread of its own,
as `run_node` spins it) so that its policy can be fronted by a recorder: every use of the
policy, and of each run `begin` returns, is noted with the thread it came from and passed on
unchanged. Cameras and joint states come from the sensor-rig peer process; services are
called and topics read from the test's own context.

- Services hammered while the node decodes (reset, set_instruction, set_depth_branch, start,
  again and again): the policy is only ever used from the worker thread, each reset reaches
  it exactly once, and the first chunk after the last reset is chunk 1 with the instruction
  set after it.
- The emergency stop, called while an imagination runs: the imagination is abandoned, no
  chunk and no imagined frame arrives after the answer, `start` is refused while it holds,
  `reset` leaves the node paused (still nothing published), and `start` then runs it again
  from chunk 1.
- A time jump (`use_sim_time` switched on through the node's parameter service, and off
  again), while an imagination runs: the imagination is abandoned (its stamps are of another
  timeline), and chunks come again once the time is back.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
import rclpy
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger
from xwam_testing.ros import Peer

from xwam_msgs.msg import ActionChunk, PolicyStatus
from xwam_msgs.srv import SetInstruction
from xwam_ros.nodes.model_node import WORKER_THREAD, ModelNode
from xwam_ros.paths import config_dir

CONFIG = config_dir()
CAMERAS = CONFIG / "cameras" / "two_cameras.yaml"
NODE = "/xwam_model"
DECODE_PERIOD = 2.0  # an imagination (about 1 s here) ends well before the next decode
VIDEO_STEPS = 100  # tiny's 6, made many: an imagination lasts long enough to be interrupted
GRACE = 0.5  # seconds for a message published before an answer to be delivered after it


class Recorder:
    """What the policy saw: (attribute, thread name) per use, and each imagination's end."""

    def __init__(self):
        self.uses: list[tuple[str, str]] = []
        self.begun = 0  # imaginations begun
        self.imagined: list[bool] = []  # per imagination ended: completed (True) or abandoned

    def threads(self) -> set[str]:
        return {thread for _, thread in self.uses}

    def count(self, name: str) -> int:
        return sum(1 for used, _ in self.uses if used == name)

    def wait_for_imagination(self, ctx, begun: int) -> int:
        """Wait until an imagination begins after the first `begun`; its index."""
        assert ctx.spin_until(lambda: self.begun > begun, 30), self.imagined
        return self.begun - 1

    def wait_for_end(self, ctx, index: int) -> bool:
        """Whether imagination `index` completed (False: abandoned)."""
        assert ctx.spin_until(lambda: len(self.imagined) > index, 30)
        return self.imagined[index]


class Recorded:
    """Fronts a policy (or a run of it): notes each attribute use, then passes it on."""

    def __init__(self, target, recorder: Recorder):
        self._target = target
        self._recorder = recorder

    def __getattr__(self, name: str):
        recorder = self._recorder
        recorder.uses.append((name, threading.current_thread().name))
        value = getattr(self._target, name)
        if name == "begin":
            return lambda *args, **kwargs: Recorded(value(*args, **kwargs), recorder)
        if name == "imagine_steps":

            def imagine_steps(*args, **kwargs):
                recorder.begun += 1
                completed = False
                try:
                    future = yield from value(*args, **kwargs)
                    completed = True
                    return future
                finally:  # run out, or closed by the node when it drops the imagination
                    recorder.imagined.append(completed)

            return imagine_steps
        return value


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The model node in this process, paused (autostart off), its policy recorded; the
    sensor rig publishing. Yields (node, recorder)."""
    text = (CONFIG / "model" / "tiny.yaml").read_text()
    assert "video_steps: 6\n" in text
    model_yaml = tmp_path_factory.mktemp("model") / "tiny_long_imagination.yaml"
    model_yaml.write_text(text.replace("video_steps: 6\n", f"video_steps: {VIDEO_STEPS}\n"))
    parameters = {
        "robot_config": str(CONFIG / "robots" / "panda.yaml"),
        "cameras_config": str(CAMERAS),
        "model_config": str(model_yaml),
        "autostart": False,
        "warm_up": False,  # the worker touches the policy only once recorded
        "decode_period": DECODE_PERIOD,
        "status_period": 0.1,
    }
    context = rclpy.Context()
    rclpy.init(context=context)
    node = ModelNode(
        context=context,
        parameter_overrides=[Parameter(name, value=value) for name, value in parameters.items()],
    )
    recorder = Recorder()
    node.policy = Recorded(node.policy, recorder)  # paused: the worker has not used it yet
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, name="model_executor", daemon=True)
    spinner.start()
    rig = Peer(
        "--cameras", str(CAMERAS), "--camera-rate", "10", module="xwam_testing.peers.sensor_rig"
    )
    try:
        yield node, recorder
    finally:
        rig.stop()
        executor.shutdown(timeout_sec=5.0)
        spinner.join(timeout=5.0)
        node.destroy_node()
        rclpy.shutdown(context=context)


class Client:
    """The model node's topics and services, seen from the test's context."""

    def __init__(self, ctx):
        self.ctx = ctx
        node = ctx.node("model_client")
        self.chunks: list[tuple[float, ActionChunk]] = []  # (arrival, monotonic s)
        self.frames: list[float] = []  # arrivals of imagined front RGB frames
        self.statuses: list[PolicyStatus] = []
        node.create_subscription(
            ActionChunk,
            f"{NODE}/action_chunk",
            lambda m: self.chunks.append((time.monotonic(), m)),
            10,
        )
        node.create_subscription(
            Image,
            f"{NODE}/imagined/front/rgb",
            lambda _m: self.frames.append(time.monotonic()),
            QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE),
        )
        node.create_subscription(PolicyStatus, f"{NODE}/status", self.statuses.append, 10)
        self.sent: Counter[str] = Counter()
        self.clients = {
            name: node.create_client(kind, f"{NODE}/{name}")
            for name, kind in {
                "start": Trigger,
                "stop": Trigger,
                "reset": Trigger,
                "emergency_stop": Trigger,
                "set_instruction": SetInstruction,
                "set_depth_branch": SetBool,
                "set_parameters": SetParameters,
            }.items()
        }
        for client in self.clients.values():
            assert ctx.spin_until(client.service_is_ready, 30), client.srv_name
        ctx.spin_for(0.5)  # the response writers match the new clients too

    def call(self, name: str, request=None):
        """Call a service; its answer. A request unanswered for 2 s is sent again (an answer
        to a client just discovered can be dropped); `sent` counts every request sent."""
        client = self.clients[name]
        request = request or Trigger.Request()
        futures = []
        while not futures or not any(f.done() for f in futures):
            assert len(futures) < 5, f"{name}: no answer"
            futures.append(client.call_async(request))
            self.sent[name] += 1
            self.ctx.spin_until(lambda: any(f.done() for f in futures), 2.0)
        first = next(i for i, f in enumerate(futures) if f.done())
        assert self.ctx.spin_until(lambda: all(f.done() for f in futures[first:]), 10)
        return futures[-1].result()

    def wait_for_state(self, state: int, reason: str | None = None) -> PolicyStatus:
        """The first status from now on in `state` (and with `reason`, when given)."""
        seen = len(self.statuses)

        def fits(status: PolicyStatus) -> bool:
            return status.state == state and reason in (None, status.last_refusal_reason)

        arrived = self.ctx.spin_until(lambda: any(map(fits, self.statuses[seen:])), 10.0)
        assert arrived, f"no status in state {state} ({reason}): {self.statuses[-1:]}"
        return next(s for s in self.statuses[seen:] if fits(s))

    def chunks_after(self, t: float) -> list[ActionChunk]:
        return [chunk for arrival, chunk in self.chunks if arrival > t]


@pytest.mark.ros
def test_only_the_worker_uses_the_policy_while_services_are_called(ros_node, model):
    node, recorder = model
    client = Client(ros_node)
    # Autostart off: paused, and nothing has touched the policy.
    client.wait_for_state(PolicyStatus.STATE_PAUSED)
    assert not client.chunks and not recorder.uses

    assert client.call("start").success
    assert ros_node.spin_until(lambda: client.chunks, 60), client.statuses[-1:]

    # Every service that changes what the worker does, again and again, while it decodes
    # and imagines (each start makes a decode due at once).
    rounds = 8
    for i in range(rounds):
        assert client.call("reset").success
        answer = client.call("set_instruction", SetInstruction.Request(instruction=f"task {i}"))
        assert answer.success and answer.message == f"instruction set: task {i}"
        assert client.call("set_depth_branch", SetBool.Request(data=i % 2 == 1)).success
        assert client.call("start").success
        ros_node.spin_for(0.15 * (i % 4))

    # The last reset: the first chunk that carries the instruction set after it is chunk 1.
    started, begun = time.monotonic(), recorder.begun
    assert client.call("reset").success
    assert client.call("set_instruction", SetInstruction.Request(instruction="final")).success
    assert client.call("start").success

    def final_chunk():
        return [c for c in client.chunks_after(started) if c.instruction == "final"]

    assert ros_node.spin_until(final_chunk, 30), client.statuses[-1:]
    assert final_chunk()[0].chunk_id == 1
    assert ros_node.spin_until(lambda: len(recorder.imagined) > begun, 30)  # one ended

    status = client.wait_for_state(PolicyStatus.STATE_RUNNING)
    assert status.instruction == "final" and status.depth_branch_enabled  # round 7: on
    # Only the worker used the policy, and it reset it once per reset request.
    assert recorder.threads() == {WORKER_THREAD}, Counter(recorder.uses)
    assert recorder.count("reset") == client.sent["reset"]
    assert {"begin", "decode_actions", "imagine_steps"} <= {name for name, _ in recorder.uses}
    assert node._worker.name == WORKER_THREAD


@pytest.mark.ros
def test_emergency_stop_abandons_the_imagination_and_holds_until_reset_and_start(ros_node, model):
    node, recorder = model
    client = Client(ros_node)
    begun = recorder.begun
    assert client.call("reset").success and client.call("start").success

    # The e-stop, as soon as an imagination has begun.
    index = recorder.wait_for_imagination(ros_node, begun)
    answer = client.call("emergency_stop")
    answered = time.monotonic()
    assert answer.success
    assert recorder.wait_for_end(ros_node, index) is False, "imagined on after the e-stop"
    assert client.chunks, "no chunk before the e-stop"

    client.wait_for_state(PolicyStatus.STATE_ESTOPPED, reason="emergency stop")
    ros_node.spin_for(2 * DECODE_PERIOD)  # decodes fall due; none may publish
    assert client.chunks_after(answered + GRACE) == []
    assert [t for t in client.frames if t > answered + GRACE] == []

    # Latched: start and a new instruction are refused.
    refused = client.call("start")
    assert not refused.success and "reset" in refused.message
    assert not client.call("set_instruction", SetInstruction.Request(instruction="x")).success
    client.wait_for_state(PolicyStatus.STATE_ESTOPPED)

    # Reset clears the latch but leaves the node paused: still nothing.
    reset_at = time.monotonic()
    assert client.call("reset").success
    status = client.wait_for_state(PolicyStatus.STATE_PAUSED)
    ros_node.spin_for(2 * DECODE_PERIOD)
    assert client.chunks_after(answered + GRACE) == []
    status = client.statuses[-1]
    assert status.state == PolicyStatus.STATE_PAUSED
    assert (status.chunks_published, status.last_refusal_reason) == (0, "")

    # Start: chunks again, counted from 1.
    assert client.call("start").success
    assert ros_node.spin_until(lambda: client.chunks_after(reset_at), 30)
    assert client.chunks_after(reset_at)[0].chunk_id == 1
    assert recorder.threads() == {WORKER_THREAD}


def use_sim_time(on: bool) -> SetParameters.Request:
    return SetParameters.Request(
        parameters=[Parameter("use_sim_time", value=on).to_parameter_msg()]
    )


@pytest.mark.ros
def test_a_time_jump_abandons_the_imagination_in_progress(ros_node, model):
    node, recorder = model
    client = Client(ros_node)
    begun = recorder.begun
    assert client.call("reset").success and client.call("start").success

    # Simulated time switched on (no /clock: time stands at 0), as an imagination begins.
    index = recorder.wait_for_imagination(ros_node, begun)
    assert client.call("set_parameters", use_sim_time(True)).results[0].successful
    assert recorder.wait_for_end(ros_node, index) is False, "imagined on after the time jump"

    # Back to the system clock: a second jump, then chunks again.
    assert client.call("set_parameters", use_sim_time(False)).results[0].successful
    back = time.monotonic()
    assert ros_node.spin_until(lambda: client.chunks_after(back), 30), client.statuses[-1:]
    assert recorder.threads() == {WORKER_THREAD}
