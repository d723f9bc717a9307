"""ROS messages of the policy loop -> Rerun entities, on one timeline of ROS time.

Every message is logged at the time it depicts on the timeline `time`: a camera frame at its
capture stamp, an imagined frame at the future moment it imagines (the observation's time plus
its offset), a chunk at its observation's time. Scrubbing to a moment shows what the cameras
saw then beside what the model had imagined for it. Rerun adds wall-clock timelines of its own
(`log_time`). Stamps of 0 mean "stamped on receipt" (the suite's rule). Simulated time (small
stamps) is a duration from 0, a real robot's a date.

Entities (all positions in the robot's base frame, metres):

- `observed/<view>/rgb`, `observed/<view>/depth`: the cameras;
- `imagined/<view>/rgb`, `imagined/<view>/depth`: each imagined future, frame by frame;
- `world/imagined_points`: the imagined point cloud, one future step at a time (its `t` field);
- `world/ee_predicted`: the predicted end-effector path of the newest imagination;
- `world/ee_executed`: the end-effector path the arm took (forward kinematics of the joint
  states, the last `EXECUTED_WINDOW_S` seconds); `world/chunk_starts`: where it was when each
  chunk's observation was taken;
- `world/robot`: the arm's links from /tf and /tf_static, as line segments;
- `policy/decode_latency_ms`, `policy/chunk_id`, `policy/imaginations/{completed,abandoned}`:
  time series; `refusals/<node>/<kind>`: refusals counted by kind (model node: observations
  refused; executor: chunks rejected); `log`: one line per chunk (a chunk boundary) and per
  new refusal reason.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import rerun as rr

from xwam_ros.conversions.clouds import unpack_rgb
from xwam_ros.conversions.images import (
    COLOUR_ENCODINGS,
    DEPTH_ENCODINGS,
    ImageFormatError,
    image_to_depth,
    image_to_rgb,
)
from xwam_ros.executor.kinematics import RobotKinematics
from xwam_ros.joint_state_store import NS_PER_S, message_time_ns, stamp_to_ns
from xwam_ros.viewer import topics as kinds
from xwam_ros.viewer.tf_tree import TfTree
from xwam_ros.viewer.topics import ViewerTopics

TIMELINE = "time"
EPOCH_NS = 10**18  # stamps past 2001: a real clock (a date); below: simulated time from 0
EXECUTED_WINDOW_S = 10.0  # seconds of executed end-effector path drawn behind the arm
DRAW_PERIOD_NS = NS_PER_S // 10  # the robot and the executed path: 10 redraws per second
CHUNK_STARTS_KEPT = 50
PREDICTED_COLOR = (255, 128, 0)
EXECUTED_COLOR = (60, 160, 255)
ROBOT_COLOR = (200, 200, 200)


def observed(view: str, what: str) -> str:
    """Entity path of a camera's `rgb` or `depth`."""
    return f"observed/{view}/{what}"


def imagined(view: str, what: str) -> str:
    """Entity path of a view's imagined `rgb` or `depth`."""
    return f"imagined/{view}/{what}"


IMAGINED_POINTS = "world/imagined_points"
EE_PREDICTED = "world/ee_predicted"
EE_EXECUTED = "world/ee_executed"
CHUNK_STARTS = "world/chunk_starts"
ROBOT = "world/robot"
DECODE_LATENCY = "policy/decode_latency_ms"
CHUNK_ID = "policy/chunk_id"
LOG = "log"


def refusals(node: str, kind: str) -> str:
    """Entity path of a node's refusals of one kind (`node`: model or executor)."""
    return f"refusals/{node}/{kind}"


def cloud_fields(msg) -> np.ndarray:
    """The points of a PointCloud2 as a structured array [N] of its float32 fields (x, y, z,
    rgb, t, ... whichever it has); ValueError for a cloud without x, y and z."""
    names = {f.name: f for f in msg.fields}
    if not {"x", "y", "z"} <= names.keys():
        raise ValueError(f"PointCloud2 without x, y, z fields (fields: {sorted(names)})")
    float32 = np.dtype(">f4" if msg.is_bigendian else "<f4")
    wanted = [f for f in msg.fields if f.datatype == 7 and f.count == 1]  # FLOAT32
    dtype = np.dtype(
        {
            "names": [f.name for f in wanted],
            "formats": [float32] * len(wanted),
            "offsets": [f.offset for f in wanted],
            "itemsize": msg.point_step,
        }
    )
    count = msg.width * msg.height
    return np.frombuffer(bytes(msg.data), dtype=dtype, count=count)


