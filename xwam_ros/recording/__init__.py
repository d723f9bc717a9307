"""Episode recording: rosbag2 (MCAP) bags written with rosbags, crash-safe by splitting.

`bag_writer` writes a bag (ROS-free); `episode_info` is the episode description stored in
metadata.yaml's custom_data; `message_types`, `qos` and `topics` are what the recorder node
needs to subscribe and to describe topics in the bag.
"""
