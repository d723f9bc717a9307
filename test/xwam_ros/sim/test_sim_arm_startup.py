"""The sim node's message conversion and its refusal to start half-configured."""

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_ros.nodes.sim_arm import pairs, trajectory_from_message


def test_trajectory_message_conversion_keeps_stamps_and_optional_fields():
    msg = JointTrajectory(joint_names=["a", "b"])
    msg.header.stamp = Time(sec=12, nanosec=500_000_000)
    msg.points = [
        JointTrajectoryPoint(positions=[1.0, 2.0], time_from_start=Duration(nanosec=250_000_000)),
        JointTrajectoryPoint(
            positions=[3.0, 4.0], velocities=[0.5, 0.0], time_from_start=Duration(sec=1)
        ),
    ]
    trajectory = trajectory_from_message(msg)
    assert trajectory.joint_names == ("a", "b")
    assert trajectory.start_time == pytest.approx(12.5)
    first, second = trajectory.points
    assert (first.time_from_start, second.time_from_start) == (0.25, 1.0)
    assert first.velocities is None and first.accelerations is None
    np.testing.assert_allclose(second.velocities, [0.5, 0.0])


def test_name_pairs_are_parsed_and_bad_ones_refused():
    assert pairs(["wrist:robot0_eye_in_hand"], "camera_map") == {"wrist": "robot0_eye_in_hand"}
    with pytest.raises(ValueError, match="camera_map: expected 'name:name'"):
        pairs(["wrist"], "camera_map")


@pytest.mark.ros
@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("task:=Lfit", "task must be one of"),
        ("camera_map:=['agentview:agentview']", "camera_map has no entry for view 'sideview'"),
    ],
)
def test_a_bad_configuration_stops_the_node_at_start(param, message):
    from xwam_testing.ros import Peer

    peer = Peer("--ros-args", "-p", param, module="xwam_ros.nodes.sim_arm")
    try:
        peer.process.wait(timeout=120)
    finally:
        code, output = peer.stop()
    assert code == 2, output
    assert message in output


@pytest.mark.ros
def test_a_forward_command_gripper_takes_finger_positions(ros_node, tmp_path):
    from sensor_msgs.msg import JointState
    from std_msgs.msg import Float64MultiArray
    from xwam_testing.ros import Peer

    from xwam_ros.paths import config_dir

    text = (config_dir() / "robots" / "panda.yaml").read_text()
    text = text.replace("interface: joint_trajectory", "interface: forward_command")
    text = text.replace("/gripper_controller/joint_trajectory", "/gripper_controller/commands")
    robot = tmp_path / "panda_forward.yaml"
    robot.write_text(text)
    states: list[JointState] = []
    probe = ros_node.node("forward_probe")
    probe.create_subscription(JointState, "/joint_states", states.append, 10)
    commands = probe.create_publisher(Float64MultiArray, "/gripper_controller/commands", 10)
    args = [f"robot_config:={robot}", "image_width:=16", "image_height:=16", "camera_rate:=1.0"]
    peer = Peer("--ros-args", *sum((["-p", a] for a in args), []), module="xwam_ros.nodes.sim_arm")
    try:
        assert ros_node.spin_until(lambda: states and commands.get_subscription_count(), 90.0)
        commands.publish(Float64MultiArray(data=[0.035, 0.035]))

        def fingers_at(target: float) -> bool:
            return bool(states) and np.allclose(states[-1].position[7:], target, atol=0.003)

        assert ros_node.spin_until(lambda: fingers_at(0.035), 20.0), states[-1].position[7:]
        commands.publish(Float64MultiArray(data=[0.005, 0.005]))
        assert ros_node.spin_until(lambda: fingers_at(0.005), 20.0), states[-1].position[7:]
    finally:
        code, output = peer.stop()
    assert code == 0, output
