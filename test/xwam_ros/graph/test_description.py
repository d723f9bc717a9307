"""The graph description: shipped graphs load; bad graphs are refused precisely."""

import pytest

from xwam_ros.config import ConfigError
from xwam_ros.graph import describe_graph
from xwam_ros.graph.executables import EXECUTABLES
from xwam_ros.paths import config_dir


@pytest.mark.parametrize("name", sorted(p.stem for p in (config_dir() / "graphs").glob("*.yaml")))
def test_every_shipped_graph_describes(name):
    graph = describe_graph(name)
    assert graph.nodes
    for node in graph.nodes:
        assert node.module == EXECUTABLES[node.executable].module
        assert node.available == EXECUTABLES[node.executable].available


def test_bringup_graph_nodes_and_parameters():
    graph = describe_graph("bringup")
    assert [n.name for n in graph.nodes] == ["chunk_generator", "xwam_monitor"]
    generator = graph.nodes[0]
    assert generator.parameters["joint_names"][0] == "panda_joint1"
    assert len(generator.parameters["center"]) == 7
    assert all(n.available for n in graph.nodes)


def write_graph(tmp_path, text):
    path = tmp_path / "g.yaml"
    path.write_text(text)
    return path


def test_configs_are_passed_as_path_parameters_and_overridable(tmp_path):
    robot = tmp_path / "arm.yaml"
    robot.write_text("name: arm\n")
    other = tmp_path / "other_arm.yaml"
    other.write_text("name: other\n")
    path = write_graph(
        tmp_path,
        f"description: d\nrobot: {robot}\nnodes:\n"
        "  - {name: m, executable: monitor, configs: [robot],\n"
        "     remappings: {/joint_states: /arm/joint_states}}\n",
    )
    node = describe_graph(path).nodes[0]
    assert node.parameters == {"robot_config": str(robot)}
    assert node.remappings == (("/joint_states", "/arm/joint_states"),)
    assert describe_graph(path, {"robot": str(other)}).nodes[0].parameters == {
        "robot_config": str(other)
    }


def test_a_missing_configuration_of_a_node_that_starts_is_refused(tmp_path):
    path = write_graph(
        tmp_path,
        "description: d\nrobot: no_such_robot\nnodes:\n"
        "  - {name: m, executable: monitor, configs: [robot]}\n",
    )
    with pytest.raises(ConfigError, match="no_such_robot.yaml"):
        describe_graph(path)


@pytest.mark.parametrize(
    "nodes,key,expected",
    [
        ("  - {name: m, executable: teleporter}\n", "nodes[0].executable", "xwam_ros executables"),
        ("  - {name: 9m, executable: monitor}\n", "nodes[0].name", "ROS node name"),
        (
            "  - {name: m, executable: monitor}\n  - {name: m, executable: monitor}\n",
            "nodes[1].name",
            "unique",
        ),
        (
            "  - {name: m, executable: monitor, configs: [model]}\n",
            "nodes[0].configs",
            "'model' configuration",
        ),
        (
            "  - {name: m, executable: monitor, parameters: {gains: {a: 1}}}\n",
            "nodes[0].parameters.gains",
            "ROS parameter value",
        ),
        (
            "  - {name: m, executable: monitor, parameters: {mixed: [1, a]}}\n",
            "nodes[0].parameters.mixed",
            "ROS parameter value",
        ),
    ],
)
def test_bad_graphs_are_refused(tmp_path, nodes, key, expected):
    path = write_graph(tmp_path, "description: d\nnodes:\n" + nodes)
    with pytest.raises(ConfigError) as info:
        describe_graph(path)
    assert info.value.key == key
    assert expected in str(info.value)


def test_unknown_graph_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"one of \[.*'bringup'.*\]"):
        describe_graph("no_such_graph")
