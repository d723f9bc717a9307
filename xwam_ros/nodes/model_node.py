"""Model node: observations in, action chunks and the imagined 4D future out.

One control cycle (DESIGN.md) runs in a worker thread, never in a callback:

1. take an observation (the newest camera frames within the skew limit of each other, the
   joints interpolated at their capture time: `xwam_ros.observation`; refused when stale,
   skewed or malformed, the refusal counted, and retried once `retry_period` later on the
   node's clock);
2. the proprio vector from forward kinematics; the policy prepares and encodes. With a
   checkpoint trained for it (`max_action_prefix`) and `continue_chunks`, the steps of the new
   chunk due before it can take over (now plus the expected decode latency plus the
   executor's `timing.min_lead_time`) are fixed to
   what the chunk being executed (the request's `current_chunk_id`) commands at those times
   (`xwam_ros.continuation`), so the new chunk continues it (`ActionChunk.prefix_steps`);
3. the action passes run and the chunk is published at once (`~/action_chunk`), unless the
   model produced NaN/Inf (rejected, counted, nothing sent). Its `decode_latency`, which the
   executor plans its next request with, counts from the request but leaves out the
   imagination pieces that ran first because the executing chunk left time for them;
4. an imagination begins with the first chunk of a run and then with the first chunk at
   least `imagine_every_n_chunks` after the last one began, once none is in progress: the
   remaining video passes run with the depth branch and the imagined RGB, depth, point cloud
   and end-effector path are published. It is deferred, never abandoned, for decodes: the
   worker advances it a piece at a time (a pass, one upsampling block of the VAE decode of the
   RGB or of the depth: `PolicyRun.imagine_steps`, then the publication) while the chunk
   being executed leaves time for the piece (the slowest of the recent ones of its kind),
   then the next decode (of the recent decodes) and the robot's
   `timing.min_lead_time` plus a control period; that chunk ends at its stamp plus its
   steps, and at the time left that the executor's request reports. A due decode therefore
   waits for pieces while it can still land before the executing chunk runs out (and it
   then observes a fresher state), and beyond that only for the model's
   `imagination_delay` and one piece (what seeing the imagined future costs the control
   rate where the decodes leave no time between chunks). The imagination advances by at
   least the model's `imagination_pieces_per_chunk` pieces per chunk: when fewer fitted
   between two chunks, the missing ones run after the second whether they fit or not, so
   that where the decodes leave no time at all (a busy CPU) imaginations still land, about
   one per ten chunks, each of those pieces holding a decode back by its duration; where
   pieces fit, none is forced on a decode. So the arm never
   waits for an imagination to end: on a machine too slow to finish one within a chunk it
   spans several and lands late, stamped at the times it depicts. Before its first
   observation the node decodes and imagines a blank one (`warm_up`), so the first
   imagination is planned with measured durations too.
   Without an executor's requests (`decode_period`) pieces run only while no decode is due.
   Only a stop, e-stop, reset or time jump drops it.
   `~/status` counts imaginations completed and dropped (`imaginations_abandoned`).

The next decode is due when the executor asks for it (`xwam_msgs/ChunkRequest`), or every
`decode_period` seconds when that is set. Services: `~/start`, `~/stop` (stop publishing;
nothing is ever commanded to zero), `~/reset`, `~/emergency_stop` (latching until reset),
`~/set_instruction`, `~/set_depth_branch`.

When ROS time jumps back (a simulator reset that rewinds `/clock`, a looping bag) and on
`~/reset`, every time-keyed state (camera frames, joint histories, a pending retry) is cleared.

Threads. The policy is not thread-safe, so one thread owns it: the worker (`xwam_policy`) is
the only thread that touches `self.policy` or what it returns (begin, decode, imagine, reset)
and the state a cycle reads (the instruction, the depth switch, counters, the pending retry,
the observation assembler's clears). ROS callbacks (the executor thread) only store messages,
read the run state and put commands on `_commands`, a queue the worker drains before each
cycle, in order.

- The run state (running/paused, the e-stop latch) is one `xwam_ros.run_state.RunState`
  (the executor's rules); every read and change goes through it, from any thread.
  `~/start`, `~/stop`, `~/emergency_stop` and `~/reset` change it at once, in the service;
  `autostart` says whether the node starts running.
- Services decide at once whether a command is accepted (from the run state and the model's
  fixed configuration, both safe to read from any thread) and answer without waiting for
  the worker: the single executor thread also serves `~/emergency_stop`, which must never
  queue behind a decode. What they change is applied by the worker before its next cycle:
  an answer means "accepted, in effect before the next decode".
- `~/stop`, `~/emergency_stop`, `~/reset` and a backward time jump invalidate the run in
  progress: its imagination stops at the next denoising pass, and nothing more of it is
  published. Publication and these services share `_publish_lock`, so once such a service
  has answered, nothing of the invalidated run reaches a topic. `~/reset` clears the e-stop
  latch and leaves the node paused: nothing is published until `~/start`.
- `~/status` reports `RunState.state`; "idle" means running but with no usable observation
  (none taken yet, or the last one refused).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState, PointCloud2
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from xwam_model.embodiment import (
    PROPRIO_GRIPPER,
    PROPRIO_POSITION,
    PROPRIO_QUATERNION,
    actions_to_model,
    actions_to_robot,
    pose_to_model,
    pose_to_robot,
    proprio_block,
)
from xwam_model.policy import ActionChunk as PolicyChunk
from xwam_model.policy import ImaginedFuture, ObservationError, PolicyRun
from xwam_model.policy import Observation as PolicyObservation
from xwam_msgs.msg import ActionChunk, ChunkRequest, PolicyStatus
from xwam_msgs.srv import SetInstruction
from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.model import load_model_config
from xwam_ros.config.robot import load_robot_config
from xwam_ros.continuation import ChunkContinuation, PublishedChunk, prefix_steps
from xwam_ros.conversions.buffers import keep_large_allocations_resident
from xwam_ros.executor.kinematics import RobotKinematics
from xwam_ros.imagination import (
    ViewGeometry,
    future_link_poses,
    header_at,
    imagined_messages,
    pose_matrices,
    pose_message,
)
from xwam_ros.joint_state_store import on_backward_time_jump
from xwam_ros.node_support import Param, declare_parameters, run_node
from xwam_ros.observation import Observation, ObservationAssembler, ObservationRefusedError
from xwam_ros.policy_loader import build_policy
from xwam_ros.run_state import RunState

PARAMS = (
    Param("robot_config", "", "robot configuration YAML (config/robots/*.yaml)"),
    Param("cameras_config", "", "camera setup YAML (config/cameras/*.yaml)"),
    Param("model_config", "", "model configuration YAML (config/model/*.yaml)"),
    Param("instruction", "", "initial instruction; empty: the model config's"),
    Param("autostart", True, "start decoding as soon as the node is up"),
    Param(
        "decode_period",
        0.0,
        "seconds between decodes without a request; 0: only on "
        "requests from the executor (and the first chunk after start)",
    ),
    Param("chunk_request_topic", "/xwam_executor/chunk_request", "ChunkRequest topic"),
    Param("retry_period", 0.1, "seconds before an observation is tried again after a refusal"),
    Param("status_period", 0.5, "seconds between PolicyStatus messages"),
    Param("publish_imagination", True, "publish the imagined future for RViz"),
    Param(
        "warm_up",
        True,
        "before the first observation, decode and imagine a blank one (unpublished): the "
        "first calls are slow, and the first imagination is then planned with measured "
        "piece durations",
    ),
)
WORKER_THREAD = "xwam_policy"  # the one thread that touches the policy
KEPT_CHUNKS = 4  # published chunks kept for continuing: the executor runs one of the latest
# How many recent decodes and pieces of each kind the imagination's planning looks at (it
# plans with the slowest of them: `_why_piece_runs`).
RECENT_DECODES, RECENT_PIECES = 20, 16


@dataclass
class Imagination:
    """An imagined future in progress: the pieces still to run (`PolicyRun.imagine_steps`,
    then its publication) and what the publication needs of the cycle that began it (the
    run's epoch, the policy's chunk with its predicted proprio, the observation, the arm's
    joints then, and the cycle's start on `time.perf_counter`)."""

    steps: Generator[str, None, ImaginedFuture]
    epoch: int
    chunk: PolicyChunk
    obs: Observation
    arm_q: np.ndarray
    started: float
    next_piece: str = "start"  # the kind of piece the next advance runs
    future: ImaginedFuture | None = None  # once the policy's pieces are done


class ModelNode(Node):
    """Runs the X-WAM policy on the robot's observations (see the module docstring).

    `node_options` go to rclpy's Node (a test's `context`, `parameter_overrides`).
    """

    def __init__(self, **node_options):
        super().__init__("xwam_model", **node_options)
        p = self.p = declare_parameters(self, PARAMS)
        for key in ("robot_config", "cameras_config", "model_config"):
            if not p[key]:
                raise ValueError(f"parameter {key} is required (a YAML path)")
        self.robot = load_robot_config(p["robot_config"])
        self.setup = load(CameraSetup, p["cameras_config"])
        self.model_config = load_model_config(p["model_config"])
        self.get_logger().info(
            f"loading the policy of {p['model_config']} ({self.model_config.description})"
        )
        self.policy = build_policy(self.model_config, source=p["model_config"])
        self._check_compatible()
        self.kinematics = RobotKinematics(self.robot)
        self.gripper_joints = [
            list(arm.gripper.joints) if arm.gripper else [] for arm in self.robot.arms
        ]
        all_joints = self.robot.joint_names + [j for js in self.gripper_joints for j in js]
        self.assembler = ObservationAssembler(self.setup, all_joints)
        self.model_id = self.model_config.checkpoint or f"preset:{self.model_config.preset}"

        # Fixed facts of the policy, read here once so that after construction only the
        # worker touches the policy object.
        self._has_depth_branch = self.policy.model.config.has_depth_branch
        self._proprio_quaternion = self.policy.settings.proprio_quaternion
        self._action_steps = self.policy.settings.action_steps
        self._num_actions = self.policy.num_actions
        self._view_names = self.policy.view_names
        self._period_ns = round(self.robot.control_period * 1e9)  # one action step
        # Prefix-conditioned decoding: how many leading steps a chunk may take from the one
        # being executed (0: off), the chunks published (worker-owned) and the chunk the
        # executor runs (from its requests).
        trained = self.policy.settings.max_action_prefix
        self._max_prefix = trained if self.model_config.continue_chunks else 0
        if self.model_config.continue_chunks and not trained:
            self.get_logger().info(
                "continue_chunks: off, the checkpoint was not trained with action prefixes"
            )
        self.continuation = ChunkContinuation(self.robot, self.kinematics)
        self._frames = self.kinematics.frames  # the checkpoint's (a release's embodiment)
        self._maps_actions = (
            self.robot.action_space.type == "ee_delta" and not self._frames.is_identity
        )
        self._published: dict[int, PublishedChunk] = {}
        self._executing = (0, 0.0)  # (chunk id, expected decode latency s) of the last request

        self.run_state = RunState(autostart=p["autostart"])
        # Owned by the worker (changed through `_commands`), read by ~/status.
        self.instruction = p["instruction"] or self.model_config.instruction
        self.depth_enabled = self.policy.settings.run_depth
        self.chunk_id = 0
        self.chunks_rejected = 0
        self.last_reason = ""
        self.latency = {"prepare": 0.0, "decode": 0.0, "imagine": 0.0}
        # Imaginations (worker-owned): counts, the one in progress, the chunk it began with.
        self.imaginations = {"completed": 0, "abandoned": 0}
        self._imagination: Imagination | None = None
        self._imagined_chunk: int | None = None
        # perf_counter when the executor's request made the next decode due (None: not by a
        # request); the decode latency reported counts from there, less the pieces that
        # fitted meanwhile (`_fitted_since_request`).
        self._requested_at: float | None = None
        # When the chunk the executor executes ends (node-clock ns): predicted from the chunk
        # just published, then as its request says; None while decodes are not requested
        # and while the executor executes nothing.
        # Imagination pieces run while the next decode can still land before it.
        self._executing_end_ns: int | None = None
        # Recent durations of each kind of piece ("pass", "rgb", ...), each decode's compute.
        self._piece_seconds: dict[str, deque[float]] = {}
        self._decode_seconds: deque[float] = deque(maxlen=RECENT_DECODES)
        # Pieces of the imagination in progress that fitted since the last chunk was
        # published, and pieces owed (to run whether they fit or not) since then.
        self._fitted_since_chunk = 0
        self._owed_pieces = 0
        # Seconds of fitted pieces run since the pending decode was requested.
        self._fitted_since_request = 0.0
        self._executor_requests = False  # whether an executor has asked for a decode
        self.warnings: list[str] = []
        self._calibration_warnings: list[str] = []
        self._depth_warning = ""  # set while the imagined depth has no metric meaning
        self._retry_at_ns: int | None = None  # at most one pending retry, node clock
        self._waiting_for_input = True  # no observation taken yet, or the last refused

        # Commands for the worker: functions it calls, in order, before its next cycle.
        self._commands: queue.Queue[Callable[[], None]] = queue.Queue()
        # Held while the worker publishes and while a service invalidates the run in
        # progress; `_epoch` counts those invalidations (reset, time jump), both under it.
        self._publish_lock = threading.Lock()
        self._epoch = 0
        self._decode_due = threading.Event()
        self._shutdown = threading.Event()

        self._make_interfaces()
        self._time_jumps = on_backward_time_jump(self.get_clock(), self._on_time_jump)
        self._worker = threading.Thread(target=self._work, name=WORKER_THREAD, daemon=True)
        self._worker.start()
        if self.run_state.running:
            self._decode_due.set()  # the first chunk does not wait for a request
        self.get_logger().info(
            f"ready: {len(self.setup.views)} views {self._view_names}, action space "
            f"{self.robot.action_space.type}, {self._num_actions} actions per chunk"
        )

    # ------------------------------------------------------------------ setup

    def _check_compatible(self) -> None:
        model = self.policy.model.config
        names = tuple(v.name for v in self.setup.ordered_views)
        if len(names) != model.num_views:
            raise ValueError(
                f"camera setup {self.p['cameras_config']} has {len(names)} views; "
                f"the model expects {model.num_views}"
            )
        if self.policy.settings.view_names and self.policy.settings.view_names != names:
            raise ValueError(
                f"camera setup views in slot order {names} differ from the "
                f"checkpoint's view order {self.policy.settings.view_names}"
            )
        if model.action_dim not in self.robot.action_widths:
            raise ValueError(
                f"the model's action_dim is {model.action_dim}; robot "
                f"'{self.robot.name}' in {self.robot.action_space.type} takes "
                f"{' or '.join(map(str, self.robot.action_widths))}"
            )
        if model.proprio_dim != self.robot.proprio_dim:
            raise ValueError(
                f"the model's proprio_dim is {model.proprio_dim}; robot "
                f"'{self.robot.name}' gives {self.robot.proprio_dim}"
            )
        if self.setup.base_frame != self.robot.frame_id:
            raise ValueError(
                f"camera extrinsics are in {self.setup.base_frame} but the robot "
                f"frame is {self.robot.frame_id}"
            )

    def _make_interfaces(self) -> None:
        for view in self.setup.views:
            self.create_subscription(
                Image,
                view.image_topic,
                lambda m, v=view.name: self.assembler.on_image(v, m, self._now_ns()),
                qos_profile_sensor_data,
            )
            self.create_subscription(
                CameraInfo,
                view.camera_info_topic,
                lambda m, v=view.name: self.assembler.on_camera_info(v, m),
                qos_profile_sensor_data,
            )
        self.create_subscription(
            JointState,
            self.robot.joint_states_topic,
            lambda m: self.assembler.on_joint_state(m, self._now_ns()),
            qos_profile_sensor_data,
        )
        self.create_subscription(
            ChunkRequest, self.p["chunk_request_topic"], self._on_chunk_request, 10
        )
        self.chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", 10)
        self.status_pub = self.create_publisher(PolicyStatus, "~/status", 10)
        frames = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pubs = {}
        for view in self.setup.views:
            base = f"~/imagined/{view.name}"
            self.image_pubs[view.name] = (
                self.create_publisher(Image, f"{base}/rgb", frames),
                self.create_publisher(Image, f"{base}/depth", frames),
                self.create_publisher(CameraInfo, f"{base}/camera_info", frames),
            )
        self.cloud_pub = self.create_publisher(PointCloud2, "~/imagined/points", 2)
        self.path_pub = self.create_publisher(MarkerArray, "~/imagined/ee_path", 2)
        self.ee_poses_pub = self.create_publisher(PoseArray, "~/imagined/ee_poses", 2)
        self.create_service(Trigger, "~/start", self._srv_start)
        self.create_service(Trigger, "~/stop", self._srv_stop)
        self.create_service(Trigger, "~/reset", self._srv_reset)
        self.create_service(Trigger, "~/emergency_stop", self._srv_estop)
        self.create_service(SetInstruction, "~/set_instruction", self._srv_instruction)
        self.create_service(SetBool, "~/set_depth_branch", self._srv_depth)
        self.create_timer(self.p["status_period"], self._publish_status)
        if self.p["decode_period"] > 0:
            self.create_timer(self.p["decode_period"], self._decode_due.set)

    # ------------------------------------------------------------------ services
    # These run on the executor thread: they read and change the run state, queue commands
    # for the worker, and never touch the policy nor wait for the worker.

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _invalidate(self, command: Callable[[], None]) -> None:
        """Queue `command` and end the run in progress: nothing more of it is published
        (its imagination stops at the next pass), and the worker applies `command` first."""
        with self._publish_lock:
            self._epoch += 1
            self._commands.put(command)

    def _on_time_jump(self, reason: str) -> None:
        """Time went back: frames, joint histories and a pending retry are of another time,
        and so is the run in progress (its stamps)."""
        self._invalidate(partial(self._apply_time_jump, reason))

    def _srv_start(self, _request, response):
        response.success, response.message = self.run_state.start()
        if response.success:
            self._decode_due.set()  # the first chunk does not wait for a request
        return response

    def _srv_stop(self, _request, response):
        # Under the publish lock: a publication under way ends first, the next sees the stop.
        with self._publish_lock:
            response.success, response.message = self.run_state.stop()
        return response

    def _srv_estop(self, _request, response):
        with self._publish_lock:
            self.run_state.emergency_stop()
        self._commands.put(partial(self._apply_note, "emergency stop"))
        self.get_logger().warning("EMERGENCY STOP: nothing is published until ~/reset, ~/start")
        response.success = True
        response.message = "e-stopped (latched until ~/reset; then ~/start)"
        return response

    def _srv_reset(self, _request, response):
        # Cleared at once, so that a `start` right after the answer is accepted; the node
        # stays paused (RunState.reset) until then.
        self.run_state.reset()
        self._invalidate(self._apply_reset)
        response.success = True
        response.message = (
            "reset: paused until ~/start; counters, inputs and the policy are reset before "
            "the next decode"
        )
        return response

    def _srv_instruction(self, request, response):
        text = request.instruction.strip()
        if self.run_state.estopped:
            response.success, response.message = False, "e-stopped: call reset first"
        elif not text:
            response.success, response.message = False, "refused: the instruction is empty"
        else:
            self._commands.put(partial(self._apply_instruction, text))
            response.success, response.message = True, f"instruction set: {text}"
        return response

    def _srv_depth(self, request, response):
        if request.data and not self._has_depth_branch:
            response.success, response.message = False, "this model has no depth branch"
            return response
        self._commands.put(partial(self._apply_depth, bool(request.data)))
        response.success = True
        response.message = f"depth branch {'on' if request.data else 'off'}"
        return response

    def _publish_status(self) -> None:
        # The counters and settings are the worker's; each is read whole (one attribute, or
        # one copy of the refusal counts), so a status may be a cycle behind, never torn.
        refusals = dict(self.assembler.refusals)
        kinds = sorted(refusals)
        msg = PolicyStatus(
            state=self.run_state.state(can_run=not self._waiting_for_input),
            instruction=self.instruction,
            model_id=self.model_id,
            depth_branch_enabled=self.depth_enabled,
            chunks_published=self.chunk_id,
            observations_refused=sum(refusals.values()),
            refusal_kinds=kinds,
            refusal_counts=[refusals[k] for k in kinds],
            chunks_rejected=self.chunks_rejected,
            imaginations_completed=self.imaginations["completed"],
            imaginations_abandoned=self.imaginations["abandoned"],
            last_refusal_reason=self.last_reason,
            warnings=list(self.warnings),
            last_prepare_latency=self.latency["prepare"],
            last_decode_latency=self.latency["decode"],
            last_imagine_latency=self.latency["imagine"],
        )
        msg.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(msg)

    # ------------------------------------------------------------------ worker commands
    # Called by the worker only, between cycles (`_apply_commands`).

    def _apply_reset(self) -> None:
        self._drop_imagination(count=False)
        self.policy.reset()
        self._published.clear()
        self.imaginations = {"completed": 0, "abandoned": 0}
        self._imagined_chunk = None
        self._executing_end_ns = None
        self.chunk_id = self.chunks_rejected = 0
        self.last_reason = ""
        self._retry_at_ns = None
        self._waiting_for_input = True
        self.assembler.refusals.clear()
        self.assembler.clear()

    def _apply_time_jump(self, reason: str) -> None:
        self._drop_imagination()  # its stamps are of the other timeline
        self.assembler.clear()
        self._published.clear()
        self._retry_at_ns = None
        self._waiting_for_input = True
        self.get_logger().warning(f"{reason}: camera frames and joint histories cleared")

    def _apply_instruction(self, text: str) -> None:
        self.instruction = text

    def _apply_depth(self, enabled: bool) -> None:
        self.depth_enabled = enabled

    def _apply_note(self, reason: str) -> None:
        self.last_reason = reason

    # ------------------------------------------------------------------ the cycle

    def _current(self, epoch: int) -> bool:
        """Whether the run begun at `epoch` may still publish: running, not shut down, and
        neither reset nor time-jumped since."""
        with self._publish_lock:
            return self._may_publish_locked(epoch)

    def _may_publish_locked(self, epoch: int) -> bool:
        """`_current`, for a caller that holds `_publish_lock`."""
        return self._epoch == epoch and self.run_state.running and not self._shutdown.is_set()

    def _apply_commands(self) -> int:
        """Apply every queued command, in order; the epoch the next cycle runs in.

        Taken under the publish lock with the epoch, so that a command queued later bumps
        the epoch and invalidates that cycle, and one queued earlier is applied before it.
        """
        commands = []
        with self._publish_lock:
            epoch = self._epoch
            while True:
                try:
                    commands.append(self._commands.get_nowait())
                except queue.Empty:
                    break
        for command in commands:
            try:
                command()
            except Exception as exc:  # a failed command must not kill the worker; say why
                self.last_reason = f"command failed: {exc}"
                self.get_logger().error(self.last_reason)
        return epoch

    def _work(self) -> None:
        if self.p["warm_up"]:
            self._warm_up()
        while not self._shutdown.is_set():
            # With an imagination in progress there may be work: only look for a decode.
            due = self._decode_due.wait(timeout=0.0 if self._imagination else 0.02)
            epoch = self._apply_commands()  # may drop the imagination (reset, time jump)
            job = self._imagination
            why = None if job is None else self._why_piece_runs(job.next_piece, due)
            if why is not None:
                self._advance_imagination(why)  # a due decode stays due
                continue
            if not due and not self._retry_due():
                if job is not None:
                    self._decode_due.wait(timeout=0.02)  # the decode comes first
                continue
            self._decode_due.clear()
            requested_at, self._requested_at = self._requested_at, None
            fitted, self._fitted_since_request = self._fitted_since_request, 0.0
            self._retry_at_ns = None
            if not self._current(epoch):
                continue
            try:
                waited = None if requested_at is None else time.perf_counter() - requested_at
                self._cycle(epoch, None if waited is None else max(0.0, waited - fitted))
            except Exception as exc:  # a failed cycle must not kill the worker; say why
                if self._shutdown.is_set() or not self.context.ok():
                    return  # publishing raced the shutdown: nothing failed
                self.chunks_rejected += 1
                self.last_reason = f"cycle failed: {exc}"
                self.get_logger().error(self.last_reason)

    def _warm_up(self) -> None:
        """One decode and one imagination of a blank observation (black views, the arms in the
        middle of their joint ranges, grippers open), nothing published or counted, before
        the first cycle (worker thread). Torch's first calls are slower than later ones
        (allocation, kernel selection), and an imagination's pieces are planned with the
        durations measured before (`_why_piece_runs`): without this the first imagination would
        be planned blind and could hold back the decodes after it."""
        started = time.perf_counter()
        try:
            run = self._begin_blank()
            run.decode_actions()
            self._decode_seconds.append(time.perf_counter() - started)
            steps = run.imagine_steps(run_depth=self.depth_enabled)
            piece = next(steps, None)  # the generator started: no work yet
            while piece is not None and not self._shutdown.is_set():
                began = time.perf_counter()
                following = next(steps, None)  # runs `piece`
                self._note_piece(piece, time.perf_counter() - began)
                piece = following
        except Exception as exc:  # only the estimates are lost; the node works without them
            self.get_logger().warning(f"warm-up failed, continuing without it: {exc}")
            return
        self.get_logger().info(
            f"warmed up in {time.perf_counter() - started:.1f} s: decode "
            f"{self._decode_seconds[-1]:.2f} s, imagination pieces {self._piece_summary()}"
        )

    def _begin_blank(self) -> PolicyRun:
        """The policy begun on a blank observation (black views, the arms in the middle of
        their joint ranges, grippers open) with its own noise, leaving the policy's generator
        as it was (worker thread)."""
        settings = self.policy.settings
        arm_q = np.array([(j.lower + j.upper) / 2 for a in self.robot.arms for j in a.joints])
        grippers = [np.array(a.gripper.open_positions) for a in self.robot.arms]
        proprio = self.kinematics.proprio(arm_q, grippers, self._proprio_quaternion)
        black = np.zeros((settings.height, settings.width, 3), dtype=np.uint8)
        return self.policy.begin(
            PolicyObservation([black] * len(self._view_names), proprio, self.instruction),
            seed=settings.seed,
        )

    def _piece_summary(self) -> str:
        """The longest recent imagination piece of each kind, for the log."""
        return ", ".join(
            f"{kind} {max(times):.2f} s" for kind, times in sorted(self._piece_seconds.items())
        )

    def _retry_due(self) -> bool:
        retry_at = self._retry_at_ns
        return retry_at is not None and self._now_ns() >= retry_at

    def _refuse(self, reason: str) -> None:
        """Log a refusal and schedule the one retry (on the node's clock, so use_sim_time
        holds); a retry already pending is not duplicated."""
        self.last_reason = reason
        self._waiting_for_input = True
        self.get_logger().warning(f"observation refused: {reason}", throttle_duration_sec=2.0)
        if self._retry_at_ns is None:
            self._retry_at_ns = self._now_ns() + round(self.p["retry_period"] * 1e9)

    def _cycle(self, epoch: int, waited: float | None = None) -> None:
        """Observe, decode, publish the chunk and maybe begin an imagination (module
        docstring, 1-4). `waited`: seconds a requested decode was held back by imagination
        pieces that did not fit (None: the decode was not requested)."""
        started = time.perf_counter()
        try:
            obs = self.assembler.take(self._now_ns())
        except ObservationRefusedError as refusal:
            self._refuse(refusal.reason)
            return
        self._note_calibration(obs.uncalibrated)
        q = obs.joint_positions
        arm_q = q[: len(self.robot.joint_names)]
        offsets = np.cumsum([len(self.robot.joint_names)] + [len(g) for g in self.gripper_joints])
        gripper_q = [q[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        # The sign convention of the checkpoint's proprio quaternions (its embodiment settings).
        proprio = self.kinematics.proprio(arm_q, gripper_q, self._proprio_quaternion)
        grippers = tuple(
            float(proprio[proprio_block(a)][PROPRIO_GRIPPER]) for a in range(len(self.robot.arms))
        )
        prefix = self._continuation_prefix(obs.stamp_ns, arm_q, grippers)
        try:
            run = self.policy.begin(
                PolicyObservation(list(obs.images), proprio, self.instruction),
                action_prefix=None if prefix is None else self._to_model_frames(prefix),
            )
        except ObservationError as exc:
            self.assembler.refusals["policy"] += 1
            self._refuse(f"the policy refused the observation: {exc}")
            return
        self._waiting_for_input = False
        chunk = run.decode_actions()
        self.latency["prepare"] = chunk.prepare_s
        self._decode_seconds.append(time.perf_counter() - started)
        # The latency the executor plans its next request with: the decode and what held it
        # back past the executing chunk's time, not the pieces that fitted before it (they
        # ran because the chunk still lands in time; counted, the executor asked ever
        # earlier, and chunks came every 0.5 s wherever no imagination was in progress).
        self.latency["decode"] = self._decode_seconds[-1] + (waited or 0.0)
        if not np.isfinite(chunk.actions).all():
            self.chunks_rejected += 1
            self.last_reason = "the model produced NaN/Inf actions; nothing was published"
            self.get_logger().error(self.last_reason)
            return
        actions = self._to_robot_frames(chunk.actions)
        with self._publish_lock:
            if not self._may_publish_locked(epoch):
                return  # stopped, e-stopped or reset while decoding: publish nothing
            self._publish_chunk(actions, obs.stamp_ns, 0 if prefix is None else len(prefix))
            self._settle_pieces_at_chunk()
            self._remember(actions, obs.stamp_ns, arm_q, grippers)
        if self._executing_end_ns is not None:
            left = (self._executing_end_ns - self._now_ns()) * 1e-9
            self.get_logger().debug(
                f"chunk {self.chunk_id} published {left:.3f} s before the executing one ends "
                f"(held back {waited or 0.0:.3f} s, decoded in {self._decode_seconds[-1]:.3f} s)"
            )
        # The chunk the executor will execute (until its request says otherwise).
        self._executing_end_ns = (
            obs.stamp_ns + actions.shape[0] * self._period_ns if self._executor_requests else None
        )
        if self._imagination_due():
            self._imagination = Imagination(
                run.imagine_steps(run_depth=self.depth_enabled), epoch, chunk, obs, arm_q, started
            )
            self._imagined_chunk = self.chunk_id

    def _note_calibration(self, uncalibrated: dict[str, str]) -> None:
        """Say (once per change, and in ~/status) which views have no imagined cloud."""
        self._calibration_warnings = [
            f"view '{view}': imagined point cloud off ({why})"
            for view, why in sorted(uncalibrated.items())
        ]
        self._update_warnings()

    def _note_depth_unit(self, depth_unit: str) -> None:
        """Say (once, and in ~/status while it holds) that the imagined depth is a release's
        8-bit depth video: published as images, with no point cloud."""
        self._depth_warning = (
            ""
            if depth_unit == "m"
            else "imagined depth is the checkpoint's 8-bit depth video (no metric depth range "
            "configured): published as 8-bit images, imagined point cloud off"
        )
        self._update_warnings()

    def _update_warnings(self) -> None:
        warnings = list(self._calibration_warnings)
        if self._depth_warning:
            warnings.append(self._depth_warning)
        if warnings != self.warnings:
            for line in warnings:
                if line not in self.warnings:  # each new one logged once
                    self.get_logger().warning(line)
            self.warnings = warnings

    def _to_robot_frames(self, actions: np.ndarray) -> np.ndarray:
        """The policy's actions [N, A] in the robot's base frame, as ActionChunk carries them:
        ee_delta actions of a checkpoint trained in other frames (`action_space.frames`) mapped
        by `embodiment.actions_to_robot`; anything else as it is."""
        if not self._maps_actions:
            return actions
        return actions_to_robot(actions, self._frames, self.robot.action_space.rotation_delta_frame)

    def _to_model_frames(self, actions: np.ndarray) -> np.ndarray:
        """The inverse of `_to_robot_frames` (a continuation prefix, given to the policy)."""
        if not self._maps_actions:
            return actions
        return actions_to_model(actions, self._frames, self.robot.action_space.rotation_delta_frame)

    def _continuation_prefix(
        self, stamp_ns: int, arm_q: np.ndarray, grippers: tuple[float, ...]
    ) -> np.ndarray | None:
        """The leading actions that continue the chunk being executed (module docstring), or
        None (off, nothing executing that this node published, or no step due before the
        new chunk can take over)."""
        chunk_id, expected_latency = self._executing
        current = self._published.get(chunk_id)
        if not self._max_prefix or current is None:
            return None
        # The executor keeps the steps due at least min_lead_time after the chunk arrives.
        latency = (expected_latency or self.latency["decode"]) + self.robot.timing.min_lead_time
        takeover_ns = self._now_ns() + round(latency * 1e9)
        steps = prefix_steps(stamp_ns, takeover_ns, current.step_period_ns, self._max_prefix)
        return self.continuation.prefix(current, stamp_ns, steps, arm_q, grippers)

    def _remember(
        self, actions: np.ndarray, stamp_ns: int, arm_q: np.ndarray, grippers: tuple[float, ...]
    ) -> None:
        """Keep the chunk just published (the last few) for the chunks that continue it."""
        self._published[self.chunk_id] = PublishedChunk(
            self.chunk_id,
            stamp_ns,
            self._period_ns,
            np.array(actions, dtype=np.float64),
            np.array(arm_q, dtype=np.float64),
            grippers,
        )
        for old in [k for k in self._published if k <= self.chunk_id - KEPT_CHUNKS]:
            del self._published[old]

    def _publish_chunk(self, actions: np.ndarray, stamp_ns: int, prefix_steps: int) -> None:
        self.chunk_id += 1
        msg = ActionChunk(
            chunk_id=self.chunk_id,
            action_space=self.robot.action_space.type,
            action_dim=actions.shape[1],
            num_steps=actions.shape[0],
            decode_latency=self.latency["decode"],
            denoising_steps=self._action_steps,
            model_id=self.model_id,
            instruction=self.instruction,
            prefix_steps=prefix_steps,
        )
        msg.header = header_at(stamp_ns, self.robot.frame_id)
        msg.step_period = Duration(sec=self._period_ns // 10**9, nanosec=self._period_ns % 10**9)
        msg.actions = actions.astype(np.float32).ravel()
        if self.robot.action_space.type != ActionChunk.ACTION_SPACE_EE_DELTA:
            msg.joint_names = list(self.robot.joint_names)
        self.chunk_pub.publish(msg)

    def _on_chunk_request(self, msg: ChunkRequest) -> None:
        """The executor asks for the next decode: note which chunk it executes and when it
        asked, then mark the decode due."""
        self._executing = (msg.current_chunk_id, max(0.0, msg.expected_decode_latency))
        self._executor_requests = True
        # Nothing executing (at start, after a refusal, a chunk run out): the decode first.
        left = msg.time_left
        self._executing_end_ns = self._now_ns() + round(left * 1e9) if left > 0 else None
        if not self._decode_due.is_set():
            self._requested_at = time.perf_counter()
        self._decode_due.set()

    def _imagination_due(self) -> bool:
        """Whether the chunk just published begins an imagination (module docstring, 4)."""
        n = self.model_config.imagine_every_n_chunks
        if not n or not self.p["publish_imagination"] or self._imagination is not None:
            return False
        return self._imagined_chunk is None or self.chunk_id - self._imagined_chunk >= n

    def _settle_pieces_at_chunk(self) -> None:
        """A chunk was just published: the pieces the imagination in progress fell short of
        `imagination_pieces_per_chunk` since the chunk before are owed now (module docstring,
        4). Only fitted pieces count: owed ones ran because nothing fitted, so counting them
        would let every other chunk go without a piece where nothing ever fits."""
        wanted = self.model_config.imagination_pieces_per_chunk
        in_progress = self._imagination is not None
        self._owed_pieces = max(0, wanted - self._fitted_since_chunk) if in_progress else 0
        self._fitted_since_chunk = 0

    def _why_piece_runs(self, piece: str, decode_due: bool) -> str | None:
        """Why the next imagination piece runs now (module docstring, 4), None when it waits:
        "owed" while pieces are owed since the last chunk (`_settle_pieces_at_chunk`);
        "fits" while the chunk being executed leaves time for the piece (the slowest of the
        recent ones of its kind), then the decode (of the recent decodes) and the robot's
        lead time plus a control period, even when the decode is due; "delay" past that,
        while a requested decode has waited less than the model's `imagination_delay` (so it
        is held back at most that and one piece, also while the executor executes nothing:
        the delay is what the user chose to pay); "idle" while no decode is due and no
        executing chunk is known (without an executor's requests, or while it executes
        nothing)."""
        if self._owed_pieces > 0:
            return "owed"  # however little time the decodes leave, the imagination goes on
        end_ns = self._executing_end_ns
        if end_ns is None and not decode_due:
            return "idle"
        if end_ns is not None:
            # The slowest recent ones: an underestimate makes the decode land after the
            # executing chunk ends (the arm stops). Pieces are small (a block of the VAE
            # decode), so an outlier costs only the pieces its excess displaces, and owed
            # pieces keep an imagination going; with pieces of a whole latent frame an
            # outlier kept every piece from fitting for a window.
            took = max(self._piece_seconds.get(piece, ()), default=0.0)
            decode = max(self._decode_seconds, default=self._executing[1])
            lead = self.robot.timing.min_lead_time + self.robot.control_period
            if self._now_ns() + (took + decode + lead) * 1e9 <= end_ns:
                return "fits"
        requested_at = self._requested_at
        if not decode_due or requested_at is None:
            return None
        if time.perf_counter() - requested_at < self.model_config.imagination_delay:
            return "delay"
        return None

    def _drop_imagination(self, count: bool = True) -> None:
        """End the imagination in progress unpublished (counted as abandoned with `count`)."""
        job, self._imagination = self._imagination, None
        if job is None:
            return
        job.steps.close()
        if count:
            self.imaginations["abandoned"] += 1

    def _advance_imagination(self, why: str) -> None:
        """Run the next piece of the imagination in progress (the policy's pieces, then its
        publication), counted as `why` it runs (`_why_piece_runs`: an owed piece pays what
        is owed, any other is one that fitted; only a "fits" one is planned to leave a
        requested decode time enough), and note how long that kind of piece took."""
        job = self._imagination
        if not self._current(job.epoch):
            self._drop_imagination()  # stopped, e-stopped, reset, a time jump
            return
        piece, started = job.next_piece, time.perf_counter()
        if piece != "start":  # (starting the generator is no work)
            if why == "owed":
                self._owed_pieces -= 1
            else:
                self._fitted_since_chunk += 1
        if piece == "publish":
            self._imagination = None
            self._publish_imagination(job, job.future)
        else:
            try:
                job.next_piece = next(job.steps)
            except StopIteration as finished:
                job.future, job.next_piece = finished.value, "publish"
            except Exception as exc:  # a failed imagination must not kill the worker; say why
                self._drop_imagination()
                self.last_reason = f"imagination failed: {exc}"
                self.get_logger().error(self.last_reason)
                return
        ended = time.perf_counter()
        requested_at = self._requested_at
        if why == "fits" and requested_at is not None:
            self._fitted_since_request += max(0.0, ended - max(started, requested_at))
        took = ended - started
        self._note_piece(piece, took)
        self.get_logger().debug(f"imagination piece {piece} ({why}): {took:.3f} s")

    def _note_piece(self, piece: str, seconds: float) -> None:
        """Keep how long a piece of this kind took, for planning the next (`_why_piece_runs`)."""
        self._piece_seconds.setdefault(piece, deque(maxlen=RECENT_PIECES)).append(seconds)

    def _publish_imagination(self, job: Imagination, future: ImaginedFuture) -> None:
        """The imagined images, cloud, path and poses of a finished imagination, unless its
        run ended meanwhile (then counted as abandoned)."""
        chunk, obs, arm_q, epoch = job.chunk, job.obs, job.arm_q, job.epoch
        frames = future.rgb.shape[1]
        frame_period = self._num_actions / frames * self.robot.control_period
        geometry = {}
        for index, view in enumerate(self.setup.ordered_views):
            k = obs.intrinsics[index]
            k = None if k is None else future.crops[index].intrinsics(k)
            poses = self._camera_poses(view, arm_q, chunk.proprio, frames)
            geometry[view.name] = ViewGeometry(view.optical_frame, k, poses)
        if future.depth is not None:
            self._note_depth_unit(future.depth_unit)
        msgs = imagined_messages(
            view_names=future.view_names,
            rgb=future.rgb,
            depth=future.depth,
            depth_unit=future.depth_unit,
            geometry=geometry,
            observation_stamp_ns=obs.stamp_ns,
            frame_period_s=frame_period,
            base_frame=self.robot.frame_id,
            ee_positions=chunk.proprio[:, :3],
            cloud_stride=self.model_config.cloud_stride,
        )
        ee_poses = self._ee_pose_array(chunk.proprio, arm_q, obs.stamp_ns)
        with self._publish_lock:
            # The last piece may have run before a stop came: what is late is not published.
            if not self._may_publish_locked(epoch):
                self.imaginations["abandoned"] += 1
                return
            for name, (rgb_pub, depth_pub, info_pub) in self.image_pubs.items():
                for f in range(frames):
                    info_pub.publish(msgs.camera_info[name][f])
                    rgb_pub.publish(msgs.rgb[name][f])
                    if name in msgs.depth:
                        depth_pub.publish(msgs.depth[name][f])
            if msgs.cloud is not None:
                self.cloud_pub.publish(msgs.cloud)
            if msgs.ee_path is not None:
                self.path_pub.publish(msgs.ee_path)
            self.ee_poses_pub.publish(ee_poses)
        self.imaginations["completed"] += 1
        self.latency["imagine"] = time.perf_counter() - job.started
        spanned = self.chunk_id - self._imagined_chunk
        self.get_logger().info(
            f"imagination {self.imaginations['completed']} published "
            f"{self.latency['imagine']:.1f} s after its decode began, {spanned} chunks later "
            f"(longest recent piece of each kind: {self._piece_summary()})"
        )

    def _predicted_ee_poses(self, proprio: np.ndarray, arm: int, arm_q: np.ndarray) -> np.ndarray:
        """The end-effector poses [F, 4, 4] of `arm` in the predicted future proprio (per arm:
        x y z, qw qx qy qz, gripper)."""
        block = proprio[:, proprio_block(arm)]
        now = self.kinematics.ee_poses(arm_q)[arm].homogeneous
        poses = pose_matrices(
            block[:, PROPRIO_POSITION],
            block[:, PROPRIO_QUATERNION],
            fallback=pose_to_model_matrix(now, self._frames),
        )
        # Proprio is in the model's frames (`RobotKinematics.proprio`); the path, the robot's.
        position, rotation = pose_to_robot(poses[:, :3, 3], poses[:, :3, :3], self._frames)
        poses[:, :3, 3], poses[:, :3, :3] = position, rotation
        return poses

    def _camera_poses(
        self, view, arm_q: np.ndarray, proprio: np.ndarray, frames: int
    ) -> np.ndarray:
        """base <- optical frame of `view` at each imagined frame [F, 4, 4].

        A fixed camera stays where the setup puts it. A camera on a link (the wrist) follows
        the predicted end-effector poses, which the model imagines one per video frame; when
        the prediction does not cover the frames, the measured pose is held.
        """
        mount = view.extrinsics.matrix()
        parent = view.extrinsics.parent_frame
        if not parent or parent == self.robot.frame_id:
            return np.repeat(mount[None], frames, axis=0)
        link_now = self.kinematics.frame_pose(arm_q, parent)
        if len(proprio) != frames:
            return np.repeat((link_now @ mount)[None], frames, axis=0)
        arm = self.kinematics.arm_of_frame(parent)
        ee_now = self.kinematics.ee_poses(arm_q)[arm].homogeneous
        future = self._predicted_ee_poses(proprio, arm, arm_q)
        return future_link_poses(link_now, ee_now, future) @ mount

    def _ee_pose_array(self, proprio: np.ndarray, arm_q: np.ndarray, stamp_ns: int) -> PoseArray:
        """The predicted end-effector poses of every arm (arm after arm), one per future
        frame, in the base frame, stamped at the observation."""
        msg = PoseArray(header=header_at(stamp_ns, self.robot.frame_id))
        for arm in range(len(self.robot.arms)):
            for pose in self._predicted_ee_poses(proprio, arm, arm_q):
                msg.poses.append(pose_message(pose))
        return msg

    def destroy_node(self):
        self._shutdown.set()
        self._worker.join(timeout=5.0)
        return super().destroy_node()


def pose_to_model_matrix(pose: np.ndarray, frames) -> np.ndarray:
    """A robot-frame pose [4, 4] in the model's frames (`embodiment.pose_to_model`)."""
    position, rotation = pose_to_model(pose[:3, 3], pose[:3, :3], frames)
    mapped = np.eye(4)
    mapped[:3, :3], mapped[:3, 3] = rotation, position
    return mapped


def main(args=None) -> int:
    # The imagined future is tens of MB per publication (a stride-1 cloud alone is 39 MB):
    # without this every copy rclpy makes of it lands in freshly mapped pages (see there).
    keep_large_allocations_resident()
    return run_node(ModelNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
