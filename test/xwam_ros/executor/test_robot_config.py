"""Robot YAML: the shipped files load; bad files are refused naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from xwam_ros.config import ConfigError, describe
from xwam_ros.config.robot import RobotConfig, load_robot_config, resolve_urdf


def test_shipped_robots_load_with_their_urdf_resolved(panda_config, dual_config):
    assert panda_config.joint_names == [f"panda_joint{i}" for i in range(1, 8)]
    assert panda_config.action_space.type == "ee_delta"
    assert panda_config.ee_delta_dim == 7 and panda_config.proprio_dim == 8
    assert Path(panda_config.arms[0].urdf).is_file()
    assert len(dual_config.joint_names) == 14
    assert dual_config.ee_delta_dim == 14 and dual_config.proprio_dim == 16
    assert dual_config.arms[0].urdf_name("left_panda_joint3") == "panda_joint3"
    assert dual_config.arms[1].gripper.interface == "forward_command"


def test_every_field_is_documented():
    for key, _type, _default, doc in describe(RobotConfig):
        assert doc and doc != key.split(".")[-1], f"{key} has no documentation"


def _break(data: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value


@pytest.mark.parametrize(
    ("change", "value", "key"),
    [
        ("arms.0.joints.1.upper", -2.0, "arms[0].joints[1].upper"),
        ("arms.0.joints.2.velocity", 0.0, "arms[0].joints[2].velocity"),
        ("arms.0.gripper.open_positions", [0.04], "arms[0].gripper.open_positions"),
        ("arms.0.urdf", "example-robot-data://nowhere/robot.urdf", "arms[0].urdf"),
        ("arms.0.urdf", "missing/panda.urdf", "arms[0].urdf"),
        ("arms.0.base_pose", [0, 0, 0, 2, 0, 0, 0], "arms[0].base_pose"),
        ("arms.0.joints.6.name", "panda_joint1", "arms[0].joints[6].name"),
        ("arms.0.gripper.topic", "/joint_trajectory_controller/joint_trajectory", None),
        ("timing.request_margin", 0.05, "timing.request_margin"),
        ("timing.blend_time", -0.1, "timing.blend_time"),
        ("safety.max_divergence", 0.0, "safety.max_divergence"),
        ("action_space.type", "cartesian", "action_space.type"),
        ("control_period", 0, "control_period"),
        ("proprio_quaternion.reference_wxyz", [0, 0.9, 0, 0], "proprio_quaternion.reference_wxyz"),
        ("proprio_quaternion.reference_wxyz", [0, 1, 0], "proprio_quaternion.reference_wxyz"),
        ("proprio_quaternion.convention", "w_positive", "proprio_quaternion.convention"),
        ("action_space.frames", "robotwin2", "action_space.frames"),
    ],
)
def test_bad_robot_files_are_refused_with_the_key(tmp_path, panda_yaml, change, value, key):
    data = yaml.safe_load(panda_yaml.read_text())
    data.setdefault("timing", {})
    if change == "arms.0.gripper.topic":
        # A forward-command gripper on the arm's trajectory topic: two types on one topic.
        data["arms"][0]["gripper"]["interface"] = "forward_command"
        key = "arms[0].gripper.topic"
    _break(data, change, value)
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_robot_config(path)
    assert caught.value.key == key
    assert str(path) in str(caught.value)


def test_joint_prefix_must_match_the_joint_names(tmp_path, dual_yaml):
    data = yaml.safe_load(dual_yaml.read_text())
    data["arms"][1]["joint_prefix"] = "left_"
    path = tmp_path / "dual.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"arms\[1\].joints\[0\].name"):
        load_robot_config(path)


def test_urdf_references(tmp_path, panda_config):
    installed = Path(panda_config.arms[0].urdf)
    (tmp_path / "urdf").mkdir()
    (tmp_path / "urdf" / "arm.urdf").write_text(installed.read_text())
    assert resolve_urdf("urdf/arm.urdf", tmp_path) == (tmp_path / "urdf" / "arm.urdf")
    assert resolve_urdf(str(installed)) == installed
    with pytest.raises(FileNotFoundError, match="not in the ament index"):
        resolve_urdf("package://no_such_package_xwam/urdf/arm.urdf")
    with pytest.raises(FileNotFoundError, match="example-robot-data"):
        resolve_urdf("example-robot-data://panda_description/urdf/nope.urdf")


def test_action_widths_follow_the_action_space():
    from dataclasses import replace

    from xwam_ros.paths import config_dir

    robot = load_robot_config(config_dir() / "robots" / "panda.yaml")
    assert robot.action_widths == (7,)
    joint = replace(robot, action_space=replace(robot.action_space, type="joint_position"))
    assert joint.action_widths == (7, 8)  # 7 joints, then optionally one gripper column


def test_the_proprio_quaternion_convention_defaults_to_scipy_canonical(tmp_path, panda_yaml):
    from xwam_model.quaternions import QuaternionConvention

    panda = load_robot_config(panda_yaml)
    assert panda.proprio_quaternion.to_convention() == QuaternionConvention(
        "hemisphere", (0.0, 1.0, 0.0, 0.0)
    )
    data = yaml.safe_load(panda_yaml.read_text())
    del data["proprio_quaternion"]
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_robot_config(path).proprio_quaternion.to_convention() == QuaternionConvention()
    data["proprio_quaternion"] = {"reference_wxyz": [0.0, 1.0, 0.0, 0.0]}  # scipy_canonical
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="only hemisphere takes one") as caught:
        load_robot_config(path)
    assert caught.value.key == "proprio_quaternion.reference_wxyz"


def test_the_frame_convention_defaults_to_identity_and_names_a_preset(tmp_path, panda_yaml):
    from xwam_model import embodiment

    panda = load_robot_config(panda_yaml)
    assert panda.action_space.frames == "identity"
    assert embodiment.embodiment_frames(panda.action_space.frames).is_identity
    data = yaml.safe_load(panda_yaml.read_text())
    path = tmp_path / "robot.yaml"
    for name in embodiment.FRAMES:
        data["action_space"]["frames"] = name
        path.write_text(yaml.safe_dump(data))
        loaded = load_robot_config(path).action_space.frames
        assert embodiment.embodiment_frames(loaded) == embodiment.FRAMES[name]
    data["action_space"]["frames"] = "RoboTwin"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_robot_config(path)
    message = str(caught.value)
    assert caught.value.key == "action_space.frames"
    assert "action_space.frames: expected one of ['identity', 'robotwin', 'robocasa']" in message
    assert "'RoboTwin'" in message
