"""The robot's description and transforms, published the way robot_state_publisher does.

RViz's RobotModel and TF displays need two things that a ros2_control arm does not publish by
itself: `/robot_description` (the URDF as std_msgs/String, transient local, so a display
started later still gets it) and the transforms of every link: `/tf_static` once for the
URDF's fixed joints, `/tf` for its moving joints at each joint state, stamped with the joint
state's stamp. On a real arm robot_state_publisher does that (franka_ros2's launch files start
it); the simulated arm does it with `RobotStatePublisher` (see `xwam_ros.nodes.sim_arm`), and
`python -m xwam_ros.robot_state` is a standalone node for a setup that has neither.

Transforms follow the URDF tree: one per joint, from its parent link to its child link, by
forward kinematics with Pinocchio. A moving joint whose position is not in the joint states
is not published (as robot_state_publisher); a mimic joint follows the joint it mimics.
When the robot frame (`frame_id` of the robot YAML) is not the URDF's root link, a static
transform places the root there (the arm's `base_pose`). Frames: REP 103 / REP 105.

tf2_msgs is part of every ROS 2 installation; the PyPI ROS here lacks it, and `make setup`
builds it from `interfaces/tf2_msgs`. Where it still cannot be imported, only
`/robot_description` is published and a warning says so.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin
from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from xwam_ros.config.robot import ArmConfig, RobotConfig, load_robot_config
from xwam_ros.node_support import Param, declare_parameters, run_node
from xwam_ros.paths import config_dir

try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # the PyPI ROS without `make setup`'s interfaces/tf2_msgs
    TFMessage = None

MOVING_TYPES = ("revolute", "continuous", "prismatic")
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
"""/robot_description and /tf_static: the QoS of robot_state_publisher and tf2's static
broadcaster (a late subscriber still gets the last message)."""
TF_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
"""/tf: tf2's dynamic broadcaster QoS."""
TF2_MISSING = (
    "tf2_msgs cannot be imported: /tf and /tf_static are not published, only "
    "/robot_description (`make setup` builds interfaces/tf2_msgs into .venv)"
)


@dataclass(frozen=True)
class UrdfJoint:
    """One joint of a URDF: its type, the links it joins, and the joint it mimics, if any
    (name, multiplier, offset: position = multiplier * that joint's + offset)."""

    name: str
    type: str
    parent: str
    child: str
    mimic: tuple[str, float, float] | None = None


@dataclass(frozen=True)
class FrameTransform:
    """A transform of the TF tree: the pose [4, 4] of `child` in `parent` (metres)."""

    parent: str
    child: str
    matrix: np.ndarray


def urdf_joints(urdf_text: str, source: str = "URDF") -> list[UrdfJoint]:
    """The joints of a URDF document, in file order; ValueError naming `source` when it is
    not a URDF (no <robot> root, a joint without parent or child)."""
    try:
        root = ElementTree.fromstring(urdf_text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"{source}: not an XML document ({exc})") from None
    if root.tag != "robot":
        raise ValueError(f"{source}: expected a <robot> root element, got <{root.tag}>")
    joints = []
    for element in root.findall("joint"):
        name = element.get("name", "")
        parent, child = element.find("parent"), element.find("child")
        if not name or parent is None or child is None:
            raise ValueError(f"{source}: joint '{name}' lacks a name, a parent or a child")
        mimic = element.find("mimic")
        joints.append(
            UrdfJoint(
                name=name,
                type=element.get("type", ""),
                parent=parent.get("link", ""),
                child=child.get("link", ""),
                mimic=(
                    None
                    if mimic is None
                    else (
                        mimic.get("joint", ""),
                        float(mimic.get("multiplier", 1.0)),
                        float(mimic.get("offset", 0.0)),
                    )
                ),
            )
        )
    return joints


_PACKAGE_URI = re.compile(r'(filename\s*=\s*")package://([^/"]+)/([^"]+)"')


def robot_description(urdf_path: str | Path) -> str:
    """The URDF text to publish on /robot_description, with `package://<pkg>/<path>` mesh URIs
    that resolve next to the URDF (a folder `<pkg>` above it holding `<path>`, as
    example-robot-data installs its meshes) rewritten to `file://` URIs, so RViz finds the
    meshes on this machine without the package in its ament index. Other URIs are kept."""
    path = Path(urdf_path).resolve()
    text = path.read_text()
    ancestors = {parent.name: parent for parent in reversed(path.parents)}

    def resolve(match: re.Match) -> str:
        package, rest = match.group(2), match.group(3)
        folder = ancestors.get(package)
        if folder is not None and (folder / rest).is_file():
            return f'{match.group(1)}file://{folder / rest}"'
        return match.group(0)

    return _PACKAGE_URI.sub(resolve, text)


