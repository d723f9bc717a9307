"""The launch_ros side: node arguments from the description; launch files well formed.

launch_ros is not installable here, so the launch files are checked for what they call, and
the part they share with `xwam launch` (the description to node arguments) is tested.
"""

import ast
from pathlib import Path

import pytest

from xwam_ros.graph import NodeSpec, describe_graph
from xwam_ros.graph.launch_ros_adapter import GRAPH_ARGUMENTS, node_action_arguments

LAUNCH = Path(__file__).resolve().parents[3] / "launch"


def test_node_arguments_carry_everything_the_description_says(monitor_spec):
    spec = monitor_spec
    assert node_action_arguments(spec) == {
        "package": "xwam_ros",
        "executable": "monitor",
        "name": "mon",
        "namespace": "/arm",
        "output": "screen",
        "emulate_tty": True,
        "parameters": [{"report_period": 1.0}],
        "remappings": [("/joint_states", "/arm/joint_states")],
    }


def test_node_arguments_omit_what_is_empty():
    spec = NodeSpec(name="m", executable="monitor", module="xwam_ros.nodes.monitor")
    assert set(node_action_arguments(spec)) == {
        "package",
        "executable",
        "name",
        "output",
        "emulate_tty",
    }


@pytest.mark.parametrize("path", sorted(LAUNCH.glob("*.launch.py")), ids=lambda p: p.name)
def test_launch_files_describe_a_shipped_graph(path):
    tree = ast.parse(path.read_text())
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    calls = [
        n for n in ast.walk(functions["generate_launch_description"]) if isinstance(n, ast.Call)
    ]
    graph = next(k.value.value for c in calls for k in c.keywords if k.arg == "default_graph")
    assert describe_graph(graph).nodes
    assert set(GRAPH_ARGUMENTS) == {"graph", "robot", "cameras", "model"}
