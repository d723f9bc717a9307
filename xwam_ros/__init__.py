"""xwam_ros: the ROS 2 side of xwam.

Thin rclpy nodes and ROS <-> numpy conversions around the policy runtime of `xwam_model`:
observation assembly, the model node, the action executor, the visualiser, the recorder, the
simulated arm and the launcher. Nothing here reaches into model internals.
"""

__version__ = "0.1.0"
