"""The recorder node over real DDS: synthetic robot topics from one process, the recorder in
another, its services called from this one; the bags are read back with rosbags."""

import time

import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from xwam_testing.ros import Peer

from xwam_msgs.srv import StartEpisode, StopEpisode
from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.paths import config_dir
from xwam_ros.recording.bag_writer import read_metadata
from xwam_ros.recording.episode_info import EpisodeInfo
from xwam_ros.recording.message_types import deserialize

pytestmark = pytest.mark.ros

SETUP = load(CameraSetup, config_dir() / "cameras" / "two_cameras.yaml")
SPLIT_PERIOD = 0.5
NODE = "/xwam_recorder"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """Synthetic publishers, a recorder, and a client node (in this process)."""
    from xwam_testing.ros import RosTestContext

    folder = tmp_path_factory.mktemp("recorder")
    config = folder / "recorder.yaml"
    config.write_text(
        "description: recorder test\n"
        f"output_dir: {folder / 'bags'}\n"
        f"split_period: {SPLIT_PERIOD}\n"
        "discovery_period: 0.2\n"
        "extra_topics: [{topic: /robot_description, type: std_msgs/msg/String}]\n"
    )
    publishers = Peer(module="xwam_testing.peers.recorder_publishers")
    recorder = Peer(
        "--ros-args",
        "-p",
        f"recorder_config:={config}",
        "-p",
        f"robot_config:={config_dir() / 'robots' / 'panda.yaml'}",
        "-p",
        f"cameras_config:={config_dir() / 'cameras' / 'two_cameras.yaml'}",
        module="xwam_ros.nodes.recorder",
    )
    try:
        with RosTestContext() as ctx:
            node = ctx.node("recorder_client")
            start = node.create_client(StartEpisode, f"{NODE}/start_episode")
            stop = node.create_client(StopEpisode, f"{NODE}/stop_episode")
            assert start.wait_for_service(timeout_sec=30.0), "the recorder did not come up"
            yield ctx, start, stop, recorder
    finally:
        publishers.stop()
        code, output = recorder.stop()
        print(output)


def call(ctx, client, request):
    future = client.call_async(request)
    assert ctx.spin_until(future.done, 20.0), "no answer from the recorder"
    return future.result()


def messages(bag):
    with Reader(bag) as reader:
        return [(c.topic, c.msgtype, t, d) for c, t, d in reader.messages()]


def test_episodes_are_recorded_with_their_description(rig):
    ctx, start, stop, _ = rig
    assert not call(ctx, stop, StopEpisode.Request()).success  # nothing to stop yet
    time.sleep(1.0)  # the recorder subscribes when it sees the publishers
    started = call(ctx, start, StartEpisode.Request(instruction="lift the cube", tags=["a", "b"]))
    assert started.success, started.message
    refused = call(ctx, start, StartEpisode.Request(instruction="again"))
    assert not refused.success and "already recording" in refused.message
    time.sleep(2.0)
    stopped = call(ctx, stop, StopEpisode.Request(success_flag=True, notes="fine"))
    assert stopped.success and stopped.bag_path == started.bag_path, stopped.message

    recorded = messages(stopped.bag_path)
    assert len(recorded) == stopped.message_count > 0
    topics = {topic for topic, *_ in recorded}
    expected = {
        "/joint_states",
        "/joint_trajectory_controller/joint_trajectory",
        "/xwam_model/action_chunk",
    }
    for view in SETUP.views:
        expected |= {view.image_topic, view.camera_info_topic, view.depth_topic}
    assert expected <= topics
    # A latched topic, published once long before the episode, is in the bag.
    descriptions = [
        deserialize(d, t).data for topic, t, _, d in recorded if topic == "/robot_description"
    ]
    assert descriptions == ["<robot name='panda'/>"]
    # The raw wire bytes deserialize exactly (no trailing bytes), with their content.
    frames = []
    for topic, msgtype, _, data in recorded:
        msg = deserialize(data, msgtype)
        if topic == SETUP.views[0].image_topic:
            frames.append(int(msg.data[0]))
            assert np.all(msg.data == msg.data[0]) and msg.encoding == "rgb8"
    assert len(frames) >= 20 and np.all(np.diff(frames) % 256 >= 1)
    joint_stamps = [t for topic, _, t, _ in recorded if topic == "/joint_states"]
    assert len(joint_stamps) >= 60  # 50 Hz for 2 s, reliable
    assert np.all(np.diff(joint_stamps) > 0)

    meta = read_metadata(stopped.bag_path)
    info = EpisodeInfo.from_custom_data(meta["custom_data"])
    assert (info.instruction, info.tags, info.success, info.notes, info.state) == (
        "lift the cube",
        ["a", "b"],
        True,
        "fine",
        "complete",
    )
    assert info.robot == "panda" and info.cameras == "two_cameras"
    qos = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
        for t in meta["topics_with_message_count"]
    }
    assert qos[SETUP.views[0].image_topic][0]["reliability"] == "best_effort"
    assert qos["/joint_states"][0]["reliability"] == "reliable"


def test_a_recorder_killed_mid_episode_leaves_a_readable_bag(rig):
    ctx, start, _, recorder = rig
    started = call(ctx, start, StartEpisode.Request(instruction="interrupted"))
    assert started.success, started.message
    time.sleep(3.0)
    recorder.process.kill()  # SIGKILL
    killed_at = time.time_ns()
    recorded = messages(started.bag_path)
    info = EpisodeInfo.from_custom_data(read_metadata(started.bag_path)["custom_data"])
    assert info.state == "recording" and info.instruction == "interrupted"
    last = max(t for _, _, t, _ in recorded)  # receive time, this machine's wall clock
    lost = (killed_at - last) * 1e-9
    assert lost < SPLIT_PERIOD + 0.3, f"the bag misses the last {lost:.2f} s"
    for _, msgtype, _, data in recorded:
        deserialize(data, msgtype)  # every listed message is whole
