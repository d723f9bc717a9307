"""Which topics the viewer shows, and what each one is.

The viewer reads a graph description like the launchers do: the model node's camera setup
and robot configuration name the camera topics and the joint states, and its (and the
executor's) node name the imagined outputs, the action chunks and the statuses. So `xwam view
robot --cameras <setup>` shows a real arm's loop as `xwam view demo` shows the sim's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.robot import RobotConfig, load_robot_config
from xwam_ros.graph.description import GraphDescription

# Kinds of topic: what the bridge makes of a message (`RerunBridge.handle`).
OBSERVED_RGB = "observed_rgb"
OBSERVED_DEPTH = "observed_depth"
IMAGINED_RGB = "imagined_rgb"
IMAGINED_DEPTH = "imagined_depth"
IMAGINED_POINTS = "imagined_points"
EE_PATH = "ee_path"
ACTION_CHUNK = "action_chunk"
MODEL_STATUS = "model_status"
EXECUTOR_STATUS = "executor_status"
JOINT_STATES = "joint_states"
TF = "tf"
TF_STATIC = "tf_static"


@dataclass(frozen=True)
class Topic:
    """A topic the viewer subscribes to: its kind, its message type (package/msg/Name) and,
    for images, the camera view it belongs to."""

    name: str
    kind: str
    msgtype: str
    view: str = ""


@dataclass(frozen=True)
class ViewerTopics:
    """The topics of one graph's policy loop, and the configurations that give them meaning."""

    robot: RobotConfig
    setup: CameraSetup
    model_node: str
    executor_node: str
    use_sim_time: bool
    topics: tuple[Topic, ...] = field(default=())

    def by_name(self) -> dict[str, Topic]:
        """Topic name -> Topic."""
        return {t.name: t for t in self.topics}


def _node_name(node) -> str:
    return f"{node.namespace}/{node.name}" if node.namespace else f"/{node.name}"


def viewer_topics(graph: GraphDescription) -> ViewerTopics:
    """The topics to show for `graph`: ValueError when it has no model node (nothing imagines)."""
    model = next((n for n in graph.nodes if n.executable == "model_node"), None)
    if model is None:
        raise ValueError(
            f"graph '{graph.name}' ({graph.source}) has no model node: nothing to view "
            "(the viewer shows a model node's observations and imagined futures)"
        )
    executor = next((n for n in graph.nodes if n.executable == "executor"), None)
    robot = load_robot_config(model.parameters["robot_config"])
    setup = load(CameraSetup, model.parameters["cameras_config"])
    model_node = _node_name(model)
    executor_node = _node_name(executor) if executor is not None else ""
    topics = []
    for view in setup.ordered_views:
        topics.append(Topic(view.image_topic, OBSERVED_RGB, "sensor_msgs/msg/Image", view.name))
        if view.depth_topic:
            topics.append(
                Topic(view.depth_topic, OBSERVED_DEPTH, "sensor_msgs/msg/Image", view.name)
            )
        base = f"{model_node}/imagined/{view.name}"
        topics.append(Topic(f"{base}/rgb", IMAGINED_RGB, "sensor_msgs/msg/Image", view.name))
        topics.append(Topic(f"{base}/depth", IMAGINED_DEPTH, "sensor_msgs/msg/Image", view.name))
    topics += [
        Topic(f"{model_node}/imagined/points", IMAGINED_POINTS, "sensor_msgs/msg/PointCloud2"),
        Topic(f"{model_node}/imagined/ee_path", EE_PATH, "visualization_msgs/msg/MarkerArray"),
        Topic(f"{model_node}/action_chunk", ACTION_CHUNK, "xwam_msgs/msg/ActionChunk"),
        Topic(f"{model_node}/status", MODEL_STATUS, "xwam_msgs/msg/PolicyStatus"),
        Topic(robot.joint_states_topic, JOINT_STATES, "sensor_msgs/msg/JointState"),
        Topic("/tf", TF, "tf2_msgs/msg/TFMessage"),
        Topic("/tf_static", TF_STATIC, "tf2_msgs/msg/TFMessage"),
    ]
    if executor_node:
        status = Topic(f"{executor_node}/status", EXECUTOR_STATUS, "xwam_msgs/msg/PolicyStatus")
        topics.append(status)
    use_sim_time = model.parameters.get("use_sim_time") is True
    return ViewerTopics(robot, setup, model_node, executor_node, use_sim_time, tuple(topics))