class RobotStateModel:
    """The TF tree of one arm's URDF: static transforms of its fixed joints, and those of its
    moving joints for given positions (Pinocchio forward kinematics).

    `joint_prefix` is the arm's (ROS joint names = prefix + URDF names); link names are the
    URDF's. ValueError when the URDF cannot be loaded.
    """

    def __init__(self, arm: ArmConfig):
        self.arm = arm
        text = Path(arm.urdf).read_text()
        self.joints = urdf_joints(text, arm.urdf)
        try:
            self.model = pin.buildModelFromUrdf(arm.urdf)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"arm '{arm.name}': cannot load the URDF {arm.urdf}: {exc}") from exc
        self.data = self.model.createData()
        self.moving = [j for j in self.joints if j.type in MOVING_TYPES]
        children = {j.child for j in self.joints}
        roots = [j.parent for j in self.joints if j.parent not in children]
        self.root_link = roots[0] if roots else arm.base_frame
        for link in {self.root_link, *children}:
            if not self.model.existFrame(link, pin.BODY):
                raise ValueError(f"arm '{arm.name}': link {link} is not in {arm.urdf}")
        # Where each moving joint's value goes in Pinocchio's q (continuous: cos, sin).
        self._slots = {
            j.name: self.model.joints[self.model.getJointId(j.name)].idx_q for j in self.moving
        }
        self._continuous = {j.name for j in self.moving if j.type == "continuous"}
        self._link_ids = {
            link: self.model.getFrameId(link, pin.BODY) for link in {self.root_link, *children}
        }
        self._fk(pin.neutral(self.model))
        self._static = [self._relative(j.parent, j.child) for j in self.joints if j.type == "fixed"]

    def _fk(self, q: np.ndarray) -> None:
        pin.framesForwardKinematics(self.model, self.data, q)

    def _relative(self, parent: str, child: str) -> FrameTransform:
        pose = self.data.oMf[self._link_ids[parent]].actInv(self.data.oMf[self._link_ids[child]])
        return FrameTransform(parent, child, pose.homogeneous.copy())

    def static_transforms(self, frame_id: str = "") -> list[FrameTransform]:
        """The fixed joints' transforms, and, when `frame_id` (the robot frame) is not the root
        link, the root placed in it by the arm's `base_pose`."""
        transforms = list(self._static)
        if frame_id and frame_id != self.root_link and frame_id not in self._link_ids:
            base = _pose_matrix(self.arm.base_pose)
            self._fk(pin.neutral(self.model))
            root_to_base = self._relative(self.root_link, self.arm.base_frame).matrix
            transforms.insert(
                0, FrameTransform(frame_id, self.root_link, base @ np.linalg.inv(root_to_base))
            )
        return transforms

    def positions_of(self, positions: Mapping[str, float]) -> dict[str, float]:
        """URDF joint name -> position of the moving joints that `positions` (by ROS name)
        determines: given ones, and mimic joints whose source is given."""
        prefix = self.arm.joint_prefix
        known = {}
        for joint in self.moving:
            if joint.mimic is not None:
                source = positions.get(prefix + joint.mimic[0])
                if source is not None:
                    known[joint.name] = joint.mimic[1] * source + joint.mimic[2]
                    continue
            value = positions.get(prefix + joint.name)
            if value is not None:
                known[joint.name] = float(value)
        return known

    def moving_transforms(self, positions: Mapping[str, float]) -> list[FrameTransform]:
        """The transforms of the moving joints whose position `positions` (ROS joint name ->
        rad or m) gives; joints it does not give are left out."""
        known = self.positions_of(positions)
        q = pin.neutral(self.model)
        for name, value in known.items():
            slot = self._slots[name]
            if name in self._continuous:
                q[slot], q[slot + 1] = np.cos(value), np.sin(value)
            else:
                q[slot] = value
        self._fk(q)
        return [self._relative(j.parent, j.child) for j in self.moving if j.name in known]


def _pose_matrix(xyz_wxyz: Sequence[float]) -> np.ndarray:
    x, y, z, qw, qx, qy, qz = (float(v) for v in xyz_wxyz)
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_quat([qw, qx, qy, qz], scalar_first=True).as_matrix()
    matrix[:3, 3] = x, y, z
    return matrix


def camera_mounts(setup) -> list[FrameTransform]:
    """The optical frame of each view of a camera setup (`xwam_ros.config.cameras`) on its
    parent frame (the base frame, or a link for a wrist camera): static transforms."""
    return [
        FrameTransform(
            view.extrinsics.parent_frame or setup.base_frame,
            view.optical_frame,
            view.extrinsics.matrix(),
        )
        for view in setup.ordered_views
    ]


