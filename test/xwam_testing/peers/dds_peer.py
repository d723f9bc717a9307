"""A peer process for the interface tests: publishes or serves xwam_msgs over real DDS.

dds_peer.py publish-chunk      publish a known ActionChunk (transient local) until stopped
dds_peer.py publish-image W H  publish a W x H rgb8 Image with a known pattern, 10 Hz
dds_peer.py serve-instruction  serve SetInstruction on /peer/set_instruction
"""

import sys

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from xwam_msgs.msg import ActionChunk
from xwam_msgs.srv import SetInstruction
from xwam_ros.node_support import run_node

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def known_chunk() -> ActionChunk:
    """The chunk the round-trip test expects, field by field."""
    msg = ActionChunk()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1234, 567
    msg.header.frame_id = "base_link"
    msg.chunk_id = 2**40 + 7
    msg.action_space = ActionChunk.ACTION_SPACE_JOINT_POSITION
    msg.num_steps, msg.action_dim = 32, 7
    msg.step_period.sec, msg.step_period.nanosec = 0, 50_000_000
    msg.actions = np.arange(32 * 7, dtype=np.float32) * 0.25 - 3.0
    msg.joint_names = [f"panda_joint{i}" for i in range(1, 8)]
    msg.decode_latency = 0.123456789
    msg.denoising_steps = 10
    msg.model_id = "xwam/tiny"
    msg.instruction = "pick up the red cube — and place it (ü)"
    return msg


def image_pattern(width: int, height: int) -> np.ndarray:
    """A deterministic rgb8 image: every pixel's channels encode its coordinates."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)


def make_peer() -> Node:
    """The peer node of the mode named on the command line."""
    mode = sys.argv[1]
    node = Node("dds_peer")
    if mode == "publish-chunk":
        pub = node.create_publisher(ActionChunk, "/peer/action_chunk", LATCHED)
        pub.publish(known_chunk())
    elif mode == "publish-image":
        width, height = int(sys.argv[2]), int(sys.argv[3])
        pub = node.create_publisher(Image, "/peer/image_raw", 10)
        msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
        msg.data = image_pattern(width, height).tobytes()
        node.create_timer(0.1, lambda: pub.publish(msg))
    elif mode == "serve-instruction":

        def handle(request, response):
            response.success = bool(request.instruction.strip())
            response.message = (
                f"instruction set: {request.instruction}"
                if response.success
                else "refused: the instruction is empty"
            )
            return response

        node.create_service(SetInstruction, "/peer/set_instruction", handle)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(f"peer ready: {mode}", flush=True)
    return node


def main() -> int:
    return run_node(make_peer)


if __name__ == "__main__":
    raise SystemExit(main())
