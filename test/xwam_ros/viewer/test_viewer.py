"""The viewer without a browser: a recorded rosbag2 bag replayed into a Rerun recording (read
back with Rerun's own dataframe API), what a bag without the topics and a port in use are
told, and which topics a graph gives."""

import socket
import subprocess
import sys

import numpy as np
import pytest
import rerun as rr
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, String

from xwam_msgs.msg import ActionChunk, PolicyStatus
from xwam_ros.config.robot import load_robot_config
from xwam_ros.conversions.images import depth_to_image, rgb_to_image
from xwam_ros.executor.kinematics import RobotKinematics
from xwam_ros.graph import describe_graph
from xwam_ros.imagination import ViewGeometry, imagined_messages
from xwam_ros.recording import message_types
from xwam_ros.robot_state import RobotStateModel, transform_message
from xwam_ros.viewer.bag import replay_bag
from xwam_ros.viewer.bridge import RerunBridge, cloud_fields
from xwam_ros.viewer.ports import ViewerError
from xwam_ros.viewer.server import serve
from xwam_ros.viewer.topics import viewer_topics

READY = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])
K = np.array([[50.0, 0.0, 16.0], [0.0, 50.0, 16.0], [0.0, 0.0, 1.0]])
S = 1_000_000_000
RGBD = ("rgb", "depth")


def header(ns: int, frame: str = "") -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = divmod(ns, S)
    return h


