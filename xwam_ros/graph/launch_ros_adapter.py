"""Turn the graph description into launch_ros actions (for `ros2 launch` on a full install).

`node_action_arguments` is plain data and tested here; `generate_launch_description` imports
`launch` and `launch_ros`, which exist only on a full ROS 2 installation.
"""

from __future__ import annotations

from typing import Any

from xwam_ros.graph.description import PACKAGE, NodeSpec, describe_graph
from xwam_ros.paths import fastdds_profile

GRAPH_ARGUMENTS = {
    "graph": "node graph: a name in config/graphs/ or a path to a graph YAML",
    "robot": "robot configuration (name in config/robots/ or path); empty keeps the graph's",
    "cameras": "camera setup (name in config/cameras/ or path); empty keeps the graph's",
    "model": "model configuration (name in config/model/ or path); empty keeps the graph's",
}


def node_action_arguments(spec: NodeSpec) -> dict[str, Any]:
    """Keyword arguments of `launch_ros.actions.Node` for one node of the graph."""
    arguments: dict[str, Any] = {
        "package": PACKAGE,
        "executable": spec.executable,
        "name": spec.name,
        "output": "screen",
        "emulate_tty": True,
    }
    if spec.namespace:
        arguments["namespace"] = spec.namespace
    if spec.parameters:
        arguments["parameters"] = [dict(spec.parameters)]
    if spec.remappings:
        arguments["remappings"] = list(spec.remappings)
    return arguments


def generate_launch_description(default_graph: str):
    """A LaunchDescription running `default_graph` (overridable with `graph:=...`)."""
    from launch.actions import (
        DeclareLaunchArgument,
        LogInfo,
        OpaqueFunction,
        SetEnvironmentVariable,
        Shutdown,
    )
    from launch.substitutions import EnvironmentVariable, LaunchConfiguration
    from launch_ros.actions import Node

    from launch import LaunchDescription

    def nodes_of_graph(context):
        overrides = {
            k: LaunchConfiguration(k).perform(context) for k in GRAPH_ARGUMENTS if k != "graph"
        }
        graph = describe_graph(LaunchConfiguration("graph").perform(context), overrides)
        actions = [
            LogInfo(msg=f"xwam: '{n.name}' is not written yet: {n.planned_in}")
            for n in graph.missing_nodes
        ]
        for spec in graph.available_nodes:
            on_exit = (
                Shutdown(reason=f"required node {spec.name} exited") if spec.required else None
            )
            actions.append(Node(**node_action_arguments(spec), on_exit=on_exit))
        return actions

    arguments = [
        DeclareLaunchArgument(
            name, default_value=default_graph if name == "graph" else "", description=text
        )
        for name, text in GRAPH_ARGUMENTS.items()
    ]
    # Large images and clouds need the shared-memory profile; a user's own profile wins.
    profile = SetEnvironmentVariable(
        "FASTDDS_DEFAULT_PROFILES_FILE",
        EnvironmentVariable("FASTDDS_DEFAULT_PROFILES_FILE", default_value=str(fastdds_profile())),
    )
    return LaunchDescription([*arguments, profile, OpaqueFunction(function=nodes_of_graph)])
