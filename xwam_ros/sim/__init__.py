"""The embedded simulated arm: robosuite (MuJoCo) wrapped to behave like a ros2_control arm.

- `trajectory_tracker`: joint_trajectory_controller semantics, pure Python;
- `environment`: the robosuite Panda task driven by joint and finger positions;
- `rendering`: fast offscreen camera images, right way up, metric depth, intrinsics;
- `pacing`: simulated time capped at a real-time factor, the factor achieved measured.

The ROS node is `xwam_ros.nodes.sim_arm`.
"""

import os

# CPU rendering through EGL works headless here and on most machines; set before MuJoCo loads.
os.environ.setdefault("MUJOCO_GL", "egl")
