"""The sim arm publishes what robot_state_publisher gives a real arm, for RViz's RobotModel and
TF displays: the URDF (latched), the fixed joints and camera mounts on /tf_static, and the
moving joints on /tf at its joint states' simulated time, agreeing with the joint states."""

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage

from xwam_ros.config.robot import load_robot_config
from xwam_ros.executor.kinematics import ArmKinematics
from xwam_ros.paths import config_dir
from xwam_ros.viewer.tf_tree import TfTree

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def test_the_sim_publishes_its_description_and_transforms(sim):
    descriptions, static, moving = [], [], []
    sim.node.create_subscription(String, "/robot_description", descriptions.append, LATCHED)
    sim.node.create_subscription(TFMessage, "/tf_static", static.append, LATCHED)
    sim.node.create_subscription(TFMessage, "/tf", moving.append, 100)
    assert sim.ctx.spin_until(lambda: descriptions and static and len(moving) >= 3, 30.0)
    assert "panda_link0" in descriptions[0].data and "file://" in descriptions[0].data
    frames = {t.child_frame_id for t in static[0].transforms}
    assert {"panda_hand_tcp", "agentview_optical_frame", "wrist_optical_frame"} <= frames
    # /tf at its joint states' simulated time (20 Hz of it), the arm where they put it.
    states = {(s.header.stamp.sec, s.header.stamp.nanosec): s for s in sim.joint_states}
    message, state = next(
        (m, states[key])
        for m in reversed(moving)
        if (key := (m.transforms[0].header.stamp.sec, m.transforms[0].header.stamp.nanosec))
        in states
    )
    tree = TfTree()
    tree.add(static[0].transforms)
    tree.add(message.transforms)
    arm = load_robot_config(config_dir() / "robots" / "panda.yaml").arms[0]
    q = np.array([dict(zip(state.name, state.position))[n] for n in arm.joint_names])
    expected = ArmKinematics(arm).forward(q).homogeneous
    np.testing.assert_allclose(tree.pose_in("panda_hand_tcp", "panda_link0"), expected, atol=1e-6)
    times = [m.transforms[0].header.stamp for m in moving[-3:]]
    assert np.all(np.diff([t.sec + t.nanosec * 1e-9 for t in times]) >= 0.05 - 1e-9)
