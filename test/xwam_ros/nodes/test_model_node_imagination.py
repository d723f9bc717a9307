"""Imaginations that land: on a node whose decodes come faster than an imagination takes, each
imagination is deferred for the due decodes, a piece at a time, and lands; none is abandoned
and no decode waits for one. Real DDS, the real tiny policy (its video schedule made long),
cameras and joint states from the sensor-rig peer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from xwam_testing.ros import Peer

from xwam_msgs.msg import ActionChunk, ChunkRequest, PolicyStatus
from xwam_ros.paths import config_dir

CONFIG = config_dir()
CAMERAS = CONFIG / "cameras" / "two_cameras.yaml"
VIDEO_STEPS = 60  # tiny's 6 made many: an imagination outlasts the decode period
DECODE_PERIOD = 0.3


@pytest.mark.ros
def test_imaginations_are_deferred_for_due_decodes_and_land(ros_node, tmp_path):
    text = (CONFIG / "model" / "tiny.yaml").read_text()
    assert "video_steps: 6\n" in text and "imagine_every_n_chunks: 1\n" in text
    model_yaml = tmp_path / "tiny_long_imagination.yaml"
    model_yaml.write_text(text.replace("video_steps: 6\n", f"video_steps: {VIDEO_STEPS}\n"))
    model = Peer.node(
        "xwam_ros.nodes.model_node",
        robot_config=CONFIG / "robots" / "panda.yaml",
        cameras_config=CAMERAS,
        model_config=model_yaml,
        decode_period=DECODE_PERIOD,
        status_period=0.1,
    )
    rig = Peer(
        "--cameras", str(CAMERAS), "--camera-rate", "10", module="xwam_testing.peers.sensor_rig"
    )
    node = ros_node.node("listener")
    statuses: list[PolicyStatus] = []
    arrivals: list[float] = []
    landed_at: list[float] = []  # when the first imagination was seen landed

    def on_status(msg: PolicyStatus) -> None:
        statuses.append(msg)
        if msg.imaginations_completed and not landed_at:
            landed_at.append(time.monotonic())

    node.create_subscription(PolicyStatus, "/xwam_model/status", on_status, 10)
    node.create_subscription(
        ActionChunk, "/xwam_model/action_chunk", lambda _: arrivals.append(time.monotonic()), 10
    )
    try:
        with rig:
            landed = ros_node.spin_until(
                lambda: statuses and statuses[-1].imaginations_completed >= 2, 120
            )
            assert landed, f"imaginations: {statuses[-1:]}"
            ros_node.spin_for(10 * DECODE_PERIOD)  # decodes while imaginations go on
            last = statuses[-1]
            assert last.imaginations_abandoned == 0, last
            # Each imagination spans several decodes (with one per chunk, chunks would equal
            # imaginations), and the decodes kept their period once running (the rig's first
            # frames come with gaps of their own): no gap between two chunks comes near the
            # time an imagination took.
            assert last.chunks_published >= 2 * last.imaginations_completed, last
            gaps = np.diff([t for t in arrivals if t >= landed_at[0]])
            assert len(gaps) >= 2 and gaps.max() < last.last_imagine_latency, (
                gaps,
                last.last_imagine_latency,
            )
    finally:
        code, output = model.stop()
        print(output[-3000:])
    assert code == 0, output[-4000:]
    # Before its first observation the node decoded and imagined a blank one, so its first
    # imagination was planned with measured pieces.
    warmed = next(line for line in output.splitlines() if "warmed up in" in line)
    assert all(f"{kind} " in warmed for kind in ("pass", "rgb", "depth")), warmed


def _decode_bound_run(
    ros_node,
    tmp_path,
    delay: float,
    chunks_wanted: int = 25,
):
    """The tiny policy (a long video schedule) driven as a decode-bound executor drives it:
    the next decode asked for as soon as each chunk arrives, with nothing left of the
    executing chunk (time_left 0). Its chunks and last status."""
    text = (CONFIG / "model" / "tiny.yaml").read_text()
    text = text.replace("video_steps: 6\n", "video_steps: 30\n")
    model_yaml = tmp_path / f"tiny_delay_{delay}.yaml"
    # Only the delay: no piece per chunk in any case (the test's comparison).
    model_yaml.write_text(text + f"imagination_delay: {delay}\nimagination_pieces_per_chunk: 0\n")
    model = Peer.node(
        "xwam_ros.nodes.model_node",
        robot_config=CONFIG / "robots" / "panda.yaml",
        cameras_config=CAMERAS,
        model_config=model_yaml,
        status_period=0.1,
    )
    rig = Peer(
        "--cameras", str(CAMERAS), "--camera-rate", "10", module="xwam_testing.peers.sensor_rig"
    )
    node = ros_node.node(f"executor_stand_in_{round(delay * 1000)}")
    requests = node.create_publisher(ChunkRequest, "/xwam_executor/chunk_request", 10)
    chunks: list[ActionChunk] = []
    statuses: list[PolicyStatus] = []

    last_arrival = [time.monotonic()]

    def request(chunk_id: int) -> None:
        requests.publish(
            ChunkRequest(current_chunk_id=chunk_id, time_left=0.0, expected_decode_latency=0.1)
        )

    def on_chunk(msg: ActionChunk) -> None:
        chunks.append(msg)
        last_arrival[0] = time.monotonic()
        request(msg.chunk_id)

    def idle_request() -> None:  # as the executor does while nothing executes
        if time.monotonic() - last_arrival[0] > 0.5:
            request(chunks[-1].chunk_id if chunks else 0)

    node.create_subscription(ActionChunk, "/xwam_model/action_chunk", on_chunk, 10)
    node.create_timer(0.5, idle_request)
    node.create_subscription(PolicyStatus, "/xwam_model/status", statuses.append, 10)
    try:
        with rig:
            assert ros_node.spin_until(lambda: len(chunks) >= chunks_wanted, 120), statuses[-1:]
            ros_node.spin_for(0.3)  # the status after the last chunk
    finally:
        code, output = model.stop()
        print(output[-3000:])
    assert code == 0, output[-4000:]
    ros_node.executor.remove_node(node)
    return chunks, statuses[-1]


@pytest.mark.ros
def test_where_decodes_leave_no_time_an_imagination_delay_buys_imaginations(ros_node, tmp_path):
    """Decodes leave no time between chunks. Without an `imagination_delay` (and no piece
    per chunk in any case) a requested decode waits for at most the piece running when the
    request came (imaginations land only through the moments before each request arrives);
    with one, more imaginations land, paid for by decodes held back by at most the delay and
    one piece."""
    free, free_status = _decode_bound_run(ros_node, tmp_path, 0.0)
    paid, paid_status = _decode_bound_run(ros_node, tmp_path, 0.4)
    assert paid_status.imaginations_completed > free_status.imaginations_completed, (
        free_status,
        paid_status,
    )
    # A whole imagination (its decode's start to its publication) bounds any one piece.
    assert max(c.decode_latency for c in paid) <= 0.4 + paid_status.last_imagine_latency, (
        [round(c.decode_latency, 3) for c in paid],
        paid_status.last_imagine_latency,
    )
    assert np.median([c.decode_latency for c in paid]) > np.median([c.decode_latency for c in free])
