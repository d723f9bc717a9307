"""The robot's description and transforms (`xwam_ros.robot_state`), as robot_state_publisher
gives them: the TF tree agrees with the executor's Pinocchio kinematics, TFMessage is the real
tf2_msgs type, and the standalone node serves /robot_description, /tf_static and /tf over DDS
to a subscriber that comes late."""

import json
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from xwam_testing.ros import Peer

from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.robot import load_robot_config
from xwam_ros.executor.kinematics import ArmKinematics
from xwam_ros.paths import config_dir
from xwam_ros.recording.message_types import share_prefixes
from xwam_ros.robot_state import (
    RobotStateModel,
    camera_mounts,
    robot_description,
    urdf_joints,
)
from xwam_ros.viewer.tf_tree import TfTree, transform_matrix

PANDA = config_dir() / "robots" / "panda.yaml"
READY = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def chain(transforms, frame: str, root: str) -> np.ndarray:
    """Pose of `frame` in `root` composed from (parent, child, matrix) transforms."""
    parents = {t.child: (t.parent, t.matrix) for t in transforms}
    pose = np.eye(4)
    while frame != root:
        parent, matrix = parents[frame]
        pose, frame = matrix @ pose, parent
    return pose


def test_transforms_compose_to_the_executors_forward_kinematics():
    robot = load_robot_config(PANDA)
    arm = robot.arms[0]
    model = RobotStateModel(arm)
    q = np.array(READY) + 0.1
    positions = dict(zip(arm.joint_names, q)) | {"panda_finger_joint1": 0.03}
    transforms = model.static_transforms(robot.frame_id) + model.moving_transforms(positions)
    expected = ArmKinematics(arm).forward(q).homogeneous
    np.testing.assert_allclose(
        chain(transforms, "panda_hand_tcp", "panda_link0"), expected, atol=1e-9
    )
    # panda_finger_joint2 mimics joint1 in the URDF: published although joint states lack it.
    fingers = {t.child: t for t in transforms if "finger" in t.child}
    assert set(fingers) == {"panda_leftfinger", "panda_rightfinger"}
    assert fingers["panda_rightfinger"].matrix[1, 3] == pytest.approx(-0.03)
    # A joint the joint states do not give is not published (robot_state_publisher's rule).
    partial = model.moving_transforms({"panda_joint1": 0.2})
    assert [(t.parent, t.child) for t in partial] == [("panda_link0", "panda_link1")]


def test_static_transforms_are_the_fixed_joints_and_the_camera_mounts():
    robot = load_robot_config(PANDA)
    model = RobotStateModel(robot.arms[0])
    static = {(t.parent, t.child) for t in model.static_transforms(robot.frame_id)}
    assert static == {
        ("panda_link7", "panda_link8"),
        ("panda_link8", "panda_hand"),
        ("panda_hand", "panda_hand_tcp"),
    }
    setup = load(CameraSetup, config_dir() / "cameras" / "sim_panda.yaml")
    mounts = {(t.parent, t.child) for t in camera_mounts(setup)}
    assert ("panda_hand", "wrist_optical_frame") in mounts
    assert ("panda_link0", "agentview_optical_frame") in mounts


def test_description_points_the_meshes_at_files_here():
    robot = load_robot_config(PANDA)
    text = robot_description(robot.arms[0].urdf)
    meshes = [line.split('"')[1] for line in text.splitlines() if "<mesh filename=" in line]
    assert meshes and all(m.startswith("file://") for m in meshes)
    assert all(Path(m[len("file://") :]).is_file() for m in meshes)
    assert len(urdf_joints(text)) == len(urdf_joints(Path(robot.arms[0].urdf).read_text()))


def test_not_a_urdf_is_refused_with_its_name():
    with pytest.raises(ValueError, match="bad.urdf: expected a <robot> root element"):
        urdf_joints("<launch/>", "bad.urdf")


def test_tf2_msgs_is_the_kilted_type():
    """`make setup` builds interfaces/tf2_msgs where ROS lacks it: its TFMessage must hash as
    Kilted's does, or RViz, tf2 and rosbag2 would not take what the sim publishes."""
    from rosbags.typesys import Stores, get_typestore
    from tf2_msgs.msg import TFMessage  # importable: built by `make setup` or from ROS

    assert TFMessage().transforms == []
    found = [
        prefix / "share" / "tf2_msgs" / "msg" / "TFMessage.json"
        for prefix in share_prefixes()
        if (prefix / "share" / "tf2_msgs" / "msg" / "TFMessage.json").is_file()
    ]
    described = json.loads(found[0].read_text())
    hashes = {h["type_name"]: h["hash_string"] for h in described["type_hashes"]}
    kilted = get_typestore(Stores.ROS2_KILTED).hash_rihs01("tf2_msgs/msg/TFMessage")
    assert hashes["tf2_msgs/msg/TFMessage"] == kilted


@pytest.mark.timeout(120)
def test_node_publishes_description_and_transforms_over_dds(ros_node):
    from tf2_msgs.msg import TFMessage

    node = Peer.node("xwam_ros.robot_state", robot_config=PANDA)
    try:
        peer = ros_node.node("robot_state_peer")
        joints = peer.create_publisher(JointState, "/joint_states", 10)
        tf_messages: list = []
        peer.create_subscription(TFMessage, "/tf", tf_messages.append, 100)
        names = [*(f"panda_joint{i}" for i in range(1, 8)), "panda_finger_joint1"]
        positions = [*READY, 0.02]
        state = JointState(name=names, position=positions)
        state.header.stamp.sec, state.header.stamp.nanosec = 42, 5

        def published() -> bool:
            joints.publish(state)
            return bool(tf_messages)

        assert ros_node.spin_until(published, 60.0), "no /tf for the joint states"
        # Latched, as robot_state_publisher's: a subscriber that comes now still gets both.
        descriptions: list = []
        static: list = []
        peer.create_subscription(String, "/robot_description", descriptions.append, LATCHED)
        peer.create_subscription(TFMessage, "/tf_static", static.append, LATCHED)
        assert ros_node.spin_until(lambda: descriptions and static, 20.0)
    finally:
        code, output = node.stop(timeout=20)  # Ctrl-C, as every node test stops its node
    assert code == 0, output[-3000:]
    assert len(urdf_joints(descriptions[0].data)) == 12  # the Panda URDF's, as published
    message = tf_messages[-1]
    assert {(t.header.stamp.sec, t.header.stamp.nanosec) for t in message.transforms} == {(42, 5)}
    tree = TfTree()
    tree.add(static[0].transforms)
    tree.add(message.transforms)
    arm = load_robot_config(PANDA).arms[0]
    expected = ArmKinematics(arm).forward(np.array(READY)).homogeneous
    np.testing.assert_allclose(tree.pose_in("panda_hand_tcp", "panda_link0"), expected, atol=1e-6)
    wrist = next(t for t in static[0].transforms if t.child_frame_id == "panda_hand_tcp")
    assert transform_matrix(wrist.transform)[2, 3] == pytest.approx(0.1034)