def episode(topics) -> list[tuple[str, str, int, object]]:
    """(topic, msgtype, receive ns, message) of two seconds of a policy loop in sim time."""
    from tf2_msgs.msg import TFMessage

    robot, setup = topics.robot, topics.setup
    names = [*robot.joint_names, "panda_finger_joint1"]
    model = RobotStateModel(robot.arms[0])
    out = []
    static = [transform_message(t, header(0).stamp) for t in model.static_transforms()]
    out.append(("/tf_static", "tf2_msgs/msg/TFMessage", 0, TFMessage(transforms=static)))
    for k in range(40):  # 20 Hz of joint states and transforms
        ns = k * S // 20
        q = READY + 0.01 * k
        joint = JointState(header=header(ns), name=names, position=[*q, 0.04])
        out.append(("/joint_states", "sensor_msgs/msg/JointState", ns, joint))
        moving = model.moving_transforms(dict(zip(names, joint.position)))
        tf = TFMessage(transforms=[transform_message(t, header(ns).stamp) for t in moving])
        out.append(("/tf", "tf2_msgs/msg/TFMessage", ns, tf))
    for view in setup.views:
        rgb = np.full((32, 32, 3), 100, np.uint8)
        depth = np.full((32, 32), 0.7, np.float32)
        frame = header(S // 2, view.optical_frame)
        out.append((view.image_topic, "sensor_msgs/msg/Image", S // 2, rgb_to_image(rgb, frame)))
        out.append(
            (view.depth_topic, "sensor_msgs/msg/Image", S // 2, depth_to_image(depth, frame))
        )
    views = tuple(v.name for v in setup.ordered_views)
    ee = np.array([RobotKinematics(robot).ee_poses(READY)[0].translation] * 3)
    msgs = imagined_messages(
        view_names=views,
        rgb=np.full((len(views), 3, 32, 32, 3), 80, np.uint8),
        depth=np.full((len(views), 3, 32, 32), 0.8, np.float32),
        geometry={
            v.name: ViewGeometry(v.optical_frame, K, np.repeat(v.extrinsics.matrix()[None], 3, 0))
            for v in setup.ordered_views
        },
        observation_stamp_ns=S,
        frame_period_s=0.2,
        base_frame=robot.frame_id,
        ee_positions=ee,
    )
    model_node = topics.model_node
    for name in views:
        for f in range(3):
            for what, images in (("rgb", msgs.rgb), ("depth", msgs.depth)):
                topic = f"{model_node}/imagined/{name}/{what}"
                out.append((topic, "sensor_msgs/msg/Image", S + S // 10, images[name][f]))
    out.append(
        (f"{model_node}/imagined/points", "sensor_msgs/msg/PointCloud2", S + S // 10, msgs.cloud)
    )
    out.append(
        (
            f"{model_node}/imagined/ee_path",
            "visualization_msgs/msg/MarkerArray",
            S + S // 10,
            msgs.ee_path,
        )
    )
    chunk = ActionChunk(header=header(S), chunk_id=1, action_space="ee_delta", decode_latency=0.4)
    out.append((f"{model_node}/action_chunk", "xwam_msgs/msg/ActionChunk", S + S // 2, chunk))
    status = PolicyStatus(
        header=header(S + S // 2),
        refusal_kinds=["stale"],
        refusal_counts=[2],
        observations_refused=2,
        last_refusal_reason="joint_states stale",
    )
    out.append((f"{model_node}/status", "xwam_msgs/msg/PolicyStatus", S + S // 2, status))
    return sorted(out, key=lambda row: row[2])


def write_bag(path, rows) -> None:
    store = message_types.type_store()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, ns, message in rows:
            if topic not in connections:
                message_types.ensure_registered(store, msgtype)
                connections[topic] = writer.add_connection(topic, msgtype, typestore=store)
            writer.write(connections[topic], ns, serialize_message(message))


def recorded_entities(path) -> set[str]:
    schema = rr.dataframe.load_recording(str(path)).schema()
    return {column.entity_path for column in schema.component_columns()}


def test_a_bag_replays_into_every_entity(tmp_path):
    topics = viewer_topics(describe_graph("demo"))
    bag = tmp_path / "episode"
    rows = episode(topics)
    write_bag(bag, rows)
    recording = rr.RecordingStream("xwam_test", recording_id="bag-test")
    rrd = tmp_path / "replay.rrd"
    recording.save(str(rrd))
    warnings: list[str] = []
    summary = replay_bag(bag, topics, RerunBridge(recording, topics, warn=warnings.append))
    recording.flush()
    del recording
    assert warnings == []
    assert sum(summary.messages.values()) == len(rows)
    entities = recorded_entities(rrd)
    views = [v.name for v in topics.setup.views]
    expected = {
        *(
            f"/{kind}/{v}/{w}"
            for kind in ("observed", "imagined")
            for v in views
            for w in ("rgb", "depth")
        ),
        "/world/imagined_points",
        "/world/ee_predicted",
        "/world/ee_executed",
        "/world/chunk_starts",
        "/world/robot",
        "/policy/decode_latency_ms",
        "/policy/chunk_id",
        "/refusals/model/stale",
        "/refusals/model/total",
        "/log",
    }
    assert expected <= entities, sorted(expected - entities)
    # The imagined cloud is split by its `t`: one Points3D per imagined step, at its time.
    view = rr.dataframe.load_recording(str(rrd)).view(
        index="time", contents="/world/imagined_points"
    )
    times = view.select().read_all().column("time").cast("int64").to_pylist()  # ns
    offsets = sorted({float(t) for t in cloud_fields(rows_of(rows, "points"))["t"]})
    assert len(times) == len(offsets) == 3
    assert [t / S for t in times] == pytest.approx([1.0 + o for o in offsets], abs=1e-6)


def rows_of(rows, suffix):
    return next(message for topic, _, _, message in rows if topic.endswith(suffix))


def test_a_bag_without_the_topics_names_what_it_has(tmp_path):
    topics = viewer_topics(describe_graph("demo"))
    bag = tmp_path / "other"
    write_bag(bag, [("/chatter", "std_msgs/msg/String", 1, String(data="hello"))])
    recording = rr.RecordingStream("xwam_test")
    with pytest.raises(ViewerError, match=r"has none of the topics .* it has: /chatter"):
        replay_bag(bag, topics, RerunBridge(recording, topics))
    with pytest.raises(ViewerError, match="cannot open the bag"):
        replay_bag(tmp_path / "missing", topics, RerunBridge(recording, topics))


def test_a_port_in_use_is_named():
    topics = viewer_topics(describe_graph("demo"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            ViewerError, match=rf"port {port} for the stream .* in use.*--grpc-port"
        ):
            serve(topics, web_port=port + 1 if port < 65535 else port - 1, grpc_port=port)


def test_xwam_view_says_why_it_cannot_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "xwam_ros.cli", "view", "bringup"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "graph 'bringup'" in result.stderr and "has no model node" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "xwam_ros.cli", "view", "--bag", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_topics_follow_the_graphs_configurations():
    topics = viewer_topics(describe_graph("robot", {"cameras": "two_cameras"}))
    names = topics.by_name()
    assert "/front/color/image_raw" in names and "/xwam_model/imagined/front/rgb" in names
    assert names["/xwam_executor/status"].kind == "executor_status"
    assert topics.robot.name == load_robot_config(topics_robot_path()).name


def topics_robot_path():
    return describe_graph("robot").node("xwam_model").parameters["robot_config"]
