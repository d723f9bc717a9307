"""The node graph configuration: `config/graphs/<name>.yaml`.

A graph names the robot, camera and model configurations it runs with and lists its nodes.
Each node gets the paths of the configurations it asks for as parameters
(`robot_config`, `cameras_config`, `model_config`), so every node reads the same files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from xwam_ros.config.schema import InvalidFieldError, option

ConfigKind = Literal["robot", "cameras", "model"]
_ROS_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class NodeEntry:
    """One node of a graph."""

    name: str = option(doc="ROS node name (letters, digits, underscores; unique in the graph)")
    executable: str = option(
        doc="executable of the xwam_ros package (console script), e.g. model_node"
    )
    namespace: str = option("", doc="ROS namespace of the node; empty for the root")
    required: bool = option(True, doc="when this node exits, the launcher stops the whole graph")
    configs: list[ConfigKind] = option(
        factory=list,
        doc="configurations passed to the node as <kind>_config path parameters",
    )
    parameters: dict[str, Any] = option(
        factory=dict, doc="ROS parameters of the node (name: value)"
    )
    remappings: dict[str, str] = option(factory=dict, doc="topic and service remappings (from: to)")

    def __post_init__(self):
        if not _ROS_NAME.match(self.name):
            raise InvalidFieldError(
                "name", "a ROS node name (letters, digits, underscores)", self.name
            )
        if self.namespace and not self.namespace.startswith("/"):
            raise InvalidFieldError(
                "namespace", "an absolute namespace starting with /", self.namespace
            )
        for name, value in self.parameters.items():
            if not _is_parameter_value(value):
                raise InvalidFieldError(
                    f"parameters.{name}",
                    "a ROS parameter value: bool, int, float, str or a list of one of them",
                    value,
                )


@dataclass(frozen=True)
class GraphConfig:
    """A node graph: what `xwam launch <graph>` and `ros2 launch xwam_ros xwam.launch.py` run."""

    description: str = option(doc="one line saying what the graph is for")
    nodes: list[NodeEntry] = option(doc="the nodes of the graph")
    robot: str | None = option(
        None, doc="robot configuration: a name in config/robots/ or a path to a YAML file"
    )
    cameras: str | None = option(
        None, doc="camera setup: a name in config/cameras/ or a path to a YAML file"
    )
    model: str | None = option(
        None, doc="model configuration: a name in config/model/ or a path to a YAML file"
    )

    def __post_init__(self):
        if not self.nodes:
            raise InvalidFieldError("nodes", "at least one node")
        names = [n.name for n in self.nodes]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise InvalidFieldError(f"nodes[{i}].name", "a node name unique in the graph", name)
        for i, node in enumerate(self.nodes):
            for kind in node.configs:
                if getattr(self, kind) is None:
                    raise InvalidFieldError(
                        f"nodes[{i}].configs",
                        f"a '{kind}' configuration named at the top of the graph, since node "
                        f"'{node.name}' asks for it",
                        kind,
                    )


def _is_parameter_value(value: Any) -> bool:
    scalar = (bool, int, float, str)
    if isinstance(value, scalar):
        return True
    if isinstance(value, list) and value:
        kinds = {bool if isinstance(v, bool) else type(v) for v in value}
        return all(isinstance(v, scalar) for v in value) and (
            len(kinds) == 1 or kinds == {int, float}
        )
    return False
