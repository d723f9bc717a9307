"""Executor node: action chunks in, joint trajectories out, safely and on time.

Subscribes to the model node's ActionChunk topic and to /joint_states. Each chunk accepted
by the safety filter becomes one `trajectory_msgs/JointTrajectory` per arm controller (the
steps elapsed since the observation dropped), published on its topic or sent as a
`control_msgs/action/FollowJointTrajectory` goal (the robot YAML's `interface`), and gripper
commands (trajectory, forward command, or GripperCommand / ParallelGripperCommand goals that
open or close). Publishes `~/status` (xwam_msgs/PolicyStatus) and `~/chunk_request`
(xwam_msgs/ChunkRequest: "start the next decode now"). Services (std_srvs/Trigger):
`~/emergency_stop` (latching), `~/reset` (clears it and the counters; stays paused), `~/stop`
and `~/start`. The node runs no inference and imports no model code.

Starting. With `autostart` false (a real arm) the executor is paused until `~/start`; with
`autostart` true (the sim graphs) it starts by itself once every controller is there. Either
way it never runs while a command goes nowhere: each command topic needs a subscriber and
each action its server; `~/start` is refused naming the ones missing, `~/status` lists them
(`unserved_commands`), and a controller that goes away while running pauses the executor.

Stopping holds the arm where it is. On `~/emergency_stop`, `~/stop`, a watchdog trip, a
controller goal rejected or aborted, and a chunk refused as broken (malformed or non-finite)
or for an arm too far from its command (`Rejection.holds`) while a trajectory runs,
each arm controller gets at once a trajectory braking evenly from the measured position and
velocity to rest `safety.hold_time` ahead at q + v t / 2 (`hold_trajectories`: no motion
back; stamped with the time the braking starts, so a hold that arrives late joins the curve
instead of starting it over behind the arm), and the FollowJointTrajectory goal it replaces
is canceled. Action grippers are left as they are (a grasp is kept). After an
e-stop nothing is sent until `~/reset` and `~/start`.

Joint states are merged by name into the shared joint-state store (arm and gripper may come
from different publishers; a zero stamp means "on receipt"). When ROS time jumps back (a
simulator reset that rewinds `/clock`, a looping bag), every time-keyed state is cleared: the
joint history, the plan being executed, the request schedule and the watchdog's arrival times,
so chunks of the new timeline are accepted and requested again; `~/reset` clears the same but
the joint history (still valid measurements).
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger

from xwam_msgs.msg import ActionChunk, ChunkRequest, PolicyStatus
from xwam_ros.config.robot import load_robot_config
from xwam_ros.executor.chunk import Chunk
from xwam_ros.executor.controllers import (
    GripperAction,
    TrajectoryAction,
    arm_controller,
    gripper_controller,
)
from xwam_ros.executor.measured_state import RobotJointStates
from xwam_ros.executor.planner import ChunkPlanner
from xwam_ros.executor.safety import Rejection
from xwam_ros.executor.supervisor import Supervisor, Watchdog, WatchdogTrip
from xwam_ros.executor.timing import LatencyEstimator, RequestScheduler
from xwam_ros.executor.trajectory import (
    GripperSchedule,
    Plan,
    forward_gripper_commands,
    gripper_goals,
    hold_trajectories,
    stop_point,
    trajectory_messages,
)
from xwam_ros.joint_state_store import JointStateError, on_backward_time_jump
from xwam_ros.node_support import Param, declare_parameters, run_node

PARAMS = (
    Param("robot_config", "", "robot configuration YAML (a path; config/robots/<arm>.yaml)"),
    Param("action_chunk_topic", "/xwam_model/action_chunk", "ActionChunk topic to execute"),
    Param(
        "autostart",
        False,
        "true: run as soon as every controller is there (the sim graphs); false: paused "
        "until ~/start (a real arm)",
    ),
    Param("status_period", 0.5, "seconds between two ~/status messages (also sent on changes)"),
    Param(
        "check_period",
        0.01,
        "seconds between two checks of the watchdog, the gripper schedule and the next request",
    ),
)


class Executor(Node):
    """Executes action chunks on joint_trajectory_controllers through the safety filter."""

    def __init__(self):
        super().__init__("xwam_executor")
        p = declare_parameters(self, PARAMS)
        if not p["robot_config"]:
            raise ValueError("parameter robot_config is required: the path of a robot YAML")
        for key in ("status_period", "check_period"):
            if p[key] <= 0:
                raise ValueError(f"{key} must be > 0 seconds, got {p[key]}")
        self.config = config = load_robot_config(p["robot_config"])
        self.planner = ChunkPlanner(config)
        self.joint_states = RobotJointStates(config)
        self.supervisor = Supervisor(autostart=False)
        self.autostart_pending = p["autostart"]
        self.watchdog = Watchdog(config.safety.joint_state_timeout, config.safety.chunk_timeout)
        self.latency = LatencyEstimator(
            config.timing.initial_decode_latency,
            config.timing.latency_window,
            config.timing.latency_quantile,
        )
        self.requests = RequestScheduler(
            config.timing.request_margin, config.timing.idle_request_period
        )
        self.gripper_schedule = GripperSchedule()
        self.plan: Plan | None = None
        self.last_chunk: Chunk | None = None
        self.last_chunk_received_ns: int | None = None
        self.watchdog_stream: str | None = None
        self.unserved: list[str] = []

        # One endpoint per command name: arms sharing a topic share one JointTrajectory, and a
        # joint_trajectory gripper on its arm's topic is commanded in the arm's message.
        self.controllers = {}
        for arm in config.arms:
            if arm.command_name not in self.controllers:
                self.controllers[arm.command_name] = arm_controller(self, arm, self.on_goal_failed)
        for arm in config.arms:
            if arm.gripper.command_name not in self.controllers:
                self.controllers[arm.gripper.command_name] = gripper_controller(
                    self, arm.gripper, self.on_goal_failed
                )
        self.status_pub = self.create_publisher(PolicyStatus, "~/status", 10)
        self.request_pub = self.create_publisher(ChunkRequest, "~/chunk_request", 10)
        self.create_subscription(ActionChunk, p["action_chunk_topic"], self.on_chunk, 10)
        self.create_subscription(
            JointState, config.joint_states_topic, self.on_joint_state, qos_profile_sensor_data
        )
        self.create_service(Trigger, "~/emergency_stop", self.on_emergency_stop)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.create_service(Trigger, "~/start", self.on_start)
        self.create_service(Trigger, "~/stop", self.on_stop)
        self._time_jumps = on_backward_time_jump(self.get_clock(), self.on_time_jump)
        self.create_timer(p["check_period"], self.on_check)
        self.create_timer(p["status_period"], self.on_status_period)
        endpoints = ", ".join(f"{c.kind} {name}" for name, c in self.controllers.items())
        start = (
            "starts once every controller is there"
            if self.autostart_pending
            else "paused until ~/start"
        )
        self.get_logger().info(
            f"executing {config.name} ({len(config.joint_names)} joints, "
            f"{config.action_space.type}) from {p['action_chunk_topic']} to {endpoints}; {start}"
        )

    def now_ns(self) -> int:
        """The node clock's time in nanoseconds."""
        return self.get_clock().now().nanoseconds

    def on_joint_state(self, msg: JointState) -> None:
        """Merge a joint state into the store (by name, with its history)."""
        try:
            self.joint_states.store.update_from_message(msg, self.now_ns())
        except JointStateError as exc:
            self.get_logger().warning(f"joint state ignored: {exc}", throttle_duration_sec=2.0)

    def clear_time_keyed_state(self, joint_history: bool) -> None:
        """Forget the plan, the request schedule and arrival times (and the joint history)."""
        if joint_history:
            self.joint_states.store.clear()
        self.plan = None
        self.last_chunk_received_ns = None
        self.watchdog_stream = None
        self.requests = RequestScheduler(
            self.config.timing.request_margin, self.config.timing.idle_request_period
        )
        self.gripper_schedule.clear()

    def on_time_jump(self, reason: str) -> None:
        """ROS time went back: what was timed on the old timeline no longer applies."""
        self.clear_time_keyed_state(joint_history=True)
        self.get_logger().warning(f"{reason}: joint history, plan and request schedule cleared")

    def on_chunk(self, msg: ActionChunk) -> None:
        """Plan the chunk and send it, or count and log why not; then report the status."""
        now = self.now_ns()
        chunk = Chunk.from_msg(msg)
        self.last_chunk, self.last_chunk_received_ns = chunk, now
        self.latency.add(chunk.decode_latency)
        result = self.supervisor.gate() or self._joint_state_rejection(now)
        if result is None:
            result = self.planner.plan(chunk, self.joint_states, now, self.plan)
        if isinstance(result, Plan):
            result = result.rebased(self.now_ns())
            if result.times[0] <= 0:
                result = Rejection("deadline", "the first point passed while planning")
        if isinstance(result, Rejection):
            self.supervisor.rejected(result)
            self.get_logger().warning(f"chunk {chunk.chunk_id} rejected, nothing sent: {result}")
            if result.holds:
                self.hold(f"chunk {chunk.chunk_id} refused ({result.category})")
        else:
            self._send(result)
        self.publish_status()

    def _joint_state_rejection(self, now: int) -> Rejection | None:
        trip = self.watchdog.check_stream("joint_states", now, self._joint_states_received())
        return Rejection("watchdog", trip.reason) if trip else None

    def _joint_states_received(self) -> int | None:
        latest = self.joint_states.latest()
        return None if latest is None else latest.received_ns

    def _send(self, plan: Plan) -> None:
        for name, msg in trajectory_messages(self.config, plan).items():
            self.controllers[name].send(msg)
        self.gripper_schedule.replace(
            {**forward_gripper_commands(self.config, plan), **gripper_goals(self.config, plan)}
        )
        self.plan = plan
        self.requests.chunk_started(plan.chunk_id, plan.end_ns)
        self.supervisor.executed()
        note = f", {plan.clamped} point(s) limited" if plan.clamped else ""
        if plan.blended:
            note += (
                f", blended in over {plan.blended} step(s) from the command being executed "
                f"({plan.blend_offset:.3f} off)"
            )
        if plan.unreachable:
            # The next chunk is requested as the shortened plan runs out (RequestScheduler).
            note += f"; only the reachable prefix: {plan.unreachable}"
        self.get_logger().info(
            f"chunk {plan.chunk_id}: {len(plan.times)} points sent, {plan.dropped} elapsed "
            f"step(s) dropped, first in {plan.times[0] * 1e3:.0f} ms{note}"
        )

    # Stopping -------------------------------------------------------------------------------

    def trajectory_running(self, now: int) -> bool:
        """Whether a trajectory sent by this executor may still be moving the arm."""
        return self.plan is not None and now < self.plan.end_ns

    def hold(self, why: str, always: bool = False) -> bool:
        """Stop the arms where they are: a braking trajectory (`hold_trajectories`) to every
        arm controller (and joint_trajectory gripper), canceling FollowJointTrajectory goals.

        Sent when a trajectory is running, or `always`. From the measured position when the
        joint states are fresh, else from where the running trajectory commands the arm now (a
        stale measurement would pull the arm back), to the braking distance v t / 2 at the
        measured (else commanded) velocity; stamped now when the controller's clock is known
        to agree (`_hold_target`). Forgets the plan, the gripper schedule and the request
        schedule. Whether anything was sent.
        """
        now = self.now_ns()
        running = self.trajectory_running(now)
        plan, self.plan = self.plan, None
        self.gripper_schedule.clear()
        self.requests = RequestScheduler(
            self.config.timing.request_margin, self.config.timing.idle_request_period
        )
        if not (running or always):
            return False
        target = self._hold_target(now, plan if running else None)
        if target is None:
            for controller in self.controllers.values():
                if isinstance(controller, TrajectoryAction):
                    controller.cancel()
            self.get_logger().error(f"{why}: no joint state to hold at; action goals canceled")
            return False
        arm_q, velocity, gripper_q, clock_agrees = target
        braking = np.abs(velocity) / self.planner.max_acceleration
        hold_time = max(self.config.safety.hold_time, float(braking.max(initial=0.0)))
        limits = (self.planner.lower, self.planner.upper)
        holds = hold_trajectories(
            self.config, arm_q, velocity, gripper_q, hold_time, limits, now if clock_agrees else 0
        )
        for name, msg in holds.items():
            self.controllers[name].hold(msg)
        stop = stop_point(arm_q, velocity, hold_time, limits)
        self.get_logger().warning(
            f"{why}: holding the arm at {np.round(stop, 3).tolist()} within {hold_time:.2f} s"
        )
        return True

    def _hold_target(self, now: int, plan: Plan | None):
        """(arm positions at `now`, arm velocity, gripper positions per arm, whether the
        controller's clock is known to agree with this node's), or None.

        The clocks agree when the joint states, which the controller's side stamps, are fresh,
        carry their sender's stamps and those are within `safety.joint_state_timeout` of now.
        """
        measured = self.joint_states.latest()
        timeout = int(self.config.safety.joint_state_timeout * 1e9)
        fresh = measured is not None and now - measured.received_ns <= timeout
        if plan is not None:
            commanded_q, velocity = plan.sample(now)
            commanded_gripper = plan.gripper_at(now)
        else:
            commanded_q, commanded_gripper, velocity = None, None, None
        if fresh and measured.velocity is not None:
            velocity = measured.velocity
        if fresh:
            # The measurement is a few milliseconds old; the joints moved on meanwhile.
            age = max(0, now - measured.stamp_ns) * 1e-9
            arm_q = measured.q + (0.0 if velocity is None else velocity * age)
        elif commanded_q is not None:
            arm_q = commanded_q
        else:
            return None
        if velocity is None:
            velocity = np.zeros_like(arm_q)
        clock_agrees = fresh and measured.sender_stamped and abs(now - measured.stamp_ns) <= timeout
        # A gripper keeps what it is commanded (holding it where it was measured would loosen
        # a grasp); one never commanded is held where it was measured.
        grippers = [
            commanded_gripper[a]
            if commanded_gripper is not None
            else (measured.gripper[a] if measured is not None else None)
            for a in range(len(self.config.arms))
        ]
        return arm_q, velocity, grippers, clock_agrees

    def on_goal_failed(self, kind: str, reason: str) -> None:
        """A controller rejected or aborted a goal: count it, pause, hold the other arms."""
        self.supervisor.goal_failed(kind, reason)
        self.autostart_pending = False
        self.get_logger().error(f"goal {kind}: {reason}; paused until ~/start")
        self.hold(f"goal {kind}")
        self.publish_status()

    # Controllers ------------------------------------------------------------------------------

    def check_controllers(self) -> list[str]:
        """The command endpoints nothing receives, one line each (also kept in `unserved`)."""
        self.unserved = [
            f"{c.kind} {name}: " + ("no subscriber" if c.kind == "topic" else "no action server")
            for name, c in self.controllers.items()
            if not c.served()
        ]
        return self.unserved

    def on_status_period(self) -> None:
        """Check the controllers (autostart once all are there; pause when one went away),
        then publish the status."""
        unserved = self.check_controllers()
        if unserved and self.supervisor.run_state.running:
            reason = "nothing receives the commands: " + "; ".join(unserved)
            self.supervisor.stop(reason)
            self.get_logger().error(f"{reason}; paused until ~/start")
            self.hold("controller gone")
        elif not unserved and self.autostart_pending:
            self.autostart_pending = False
            self.supervisor.start()
            self.get_logger().info("autostart: every controller is there; running")
        self.publish_status()

    def on_check(self) -> None:
        """Watchdog, forward-command gripper steps due, and the next chunk request."""
        now = self.now_ns()
        trip = self.watchdog.check(now, self._joint_states_received(), self.last_chunk_received_ns)
        self._watch(trip)
        if self.supervisor.gate() is not None or trip is not None:
            self.gripper_schedule.clear()
        else:
            for name, command in self.gripper_schedule.due(now).items():
                self.controllers[name].send(command)
        # A request needs fresh joint states only: no chunks is exactly when one is needed.
        if (
            self.supervisor.gate() is None
            and (trip is None or trip.stream == "chunks")
            and self.requests.should_request(now, self.latency.estimate)
        ):
            self._publish_request(now)

    def _watch(self, trip: WatchdogTrip | None) -> None:
        """Log each watchdog trip and recovery once; a stream that stopped is a refusal."""
        stream = trip.stream if trip else None
        if stream == self.watchdog_stream:
            return
        self.watchdog_stream = stream
        if trip is not None and trip.seen:
            self.supervisor.refused_to_send(f"watchdog: {trip.reason}")
            self.get_logger().warning(f"watchdog: {trip.reason}; nothing is sent")
            self.hold("watchdog")
        elif trip is None:
            self.get_logger().info("watchdog: joint states and chunks arriving")
        self.publish_status()

    def _publish_request(self, now: int) -> None:
        msg = ChunkRequest()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.frame_id
        msg.current_chunk_id = self.requests.chunk_id
        end = self.requests.chunk_end_ns or 0
        msg.current_chunk_end = Time(sec=end // 10**9, nanosec=end % 10**9)
        msg.time_left = self.requests.time_left(now)
        msg.expected_decode_latency = self.latency.estimate
        self.request_pub.publish(msg)

    def publish_status(self) -> None:
        """Publish ~/status: state, counters, the last refusal and the last chunk's origin."""
        msg = PolicyStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.config.frame_id
        msg.state = self.supervisor.state(
            can_execute=self.watchdog_stream is None and not self.unserved
        )
        if self.last_chunk is not None:
            msg.instruction = self.last_chunk.instruction
            msg.model_id = self.last_chunk.model_id
            msg.last_decode_latency = self.last_chunk.decode_latency
        msg.chunks_published = self.supervisor.chunks_executed
        msg.chunks_rejected = self.supervisor.chunks_rejected
        kinds = sorted(self.supervisor.rejections)
        msg.refusal_kinds = kinds
        msg.refusal_counts = [self.supervisor.rejections[k] for k in kinds]
        msg.last_refusal_reason = self.supervisor.last_refusal_reason
        msg.unserved_commands = list(self.unserved)
        msg.goals_rejected = self.supervisor.goal_failures["rejected"]
        msg.goals_aborted = self.supervisor.goal_failures["aborted"]
        self.status_pub.publish(msg)

    def on_emergency_stop(self, _request, response):
        """~/emergency_stop: hold the arm at once and latch; nothing is sent (nor requested)
        until ~/reset and ~/start."""
        self.supervisor.emergency_stop()
        self.autostart_pending = False
        held = self.hold("EMERGENCY STOP", always=True)
        self.get_logger().error(
            "EMERGENCY STOP latched: nothing is sent until ~/reset and ~/start"
            + ("" if held else " (no joint state to hold at)")
        )
        self.publish_status()
        response.success, response.message = True, "emergency stop latched; arm held"
        return response

    def on_reset(self, _request, response):
        """~/reset: clear the emergency stop, the counters, the plan and the request schedule;
        the executor stays paused until ~/start."""
        self.supervisor.reset()
        self.autostart_pending = False
        # The measured joints stay valid (time did not move): a reset must not blind the
        # executor until the next joint state.
        self.clear_time_keyed_state(joint_history=False)
        for controller in self.controllers.values():
            if isinstance(controller, GripperAction):
                controller.forget()
        self.get_logger().info("reset: emergency stop cleared, counters zeroed; paused")
        self.publish_status()
        response.success, response.message = True, "reset; paused until ~/start"
        return response

    def on_start(self, _request, response):
        """~/start: run, refused while the emergency stop is latched or while a command
        endpoint has nothing to receive it (named in the message)."""
        unserved = self.check_controllers()
        if unserved:
            response.success = False
            response.message = "not started: nothing receives the commands: " + "; ".join(unserved)
        else:
            response.success, response.message = self.supervisor.start()
        self.get_logger().info(f"start: {response.message}")
        self.publish_status()
        return response

    def on_stop(self, _request, response):
        """~/stop: pause, holding the arm where it is if a trajectory is running."""
        response.success, response.message = self.supervisor.stop()
        self.autostart_pending = False
        self.hold("stop")
        self.get_logger().info(f"stop: {response.message}")
        self.publish_status()
        return response


def main(args=None) -> int:
    """Console script `executor`."""
    return run_node(Executor, args)


if __name__ == "__main__":
    raise SystemExit(main())
