"""Synthetic robot topics for the recorder tests: the two_cameras setup and the Panda.

recorder_publishers.py   publishes until stopped:
- per camera (20 Hz, sensor-data QoS: best effort): a 32x24 rgb8 image whose pixels are the
  frame counter, its camera_info, and a 32FC1 depth image of 0.5 m + counter mm;
- /joint_states (50 Hz, reliable): panda_joint1..7 at 0.01 * counter, fingers open;
- /joint_trajectory_controller/joint_trajectory and /xwam_model/action_chunk (2 Hz);
- /robot_description (std_msgs/String, latched), once at start.
"""

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_msgs.msg import ActionChunk
from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.node_support import run_node
from xwam_ros.paths import config_dir

SETUP = load(CameraSetup, config_dir() / "cameras" / "two_cameras.yaml")
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
WIDTH, HEIGHT = 32, 24


class Publishers(Node):
    def __init__(self):
        super().__init__("recorder_publishers")
        self.frame = self.tick = 0
        sensor = qos_profile_sensor_data
        self.images = {
            v.name: self.create_publisher(Image, v.image_topic, sensor) for v in SETUP.views
        }
        self.infos = {
            v.name: self.create_publisher(CameraInfo, v.camera_info_topic, sensor)
            for v in SETUP.views
        }
        self.depths = {
            v.name: self.create_publisher(Image, v.depth_topic, sensor) for v in SETUP.views
        }
        self.joints = self.create_publisher(JointState, "/joint_states", 10)
        self.trajectory = self.create_publisher(
            JointTrajectory, "/joint_trajectory_controller/joint_trajectory", 10
        )
        self.chunks = self.create_publisher(ActionChunk, "/xwam_model/action_chunk", 10)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.description = self.create_publisher(String, "/robot_description", latched)
        self.description.publish(String(data="<robot name='panda'/>"))
        self.create_timer(0.05, self.publish_cameras)
        self.create_timer(0.02, self.publish_joints)
        self.create_timer(0.5, self.publish_commands)

    def publish_cameras(self):
        self.frame += 1
        header = self.get_clock().now().to_msg()
        for view in SETUP.views:
            image = Image(width=WIDTH, height=HEIGHT, encoding="rgb8", step=WIDTH * 3)
            image.header.stamp, image.header.frame_id = header, view.optical_frame
            image.data = np.full((HEIGHT, WIDTH, 3), self.frame % 256, np.uint8).tobytes()
            info = CameraInfo(width=WIDTH, height=HEIGHT)
            info.header = image.header
            info.k = [30.0, 0.0, 15.5, 0.0, 30.0, 11.5, 0.0, 0.0, 1.0]
            depth = Image(width=WIDTH, height=HEIGHT, encoding="32FC1", step=WIDTH * 4)
            depth.header = image.header
            metres = np.full((HEIGHT, WIDTH), 0.5 + 0.001 * self.frame, np.float32)
            depth.data = metres.tobytes()
            self.images[view.name].publish(image)
            self.infos[view.name].publish(info)
            self.depths[view.name].publish(depth)

    def publish_joints(self):
        self.tick += 1
        msg = JointState(name=[*JOINTS, "panda_finger_joint1", "panda_finger_joint2"])
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.position = [0.01 * self.tick] * 7 + [0.04, 0.04]
        self.joints.publish(msg)

    def publish_commands(self):
        trajectory = JointTrajectory(joint_names=JOINTS)
        trajectory.points = [JointTrajectoryPoint(positions=[0.1] * 7)]
        trajectory.points[0].time_from_start.nanosec = 500_000_000
        self.trajectory.publish(trajectory)
        chunk = ActionChunk(action_space="ee_delta", action_dim=7, num_steps=2)
        chunk.header.stamp = self.get_clock().now().to_msg()
        chunk.actions = [0.5] * 14
        self.chunks.publish(chunk)


def main() -> int:
    def make() -> Publishers:
        node = Publishers()
        print("publishing", flush=True)
        return node

    return run_node(make)


if __name__ == "__main__":
    raise SystemExit(main())
