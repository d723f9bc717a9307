"""Writes an episode bag without end until killed (the crash-safety test kills it with SIGKILL).

recorder_writer_loop.py BAG SPLIT_PERIOD
Every 10 ms one JointState is written, stamped with the wall clock; its position[0] counts.
"""

import sys
import time

import numpy as np
from rosbags.typesys import Stores, get_typestore

from xwam_ros.recording import message_types
from xwam_ros.recording.bag_writer import EpisodeBagWriter
from xwam_ros.recording.episode_info import EpisodeInfo

JOINT_STATE = "sensor_msgs/msg/JointState"


def main() -> None:
    bag, split_period = sys.argv[1], float(sys.argv[2])
    store = get_typestore(Stores.ROS2_KILTED)
    JointState = store.types[JOINT_STATE]  # noqa: N806
    Header = store.types["std_msgs/msg/Header"]  # noqa: N806
    Time = store.types["builtin_interfaces/msg/Time"]  # noqa: N806
    writer = EpisodeBagWriter(bag, EpisodeInfo(instruction="killed"), split_period=split_period)
    topic = writer.add_topic("/joint_states", JOINT_STATE, *message_types.definition(JOINT_STATE))
    print("writing", flush=True)
    count = 0
    while True:
        now = time.time_ns()
        msg = JointState(
            header=Header(stamp=Time(sec=now // 10**9, nanosec=now % 10**9), frame_id=""),
            name=["j"],
            position=np.array([float(count)]),
            velocity=np.array([], dtype=np.float64),
            effort=np.array([], dtype=np.float64),
        )
        writer.write(topic, now, store.serialize_cdr(msg, JOINT_STATE))
        count += 1
        time.sleep(0.01)


if __name__ == "__main__":
    main()
