"""When the model node runs the next piece of an imagination (`ModelNode._why_piece_runs`): the
rule between the imagined future and the next decode, on a real node in this process (the
tiny policy, no warm-up, paused), its timing state set as a running loop leaves it."""

from __future__ import annotations

import contextlib
import time

import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter

from xwam_ros.nodes.model_node import Imagination, ModelNode
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
    # The test takes the worker's place: it alone touches the policy and the piece state.
    node._shutdown.set()
    node._worker.join()
    return node, context


@contextlib.contextmanager
def _imagining(tmp_path, **model_changes):
    """A node (as `_node`) running, with a real imagination of a blank observation in
    progress (nothing of it run yet)."""
    node, context = _node(tmp_path, **model_changes)
    try:
        run = node._begin_blank()  # the tiny policy
        node._imagination = Imagination(
            run.imagine_steps(run_depth=False), node._epoch, run.decode_actions(), None, None, 0
        )
        node.run_state.start()  # so the imagination stays current
        node._shutdown.clear()
        yield node
    finally:
        node._drop_imagination(count=False)
        node._shutdown.set()
        node.destroy_node()
        rclpy.shutdown(context=context)


def _loop_state(node: ModelNode, left_s: float, owed: int = 0) -> None:
    """Decodes of 0.2 s, pieces of 0.3 s, `left_s` left of the executing chunk, `owed`
    pieces owed since the last chunk."""
    node._decode_seconds.extend([0.2] * 5)
    node._piece_seconds["rgb"] = type(node._decode_seconds)([0.3] * 5)
    node._executing_end_ns = node._now_ns() + round(left_s * 1e9)
    node._owed_pieces = owed


def test_pieces_fit_where_the_chunk_leaves_time_and_owed_ones_run_in_any_case(tmp_path):
    node, context = _node(tmp_path, imagination_pieces_per_chunk=1)
    try:
        lead = node.robot.timing.min_lead_time + node.robot.control_period
        # Time for the piece, the decode and the lead: it runs, due decode or not.
        _loop_state(node, 0.3 + 0.2 + lead + 0.05)
        assert node._why_piece_runs("rgb", decode_due=True) == "fits"
        # Not enough: the decode goes first...
        _loop_state(node, 0.3 + 0.2 + lead - 0.05)
        assert node._why_piece_runs("rgb", decode_due=True) is None
        # ...unless a piece is owed: then it runs, even with no time left.
        _loop_state(node, 0.0, owed=1)
        assert node._why_piece_runs("rgb", decode_due=True) == "owed"
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.parametrize(
    "wanted,in_progress,fitted,owed",
    [
        (1, True, 0, 1),  # nothing fitted between the two chunks: one is owed
        (1, True, 1, 0),  # one fitted: nothing is forced on the next decode
        (2, True, 1, 1),
        (1, False, 0, 0),  # no imagination was in progress: it owes nothing
        (0, True, 0, 0),
    ],
)
def test_a_chunk_settles_the_pieces_owed_from_those_that_fitted_before_it(
    tmp_path, wanted, in_progress, fitted, owed
):
    node, context = _node(tmp_path, imagination_pieces_per_chunk=wanted)
    try:
        node._imagination = object() if in_progress else None
        node._fitted_since_chunk, node._owed_pieces = fitted, 5
        node._settle_pieces_at_chunk()
        assert (node._owed_pieces, node._fitted_since_chunk) == (owed, 0)
    finally:
        node._imagination = None
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_an_owed_piece_does_not_count_as_fitted(tmp_path):
    # Where nothing ever fits, every chunk owes a piece (not every other one).
    with _imagining(tmp_path, imagination_pieces_per_chunk=1) as node:
        _loop_state(node, 0.0, owed=1)
        node._advance_imagination("owed")  # starting the generator: no work, owes on
        assert node._owed_pieces == 1
        node._advance_imagination("owed")  # a pass
        assert (node._owed_pieces, node._fitted_since_chunk) == (0, 0)
        assert node._why_piece_runs(node._imagination.next_piece, decode_due=True) is None
        node._settle_pieces_at_chunk()
        assert node._owed_pieces == 1


def test_only_pieces_planned_before_the_deadline_leave_the_reported_latency(tmp_path):
    # The executor plans its requests with the latency reported: a piece that fitted after
    # the request is the model's choice (the chunk still lands in time), an owed one is not.
    with _imagining(tmp_path, imagination_pieces_per_chunk=1) as node:
        node._advance_imagination("fits")  # starting the generator, before any request
        node._requested_at = time.perf_counter()
        node._advance_imagination("fits")  # a pass, after the request
        fitted = node._fitted_since_request
        assert fitted > 0 and fitted <= time.perf_counter() - node._requested_at
        node._owed_pieces = 1
        node._advance_imagination("owed")
        node._advance_imagination("idle")  # no deadline known: not planned either
        assert node._fitted_since_request == fitted


def test_without_a_piece_per_chunk_nothing_runs_when_no_time_is_left(tmp_path):
    node, context = _node(tmp_path, imagination_pieces_per_chunk=0)
    try:
        _loop_state(node, 0.0)
        node._imagination = object()
        node._settle_pieces_at_chunk()
        assert node._why_piece_runs("rgb", decode_due=True) is None
    finally:
        node._imagination = None
        node.destroy_node()
        rclpy.shutdown(context=context)
