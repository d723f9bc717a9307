"""The recorder configuration: `config/recorder/<name>.yaml`.

Which topics an episode bag holds, where bags go, and how often the bag being written is
made durable. The topics come from the robot and camera configurations the recorder is
started with (cameras, camera_info, depth, joint states, the controllers' command topics)
and from the model node (action chunks, status); `extra_topics` adds any others, with their
message type, and `exclude_topics` removes some.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from xwam_ros.config.schema import InvalidFieldError, option

_MESSAGE_TYPE = re.compile(r"^[A-Za-z][\w]*/msg/[A-Z]\w*$")
_BAG_PREFIX = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclass(frozen=True)
class ExtraTopic:
    """A topic recorded beyond those the robot, camera and model configurations name."""

    topic: str = option(doc="absolute topic name")
    type: str = option(doc="message type, e.g. geometry_msgs/msg/WrenchStamped")

    def __post_init__(self):
        if not self.topic.startswith("/"):
            raise InvalidFieldError("topic", "an absolute topic name starting with /", self.topic)
        if not _MESSAGE_TYPE.match(self.type):
            raise InvalidFieldError("type", "a message type like pkg/msg/Type", self.type)


@dataclass(frozen=True)
class RecorderConfig:
    """What the recorder writes, where, and how crash-safe."""

    description: str = option(doc="one line saying what the recording setup is for")
    output_dir: str = option(
        "~/xwam_bags",
        doc="folder the episode bags are written under (one folder per episode); `~` is "
        "expanded, a relative path is taken from the recorder's working directory",
    )
    bag_prefix: str = option(
        "episode", doc="episode bags are named <bag_prefix>_<YYYYmmdd_HHMMSS>_<n>"
    )
    storage: Literal["mcap"] = option("mcap", doc="rosbag2 storage format (MCAP)")
    cameras: bool = option(True, doc="record each camera's image topic")
    camera_info: bool = option(True, doc="record each camera's camera_info topic")
    depth: bool = option(True, doc="record each camera's depth topic (where it names one)")
    joint_states: bool = option(True, doc="record the robot's joint states topic")
    commands: bool = option(
        True, doc="record the arm and gripper command topics of the robot configuration"
    )
    action_chunks: bool = option(True, doc="record the model node's action chunks")
    model_status: bool = option(True, doc="record the model node's status")
    model_node: str = option(
        "/xwam_model", doc="fully qualified name of the model node (its ~/ topics are recorded)"
    )
    extra_topics: list[ExtraTopic] = option(factory=list, doc="further topics to record")
    exclude_topics: list[str] = option(factory=list, doc="topics not to record")
    split_period: float = option(
        1.0,
        doc="seconds of wall time after which the MCAP file being written is closed and "
        "listed in metadata.yaml: a recorder killed mid-episode loses at most this much",
    )
    fsync: bool = option(
        False,
        doc="fsync every closed file and metadata.yaml (survives power loss too, at the cost "
        "of a disk flush per split)",
    )
    queue_depth: int = option(100, doc="history depth of every recording subscription")
    discovery_period: float = option(
        0.5, doc="seconds between checks for publishers of topics not subscribed yet"
    )

    def __post_init__(self):
        if not _BAG_PREFIX.match(self.bag_prefix):
            raise InvalidFieldError(
                "bag_prefix", "a file-name prefix (letters, digits, _ . -)", self.bag_prefix
            )
        for key in ("split_period", "discovery_period"):
            if getattr(self, key) <= 0:
                raise InvalidFieldError(key, "a positive number of seconds", getattr(self, key))
        if self.queue_depth < 1:
            raise InvalidFieldError("queue_depth", "at least 1", self.queue_depth)
        if not self.model_node.startswith("/"):
            raise InvalidFieldError(
                "model_node", "a fully qualified node name starting with /", self.model_node
            )
        for i, topic in enumerate(self.exclude_topics):
            if not topic.startswith("/"):
                raise InvalidFieldError(
                    f"exclude_topics[{i}]", "an absolute topic name starting with /", topic
                )
        topics = [t.topic for t in self.extra_topics]
        if len(set(topics)) != len(topics):
            raise InvalidFieldError("extra_topics", "each topic listed once", topics)
