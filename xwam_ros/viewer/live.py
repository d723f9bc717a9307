"""The viewer's rclpy node: subscribes to a graph's topics and hands each message to the bridge.

It commands nothing and runs beside a graph like RViz does: against the sim's graph or a real
arm's. Callbacks run in one thread (a single-threaded executor), which the bridge needs.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

from xwam_ros.recording import message_types
from xwam_ros.viewer import topics as kinds
from xwam_ros.viewer.bridge import RerunBridge
from xwam_ros.viewer.topics import ViewerTopics

RELIABLE = QoSProfile(depth=16, reliability=ReliabilityPolicy.RELIABLE)
# tf2's listener QoS for /tf_static: the publisher's one message reaches a late subscriber.
STATIC = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
TF = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
# As the model node reads them: camera drivers and joint states are often best effort.
SENSOR_KINDS = (kinds.OBSERVED_RGB, kinds.OBSERVED_DEPTH, kinds.JOINT_STATES)


class ViewerNode(Node):
    """Subscribes to every topic of `topics` whose message type can be imported.

    `skipped` lists the topics left out and why (tf2_msgs missing, say), for the caller to
    print. On simulated time when the graph's model node is, so that messages stamped 0 (on
    receipt) fall on the same timeline.
    """

    def __init__(self, topics: ViewerTopics, bridge: RerunBridge, name: str = "xwam_viewer"):
        super().__init__(
            name,
            parameter_overrides=[
                Parameter("use_sim_time", Parameter.Type.BOOL, topics.use_sim_time)
            ],
        )
        self.bridge = bridge
        self.skipped: list[str] = []
        for topic in topics.topics:
            try:
                cls = message_types.python_class(topic.msgtype)
            except message_types.MessageTypeError as exc:
                self.skipped.append(f"{topic.name}: {exc}")
                continue
            if topic.kind in SENSOR_KINDS:
                qos = qos_profile_sensor_data
            elif topic.kind == kinds.TF_STATIC:
                qos = STATIC
            elif topic.kind == kinds.TF:
                qos = TF
            else:
                qos = RELIABLE
            self.create_subscription(
                cls,
                topic.name,
                lambda msg, t=topic: self.bridge.handle(t.kind, t.view, msg, self._now_ns()),
                qos,
            )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds
