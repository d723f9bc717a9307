"""The episode bag writer: standard rosbag2 v9 metadata, exact bytes, splits, crash safety.

Read back with rosbags (the writer's own library) and with the `mcap` package (an
independent MCAP implementation, as rosbag2's storage plugin is).
"""

import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore
from xwam_testing.ros import Peer

from xwam_ros.recording import message_types
from xwam_ros.recording.bag_writer import BagWriteError, EpisodeBagWriter, read_metadata
from xwam_ros.recording.episode_info import EpisodeInfo, EpisodeInfoError

STORE = get_typestore(Stores.ROS2_KILTED)
JOINT_STATE = "sensor_msgs/msg/JointState"
CHUNK = "xwam_msgs/msg/ActionChunk"


def joint_state(value: float) -> bytes:
    types = STORE.types
    msg = types[JOINT_STATE](
        header=types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=int(value), nanosec=7), frame_id="b"
        ),
        name=["j1", "j2"],
        position=np.array([value, -value]),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )
    return bytes(STORE.serialize_cdr(msg, JOINT_STATE))


def read_all(bag: Path) -> list[tuple[str, int, bytes]]:
    with Reader(bag) as reader:
        return [(c.topic, t, bytes(d)) for c, t, d in reader.messages()]


def test_bag_round_trip_with_splits_and_custom_data(tmp_path):
    info = EpisodeInfo(instruction="stack the cubes", tags=["sim", "op:ann"], robot="panda")
    writer = EpisodeBagWriter(tmp_path / "ep", info, split_period=0.05)
    joints = writer.add_topic("/joint_states", JOINT_STATE, *message_types.definition(JOINT_STATE))
    written = []
    for i in range(12):
        data = joint_state(float(i))
        writer.write(joints, 1_000 + i, data)
        written.append(("/joint_states", 1_000 + i, data))
        time.sleep(0.01)
        if i == 5:  # a topic appearing mid-episode (its publisher started late)
            chunks = writer.add_topic(
                "/xwam_model/action_chunk", CHUNK, *message_types.definition(CHUNK)
            )
    writer.update_info(success=True, notes="clean grasp")
    summary = writer.close()

    assert summary.message_count == 12 and len(summary.files) >= 2
    assert read_all(tmp_path / "ep") == written  # exact bytes, in order, across the splits
    with Reader(tmp_path / "ep") as reader:
        back = EpisodeInfo.from_custom_data(reader.storage.metadata.custom)
        topics = {c.topic: (c.msgtype, c.digest, c.msgcount) for c in reader.connections}
    assert back == EpisodeInfo(
        "stack the cubes", ["sim", "op:ann"], True, "clean grasp", "complete", robot="panda"
    )
    assert topics["/joint_states"] == (JOINT_STATE, message_types.definition(JOINT_STATE)[1], 12)
    assert topics["/xwam_model/action_chunk"][2] == 0 and chunks == 2

    meta = read_metadata(tmp_path / "ep")  # what `ros2 bag info` reads
    assert meta["version"] == 9 and meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == [f["path"] for f in meta["files"]] == summary.files
    assert sum(f["message_count"] for f in meta["files"]) == meta["message_count"] == 12
    assert meta["duration"]["nanoseconds"] == 11
    assert meta["starting_time"]["nanoseconds_since_epoch"] == 1_000

    count = 0
    for name in summary.files:  # each split is a complete MCAP file of its own
        with open(tmp_path / "ep" / name, "rb") as stream:
            reader = make_reader(stream)
            assert reader.get_header().profile == "ros2"
            count += sum(1 for _ in reader.iter_messages())
    assert count == 12


def test_metadata_has_the_layout_rosbags_own_writer_gives(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer

    with Writer(tmp_path / "reference", version=9, storage_plugin=StoragePlugin.MCAP) as ref:
        connection = ref.add_connection("/joint_states", JOINT_STATE, typestore=STORE)
        ref.set_custom_data("key", "value")
        ref.write(connection, 5, joint_state(1.0))
    ours = EpisodeBagWriter(tmp_path / "ours", EpisodeInfo(), split_period=10.0)
    ours.write(
        ours.add_topic("/joint_states", JOINT_STATE, *message_types.definition(JOINT_STATE)),
        5,
        joint_state(1.0),
    )
    ours.close()

    def layout(value):
        if isinstance(value, dict):
            return {k: layout(v) for k, v in value.items() if k != "custom_data"}
        if isinstance(value, list):
            return [layout(v) for v in value]
        return type(value).__name__

    reference, written = read_metadata(tmp_path / "reference"), read_metadata(tmp_path / "ours")
    assert layout(written) == layout(reference)
    assert written["topics_with_message_count"] == reference["topics_with_message_count"]


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "ep").mkdir()
    with pytest.raises(BagWriteError, match="exists already"):
        EpisodeBagWriter(tmp_path / "ep", EpisodeInfo())


def test_metadata_exists_from_the_start_and_names_the_state(tmp_path):
    writer = EpisodeBagWriter(tmp_path / "ep", EpisodeInfo(instruction="x"), split_period=10.0)
    writer.add_topic("/joint_states", JOINT_STATE, *message_types.definition(JOINT_STATE))
    with Reader(tmp_path / "ep") as reader:  # readable (and empty) before any split closes
        assert reader.message_count == 0
        assert reader.storage.metadata.custom["xwam.state"] == "recording"
    writer.close("interrupted")
    info = EpisodeInfo.from_custom_data(read_metadata(tmp_path / "ep")["custom_data"])
    assert info.state == "interrupted" and not info.complete


def test_custom_data_of_other_bags_is_refused():
    with pytest.raises(EpisodeInfoError, match="not recorded by the xwam recorder"):
        EpisodeInfo.from_custom_data({"operator": "me"}, "some_bag")


def test_a_killed_writer_leaves_a_readable_bag_missing_at_most_one_split(tmp_path):
    split_period = 0.3
    bag = tmp_path / "killed"
    peer = Peer(str(bag), str(split_period), module="xwam_testing.peers.recorder_writer_loop")
    assert peer.process.stdout.readline().strip() == "writing", "the writer did not start"
    time.sleep(2.0)
    peer.process.kill()  # SIGKILL: no handler runs, nothing is closed
    killed_at = time.time_ns()
    peer.stop()

    messages = read_all(bag)
    info = EpisodeInfo.from_custom_data(read_metadata(bag)["custom_data"])
    assert info.state == "recording"  # the bag says it was cut short
    values = [STORE.deserialize_cdr(d, JOINT_STATE).position[0] for _, _, d in messages]
    assert values == list(range(len(values)))  # nothing lost before the last closed split
    lost = (killed_at - messages[-1][1]) * 1e-9
    # The open split (at most split_period) plus the time this process took to notice.
    assert lost < split_period + 0.25, f"lost {lost:.2f} s"
    assert (bag / f"{bag.name}.mcap").exists()  # the split being written, unlisted
    listed = yaml.safe_load((bag / "metadata.yaml").read_text())
    assert f"{bag.name}.mcap" not in listed["rosbag2_bagfile_information"]["relative_file_paths"]