def transform_message(transform: FrameTransform, stamp) -> TransformStamped:
    """A geometry_msgs/TransformStamped of `transform` at `stamp` (builtin_interfaces/Time)."""
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = transform.parent
    msg.child_frame_id = transform.child
    matrix = transform.matrix
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in matrix[:3, 3]
    )
    # Pinocchio's conversion: a scipy Rotation per transform costs more than the rest.
    x, y, z, w = pin.Quaternion(matrix[:3, :3]).coeffs()
    rotation = msg.transform.rotation
    rotation.x, rotation.y, rotation.z, rotation.w = float(x), float(y), float(z), float(w)
    return msg


class RobotStatePublisher:
    """Publishes a robot's `robot_description`, `/tf_static` and `/tf` from a node.

    `robot`: the robot YAML, one arm (one URDF); `extra_static`: more static transforms (the
    simulated cameras' mounts); `publish_frequency`: at most this many /tf messages per second
    of the joint states' time (robot_state_publisher's parameter and default; <= 0: one per
    joint state). The description and the static transforms are published at once (transient
    local); call `publish_joints` with each joint state. ValueError for a robot of more than
    one arm or a URDF that does not load.
    """

    def __init__(
        self,
        node: Node,
        robot: RobotConfig,
        extra_static: Sequence[FrameTransform] = (),
        publish_frequency: float = 20.0,
    ):
        if len(robot.arms) != 1:
            raise ValueError(
                f"robot '{robot.name}': the robot state publisher takes one arm (one URDF), "
                f"it has {len(robot.arms)}; run robot_state_publisher for each arm instead"
            )
        self.node = node
        self.model = RobotStateModel(robot.arms[0])
        self.period_ns = round(1e9 / publish_frequency) if publish_frequency > 0 else 0
        self._last_ns: int | None = None
        self.description_pub = node.create_publisher(String, "robot_description", LATCHED)
        self.description_pub.publish(String(data=robot_description(robot.arms[0].urdf)))
        self.tf_pub = None
        if TFMessage is None:
            node.get_logger().warning(TF2_MISSING)
            return
        self.tf_pub = node.create_publisher(TFMessage, "/tf", TF_QOS)
        self.static_pub = node.create_publisher(TFMessage, "/tf_static", LATCHED)
        static = [*self.model.static_transforms(robot.frame_id), *extra_static]
        stamp = node.get_clock().now().to_msg()
        self.static_pub.publish(TFMessage(transforms=[transform_message(t, stamp) for t in static]))

    def publish_joints(self, names: Sequence[str], positions: Sequence[float], stamp) -> None:
        """Publish on /tf the moving joints' transforms for these joint positions (rad or m,
        by ROS joint name), stamped `stamp` (the joint state's)."""
        if self.tf_pub is None:
            return
        stamp_ns = stamp.sec * 1_000_000_000 + stamp.nanosec
        last = self._last_ns
        # Time that went back (a sim reset) publishes at once.
        if last is not None and last <= stamp_ns < last + self.period_ns:
            return
        self._last_ns = stamp_ns
        transforms = self.model.moving_transforms(dict(zip(names, positions)))
        if transforms:
            self.tf_pub.publish(
                TFMessage(transforms=[transform_message(t, stamp) for t in transforms])
            )


PARAMS = (
    Param(
        "robot_config",
        str(config_dir() / "robots" / "panda.yaml"),
        "robot YAML (one arm): its URDF, frame_id and joint_states topic",
    ),
    Param(
        "publish_frequency",
        20.0,
        "at most this many /tf messages per second (robot_state_publisher's default); <= 0: "
        "one per joint state",
    ),
)


class RobotStateNode(Node):
    """robot_state_publisher for a setup without it: `/robot_description`, `/tf_static`, and
    `/tf` at each message on the robot YAML's joint_states topic."""

    def __init__(self):
        super().__init__("robot_state_publisher")
        p = declare_parameters(self, PARAMS)
        robot = load_robot_config(p["robot_config"])
        self.publisher = RobotStatePublisher(self, robot, publish_frequency=p["publish_frequency"])
        self.create_subscription(
            JointState, robot.joint_states_topic, self._on_joints, qos_profile_sensor_data
        )

    def _on_joints(self, msg: JointState) -> None:
        stamp = msg.header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:  # "stamped on receipt"
            stamp = self.get_clock().now().to_msg()
        self.publisher.publish_joints(msg.name, msg.position, stamp)


def main(args=None) -> int:
    """Run the standalone robot state publisher until Ctrl-C; the process exit code."""
    return run_node(RobotStateNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
