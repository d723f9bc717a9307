"""Fixtures of the graph tests."""

import pytest

from xwam_ros.graph import NodeSpec


@pytest.fixture
def monitor_spec() -> NodeSpec:
    """A node with a name, a namespace, a parameter and a remapping: everything to carry."""
    return NodeSpec(
        name="mon",
        executable="monitor",
        module="xwam_ros.nodes.monitor",
        namespace="/arm",
        parameters={"report_period": 1.0},
        remappings=(("/joint_states", "/arm/joint_states"),),
    )
