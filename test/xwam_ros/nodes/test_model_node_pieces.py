"""When the model node runs the next piece of an imagination (`ModelNode._piece_fits`): the
rule between the imagined future and the next decode, on a real node in this process (the
tiny policy, no warm-up, paused), its timing state set as a running loop leaves it."""

from __future__ import annotations

import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter

from xwam_ros.nodes.model_node import ModelNode
from xwam_ros.paths import config_dir

CONFIG = config_dir()
pytestmark = pytest.mark.ros


def _node(tmp_path, **model_changes) -> tuple[ModelNode, rclpy.Context]:
    data = yaml.safe_load((CONFIG / "model" / "tiny.yaml").read_text())
    data.update(model_changes)
    model_yaml = tmp_path / "model.yaml"
    model_yaml.write_text(yaml.safe_dump(data))
    parameters = {
        "robot_config": str(CONFIG / "robots" / "panda.yaml"),
        "cameras_config": str(CONFIG / "cameras" / "two_cameras.yaml"),
        "model_config": str(model_yaml),
        "autostart": False,
        "warm_up": False,
    }
    context = rclpy.Context()
    rclpy.init(context=context)
    node = ModelNode(
        context=context,
        parameter_overrides=[Parameter(name, value=value) for name, value in parameters.items()],
    )
    return node, context


def _loop_state(node: ModelNode, left_s: float, pieces_since_chunk: int) -> None:
    """Decodes of 0.2 s, pieces of 0.3 s, `left_s` left of the executing chunk."""
    node._decode_seconds.extend([0.2] * 5)
    node._piece_seconds["rgb"] = type(node._decode_seconds)([0.3] * 5)
    node._executing_end_ns = node._now_ns() + round(left_s * 1e9)
    node._pieces_since_chunk = pieces_since_chunk


def test_pieces_fit_where_the_chunk_leaves_time_and_one_per_chunk_runs_in_any_case(tmp_path):
    node, context = _node(tmp_path, imagination_pieces_per_chunk=1)
    try:
        lead = node.robot.timing.min_lead_time + node.robot.control_period
        # Time for the piece, the decode and the lead: it runs, due decode or not.
        _loop_state(node, 0.3 + 0.2 + lead + 0.05, pieces_since_chunk=1)
        assert node._piece_fits("rgb", decode_due=True)
        # Not enough: the decode goes first...
        _loop_state(node, 0.3 + 0.2 + lead - 0.05, pieces_since_chunk=1)
        assert not node._piece_fits("rgb", decode_due=True)
        # ...unless no piece ran since the last chunk: then one does, even with no time left.
        _loop_state(node, 0.0, pieces_since_chunk=0)
        assert node._piece_fits("rgb", decode_due=True)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_without_a_piece_per_chunk_nothing_runs_when_no_time_is_left(tmp_path):
    node, context = _node(tmp_path, imagination_pieces_per_chunk=0)
    try:
        _loop_state(node, 0.0, pieces_since_chunk=0)
        assert not node._piece_fits("rgb", decode_due=True)
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
