"""The node graph: described once in Python from YAML, launched by ros2 launch or `xwam launch`."""

from xwam_ros.graph.description import GraphDescription, NodeSpec, describe_graph, resolve_config

__all__ = ["GraphDescription", "NodeSpec", "describe_graph", "resolve_config"]
