"""Run X-WAM on a real arm: the model node, the executor and the monitor.

    ros2 launch xwam_ros xwam.launch.py robot:=panda cameras:=robocasa model:=paper

Arguments: graph, robot, cameras, model (see config/graphs/robot.yaml for the defaults).
"""

from xwam_ros.graph.launch_ros_adapter import generate_launch_description as _describe


def generate_launch_description():
    return _describe(default_graph="robot")
