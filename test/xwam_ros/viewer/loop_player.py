"""A policy loop played on real ROS topics, for the viewer's tests (run as a script).

    python loop_player.py SECONDS

Publishes what the simulated arm and the model node of the `demo` graph publish, on their
topics, built by the project's own code where it has it: the robot's description and
transforms (`xwam_ros.robot_state`, as the sim does), joint states of an arm that sways, the
three cameras' images and depth, and, every `IMAGINE_PERIOD_S`, an imagined future
(`xwam_ros.imagination.imagined_messages`, as the model node does: RGB and depth per view and
step, the cloud, the end-effector path), an action chunk and both nodes' statuses with
refusals. Stamped with this node's clock.
"""

import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from xwam_msgs.msg import ActionChunk, PolicyStatus
from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.robot import load_robot_config
from xwam_ros.conversions.images import depth_to_image, rgb_to_image
from xwam_ros.executor.kinematics import RobotKinematics
from xwam_ros.imagination import ViewGeometry, imagined_messages
from xwam_ros.paths import config_dir
from xwam_ros.robot_state import RobotStatePublisher, camera_mounts

SIZE = 64
FRAMES = 4
IMAGINE_PERIOD_S = 1.0
MODEL = "/xwam_model"
READY = [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
K = np.array([[60.0, 0.0, SIZE / 2], [0.0, 60.0, SIZE / 2], [0.0, 0.0, 1.0]])


def picture(phase: float) -> np.ndarray:
    """A moving colour gradient [SIZE, SIZE, 3] uint8."""
    u, v = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE))
    rgb = np.stack([u, v, 0.5 + 0.5 * np.sin(2 * np.pi * (u + phase))], axis=-1)
    return (255 * rgb).astype(np.uint8)


class LoopPlayer(Node):
    def __init__(self):
        super().__init__("loop_player")
        self.robot = load_robot_config(config_dir() / "robots" / "panda.yaml")
        self.setup = load(CameraSetup, config_dir() / "cameras" / "sim_panda.yaml")
        self.kinematics = RobotKinematics(self.robot)
        self.robot_state = RobotStatePublisher(self, self.robot, camera_mounts(self.setup))
        reliable = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE)
        self.joints = self.create_publisher(JointState, "/joint_states", 10)
        self.cameras = {
            v.name: (
                self.create_publisher(Image, v.image_topic, 2),
                self.create_publisher(Image, v.depth_topic, 2),
            )
            for v in self.setup.views
        }
        self.imagined = {
            v.name: (
                self.create_publisher(Image, f"{MODEL}/imagined/{v.name}/rgb", reliable),
                self.create_publisher(Image, f"{MODEL}/imagined/{v.name}/depth", reliable),
            )
            for v in self.setup.views
        }
        self.cloud = self.create_publisher(PointCloud2, f"{MODEL}/imagined/points", reliable)
        self.path = self.create_publisher(MarkerArray, f"{MODEL}/imagined/ee_path", reliable)
        self.chunks = self.create_publisher(ActionChunk, f"{MODEL}/action_chunk", reliable)
        self.status = self.create_publisher(PolicyStatus, f"{MODEL}/status", reliable)
        self.executor_status = self.create_publisher(
            PolicyStatus, "/xwam_executor/status", reliable
        )
        self.start = time.monotonic()
        self.chunk_id = 0
        self.create_timer(0.02, self.step)
        self.create_timer(0.2, self.frames)
        self.create_timer(IMAGINE_PERIOD_S, self.imagine)

    def q(self, t: float) -> np.ndarray:
        return np.array(READY) + 0.3 * np.sin(t + np.arange(7))

    def step(self) -> None:
        t = time.monotonic() - self.start
        stamp = self.get_clock().now().to_msg()
        names = self.robot.joint_names + ["panda_finger_joint1", "panda_finger_joint2"]
        positions = [*self.q(t).tolist(), 0.04, 0.04]
        msg = JointState(name=names, position=positions)
        msg.header.stamp = stamp
        self.joints.publish(msg)
        self.robot_state.publish_joints(names, positions, stamp)

    def frames(self) -> None:
        t = time.monotonic() - self.start
        header = Header(stamp=self.get_clock().now().to_msg())
        for view in self.setup.views:
            header.frame_id = view.optical_frame
            rgb_pub, depth_pub = self.cameras[view.name]
            rgb_pub.publish(rgb_to_image(picture(t / 4), header))
            depth_pub.publish(depth_to_image(np.full((SIZE, SIZE), 1.0, np.float32), header))

    def imagine(self) -> None:
        t = time.monotonic() - self.start
        now_ns = self.get_clock().now().nanoseconds
        self.chunk_id += 1
        views = [v.name for v in self.setup.ordered_views]
        rgb = np.stack([[picture(t / 4 + f / 8) for f in range(FRAMES)] for _ in views])
        depth = np.full((len(views), FRAMES, SIZE, SIZE), 0.8, np.float32)
        geometry = {
            v.name: ViewGeometry(
                v.optical_frame, K, np.repeat(v.extrinsics.matrix()[None], FRAMES, axis=0)
            )
            for v in self.setup.ordered_views
        }
        ee = np.array(
            [self.kinematics.ee_poses(self.q(t + 0.2 * f))[0].translation for f in range(FRAMES)]
        )
        msgs = imagined_messages(
            view_names=tuple(views),
            rgb=rgb,
            depth=depth,
            geometry=geometry,
            observation_stamp_ns=now_ns,
            frame_period_s=0.2,
            base_frame=self.robot.frame_id,
            ee_positions=ee,
        )
        chunk = ActionChunk(
            chunk_id=self.chunk_id,
            action_space="ee_delta",
            action_dim=7,
            num_steps=8,
            decode_latency=0.3 + 0.1 * np.sin(t),
        )
        chunk.header = msgs.cloud.header
        self.chunks.publish(chunk)
        for name in views:
            rgb_pub, depth_pub = self.imagined[name]
            for f in range(FRAMES):
                rgb_pub.publish(msgs.rgb[name][f])
                depth_pub.publish(msgs.depth[name][f])
        self.cloud.publish(msgs.cloud)
        self.path.publish(msgs.ee_path)
        for publisher, kind in ((self.status, "stale"), (self.executor_status, "jump")):
            status = PolicyStatus(
                refusal_kinds=[kind],
                refusal_counts=[self.chunk_id // 2],
                observations_refused=self.chunk_id // 2,
                chunks_rejected=self.chunk_id // 2,
                imaginations_completed=self.chunk_id,
                last_refusal_reason=f"{kind} #{self.chunk_id // 2}" if self.chunk_id > 1 else "",
            )
            status.header.stamp = chunk.header.stamp
            publisher.publish(status)


def main() -> None:
    duration = float(sys.argv[1])
    rclpy.init()
    node = LoopPlayer()
    end = time.monotonic() + duration
    try:
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
