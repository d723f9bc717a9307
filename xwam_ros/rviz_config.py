"""The RViz configuration that shows the imagined 4D future of a camera setup.

`config/xwam.rviz` is this module's output for the simulated arm's setup (a test keeps them
equal); `xwam rviz <cameras> [-o file]` writes one for any other setup. Displays: the robot
(RobotModel from `/robot_description`, posed by TF) and its frames (TF), the imagined point
cloud (x y z rgb in the base frame), the predicted end-effector path, and per view the
observed image, the imagined RGB and the imagined depth (32FC1, metres). The sim arm publishes
the description and the transforms itself (`xwam_ros.robot_state`); beside a real arm,
robot_state_publisher does (README, "On a real arm").
"""

from __future__ import annotations

from typing import Any

import yaml

from xwam_ros.config.cameras import CameraSetup

MODEL_NODE = "/xwam_model"


ROBOT_DESCRIPTION = "/robot_description"


def _topic(value: str, reliable: bool = True, latched: bool = False) -> dict[str, Any]:
    return {
        "Depth": 1 if latched else 5,
        "Durability Policy": "Transient Local" if latched else "Volatile",
        "History Policy": "Keep Last",
        "Reliability Policy": "Reliable" if reliable else "Best Effort",
        "Value": value,
    }


def _image(name: str, topic: str, reliable: bool = True, depth: bool = False) -> dict[str, Any]:
    display = {
        "Class": "rviz_default_plugins/Image",
        "Enabled": True,
        "Name": name,
        "Normalize Range": depth,
        "Topic": _topic(topic, reliable),
        "Value": True,
    }
    if depth:
        display.update({"Min Value": 0, "Max Value": 2})
    return display


def rviz_config(setup: CameraSetup, model_node: str = MODEL_NODE) -> dict[str, Any]:
    """The RViz configuration (as a YAML-ready dict) for a camera setup."""
    views = []
    for view in setup.ordered_views:
        imagined = f"{model_node}/imagined/{view.name}"
        views.append(
            {
                "Class": "rviz_common/Group",
                "Enabled": True,
                "Name": f"view {view.name}",
                "Displays": [
                    _image(f"{view.name} observed", view.image_topic, reliable=False),
                    _image(f"{view.name} imagined RGB", f"{imagined}/rgb"),
                    _image(f"{view.name} imagined depth", f"{imagined}/depth", depth=True),
                ],
            }
        )
    displays = [
        {
            "Class": "rviz_default_plugins/Grid",
            "Enabled": True,
            "Name": "Grid",
            "Cell Size": 0.1,
            "Plane Cell Count": 20,
            "Reference Frame": "<Fixed Frame>",
        },
        {
            "Class": "rviz_default_plugins/Axes",
            "Enabled": True,
            "Name": "Base",
            "Length": 0.2,
            "Radius": 0.01,
            "Reference Frame": "<Fixed Frame>",
        },
        {
            "Class": "rviz_default_plugins/RobotModel",
            "Enabled": True,
            "Name": "Robot",
            "Alpha": 1,
            "Visual Enabled": True,
            "Collision Enabled": False,
            "Update Interval": 0,
            "Description Source": "Topic",
            # Transient local, as robot_state_publisher publishes it: RViz started later gets it.
            "Description Topic": _topic(ROBOT_DESCRIPTION, latched=True),
            "TF Prefix": "",
        },
        {
            "Class": "rviz_default_plugins/TF",
            "Enabled": True,
            "Name": "TF",
            "Show Names": False,
            "Show Axes": True,
            "Show Arrows": False,
            "Marker Scale": 0.3,
            "Update Interval": 0,
            "Frame Timeout": 15,
            "Frames": {"All Enabled": True},
        },
        {
            "Class": "rviz_default_plugins/PointCloud2",
            "Enabled": True,
            "Name": "Imagined point cloud",
            "Color Transformer": "RGB8",
            "Position Transformer": "XYZ",
            "Style": "Points",
            "Size (Pixels)": 3,
            "Decay Time": 0,
            "Topic": _topic(f"{model_node}/imagined/points"),
        },
        {
            "Class": "rviz_default_plugins/MarkerArray",
            "Enabled": True,
            "Name": "Predicted end-effector path",
            "Topic": _topic(f"{model_node}/imagined/ee_path"),
        },
        {
            "Class": "rviz_default_plugins/PoseArray",
            "Enabled": True,
            "Name": "Predicted end-effector poses",
            "Shape": "Axes",
            "Axes Length": 0.05,
            "Axes Radius": 0.005,
            "Topic": _topic(f"{model_node}/imagined/ee_poses"),
        },
        *views,
    ]
    return {
        "Panels": [{"Class": "rviz_common/Displays", "Name": "Displays"}],
        "Visualization Manager": {
            "Class": "",
            "Displays": displays,
            "Global Options": {
                "Fixed Frame": setup.base_frame,
                "Frame Rate": 30,
                "Background Color": "48; 48; 48",
            },
            "Tools": [
                {"Class": "rviz_default_plugins/MoveCamera"},
                {"Class": "rviz_default_plugins/Select"},
            ],
            "Views": {
                "Current": {
                    "Class": "rviz_default_plugins/Orbit",
                    "Distance": 2.0,
                    "Focal Point": {"X": 0.4, "Y": 0.0, "Z": 0.1},
                    "Pitch": 0.5,
                    "Yaw": 3.6,
                    "Target Frame": "<Fixed Frame>",
                }
            },
        },
    }


def rviz_text(setup: CameraSetup, source: str) -> str:
    """The configuration as the text of an .rviz file, with a header saying where it came from."""
    header = (
        f"# RViz configuration of xwam for the camera setup {source}.\n"
        "# Generated by `xwam rviz`; regenerate rather than edit.\n"
    )
    return header + yaml.safe_dump(rviz_config(setup), sort_keys=False, width=100)