class RerunBridge:
    """Logs the policy loop's messages into a Rerun recording (see the module docstring).

    `handle(kind, view, msg, received_ns)` takes any message of a `ViewerTopics` topic, from a
    live subscription or a bag. Not thread-safe: call it from one thread (Rerun's time cursor
    is per thread). `warn` receives one line per problem worth telling (a message that cannot
    be shown), once per topic kind.
    """

    def __init__(
        self,
        recording: rr.RecordingStream,
        topics: ViewerTopics,
        warn: Callable[[str], None] = lambda _line: None,
    ):
        self.rec = recording
        self.robot = topics.robot
        self.base_frame = topics.robot.frame_id
        # The cameras' mounts are on /tf_static too (the sim's); the arm is drawn without them.
        self.camera_frames = {v.optical_frame for v in topics.setup.views}
        self.warn = warn
        self.kinematics = RobotKinematics(topics.robot)
        self.tf = TfTree()
        self.joints: dict[str, float] = {}
        self.executed: deque[tuple[int, np.ndarray]] = deque()
        self.chunk_starts: deque[np.ndarray] = deque(maxlen=CHUNK_STARTS_KEPT)
        self.last_reasons: dict[str, str] = {}
        self.counts: dict[str, int] = {}
        self._epoch: bool | None = None
        self._last_draw = {"robot": -(2**62), "executed": -(2**62)}
        self._warned: set[str] = set()
        self._handlers = {
            kinds.OBSERVED_RGB: lambda m, v, t: self._image(observed(v, "rgb"), m, t),
            kinds.OBSERVED_DEPTH: lambda m, v, t: self._depth(observed(v, "depth"), m, t),
            kinds.IMAGINED_RGB: lambda m, v, t: self._image(imagined(v, "rgb"), m, t),
            kinds.IMAGINED_DEPTH: lambda m, v, t: self._depth(imagined(v, "depth"), m, t),
            kinds.IMAGINED_POINTS: lambda m, v, t: self._cloud(m, t),
            kinds.EE_PATH: lambda m, v, t: self._ee_path(m, t),
            kinds.ACTION_CHUNK: lambda m, v, t: self._chunk(m, t),
            kinds.MODEL_STATUS: lambda m, v, t: self._status("model", m, t),
            kinds.EXECUTOR_STATUS: lambda m, v, t: self._status("executor", m, t),
            kinds.JOINT_STATES: lambda m, v, t: self._joint_states(m, t),
            kinds.TF: lambda m, v, t: self._tf(m, t),
            kinds.TF_STATIC: lambda m, v, t: self.tf.add(m.transforms),
        }

    # --- dispatch and time ------------------------------------------------------------------

    def handle(self, kind: str, view: str, msg, received_ns: int) -> None:
        """Log one message of topic kind `kind` (`xwam_ros.viewer.topics`), received at
        `received_ns` (ROS time, ns; stands in for a zero header stamp)."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        try:
            self._handlers[kind](msg, view, received_ns)
        except (ValueError, ImageFormatError) as exc:
            self._warn_once(kind, f"{kind}{f' ({view})' if view else ''}: not shown: {exc}")

    def _warn_once(self, key: str, line: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.warn(line)

    def _time_ns(self, msg, received_ns: int) -> int:
        header = getattr(msg, "header", None)
        stamp = stamp_to_ns(header.stamp) if header is not None else 0
        return message_time_ns(stamp, received_ns)

    def _at(self, time_ns: int) -> None:
        if self._epoch is None:
            self._epoch = time_ns >= EPOCH_NS
        if self._epoch:
            self.rec.set_time(TIMELINE, timestamp=np.datetime64(int(time_ns), "ns"))
        else:
            self.rec.set_time(TIMELINE, duration=np.timedelta64(int(time_ns), "ns"))

    # --- images -----------------------------------------------------------------------------

    def _image(self, entity: str, msg, received_ns: int) -> None:
        self._at(self._time_ns(msg, received_ns))
        if msg.encoding not in COLOUR_ENCODINGS:
            raise ValueError(f"encoding '{msg.encoding}' is not one of {COLOUR_ENCODINGS}")
        self.rec.log(entity, rr.Image(np.ascontiguousarray(image_to_rgb(msg))))

    def _depth(self, entity: str, msg, received_ns: int) -> None:
        if msg.encoding not in DEPTH_ENCODINGS:
            # A release's 8-bit depth video has no metric range: shown as the image it is.
            self._image(entity, msg, received_ns)
            return
        self._at(self._time_ns(msg, received_ns))
        self.rec.log(entity, rr.DepthImage(np.nan_to_num(image_to_depth(msg), nan=0.0), meter=1.0))

    # --- the imagined future ----------------------------------------------------------------

    def _cloud(self, msg, received_ns: int) -> None:
        """One Points3D per imagined step (the cloud's `t`: seconds after the observation),
        each at the moment it depicts; a cloud without `t` at its stamp."""
        points = cloud_fields(msg)
        start = self._time_ns(msg, received_ns)
        xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float32)
        finite = np.isfinite(xyz).all(axis=1)
        names = points.dtype.names
        colors = unpack_rgb(points["rgb"]) if "rgb" in names else None
        offsets = points["t"] if "t" in names else np.zeros(len(points), np.float32)
        for offset in np.unique(offsets[finite]):
            chosen = finite & (offsets == offset)
            self._at(start + round(float(offset) * NS_PER_S))
            self.rec.log(
                IMAGINED_POINTS,
                rr.Points3D(
                    xyz[chosen], colors=None if colors is None else colors[chosen], radii=0.003
                ),
            )

    def _ee_path(self, msg, received_ns: int) -> None:
        """The predicted path: the LINE_STRIP marker's points (`conversions.markers`)."""
        for marker in msg.markers:
            if marker.type == marker.LINE_STRIP and marker.points:
                path = np.array([[p.x, p.y, p.z] for p in marker.points], dtype=np.float32)
                self._at(self._time_ns(marker, received_ns))
                self.rec.log(
                    EE_PREDICTED,
                    rr.LineStrips3D([path], colors=[PREDICTED_COLOR], radii=0.004),
                )
                return

    # --- the policy loop --------------------------------------------------------------------

    def _chunk(self, msg, received_ns: int) -> None:
        """A chunk boundary: its decode latency, its id and one line, at its observation's
        time; where the end effector was then joins `world/chunk_starts`."""
        time_ns = self._time_ns(msg, received_ns)
        self._at(time_ns)
        self.rec.log(DECODE_LATENCY, rr.Scalars(float(msg.decode_latency) * 1e3))
        self.rec.log(CHUNK_ID, rr.Scalars(float(msg.chunk_id)))
        self.rec.log(
            LOG,
            rr.TextLog(
                f"chunk {msg.chunk_id}: {msg.num_steps}x{msg.action_dim} {msg.action_space}, "
                f"decode {msg.decode_latency * 1e3:.0f} ms, {msg.prefix_steps} prefix steps",
                level=rr.TextLogLevel.INFO,
            ),
        )
        if self.executed:
            self.chunk_starts.append(self.executed[-1][1])
            self.rec.log(
                CHUNK_STARTS,
                rr.Points3D(np.array(self.chunk_starts), colors=[PREDICTED_COLOR], radii=0.008),
            )

    def _status(self, node: str, msg, received_ns: int) -> None:
        """Refusals by kind (cumulative counts) and each new refusal reason as a warning."""
        self._at(self._time_ns(msg, received_ns))
        for kind, count in zip(msg.refusal_kinds, msg.refusal_counts):
            self.rec.log(refusals(node, kind), rr.Scalars(float(count)))
        total = msg.observations_refused if node == "model" else msg.chunks_rejected
        self.rec.log(refusals(node, "total"), rr.Scalars(float(total)))
        if node == "model":
            for name in ("completed", "abandoned"):
                value = getattr(msg, f"imaginations_{name}")
                self.rec.log(f"policy/imaginations/{name}", rr.Scalars(float(value)))
        reason = msg.last_refusal_reason
        if reason and reason != self.last_reasons.get(node):
            self.rec.log(LOG, rr.TextLog(f"{node} refused: {reason}", level=rr.TextLogLevel.WARN))
        self.last_reasons[node] = reason

    # --- the arm ----------------------------------------------------------------------------

    def _joint_states(self, msg, received_ns: int) -> None:
        """Joint positions merged by name (arm and gripper may come apart); the end effector
        by forward kinematics, drawn as the executed path."""
        self.joints.update(zip(msg.name, msg.position))
        names = self.robot.joint_names
        if not all(name in self.joints for name in names):
            return
        time_ns = self._time_ns(msg, received_ns)
        q = np.array([self.joints[name] for name in names])
        position = np.array(self.kinematics.ee_poses(q)[0].translation, dtype=np.float32)
        self.executed.append((time_ns, position))
        while self.executed and self.executed[0][0] < time_ns - EXECUTED_WINDOW_S * NS_PER_S:
            self.executed.popleft()
        if (
            time_ns - self._last_draw["executed"] >= DRAW_PERIOD_NS
            or time_ns < self._last_draw["executed"]
        ):
            self._last_draw["executed"] = time_ns
            self._at(time_ns)
            path = np.array([p for _, p in self.executed])
            self.rec.log(EE_EXECUTED, rr.LineStrips3D([path], colors=[EXECUTED_COLOR], radii=0.003))

    def _tf(self, msg, received_ns: int) -> None:
        """The arm's links from the newest transforms, redrawn at most every `DRAW_PERIOD_NS`
        at the stamp of a /tf message (static transforms are kept, never drawn at their stamp:
        it is whenever the publisher started)."""
        self.tf.add(msg.transforms)
        stamps = [self._time_ns(t, received_ns) for t in msg.transforms]
        time_ns = max(stamps, default=received_ns)
        last = self._last_draw["robot"]
        if last <= time_ns < last + DRAW_PERIOD_NS:
            return
        segments = [
            s for s in self.tf.segments_in(self.base_frame) if s[1] not in self.camera_frames
        ]
        if not segments:
            return
        self._last_draw["robot"] = time_ns
        self._at(time_ns)
        self.rec.log(
            ROBOT,
            rr.LineStrips3D(
                [np.stack([a, b]) for _, _, a, b in segments], colors=[ROBOT_COLOR], radii=0.012
            ),
        )
