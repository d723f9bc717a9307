"""Configuration files are read with YAML 1.2 rules, duplicate keys refused with both lines."""

from pathlib import Path

import pytest
import yaml

from xwam_model.training.config import TrainingConfig
from xwam_model.yaml_files import read_yaml
from xwam_ros.config import ConfigError, load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.graph import GraphConfig
from xwam_ros.config.model import load_model_config
from xwam_ros.config.recorder import RecorderConfig
from xwam_ros.config.robot import RobotConfig, load_robot_config
from xwam_ros.paths import config_dir

CONFIG = config_dir()


def shipped(folder: str, name: str) -> str:
    return (CONFIG / folder / f"{name}.yaml").read_text()


def write(tmp_path, text, name="config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_exponent_without_a_dot_is_a_number_in_a_camera_setup(tmp_path):
    text = shipped("cameras", "sim_panda")
    assert "skew_limit: 0.1\n" in text
    path = write(tmp_path, text.replace("skew_limit: 0.1\n", "skew_limit: 5e-2\n"))
    setup = load(CameraSetup, path)
    assert setup.skew_limit == 0.05
    assert isinstance(setup.skew_limit, float)


def test_a_duplicate_key_in_a_robot_file_names_the_file_the_key_and_both_lines(tmp_path):
    text = shipped("robots", "panda")
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("control_period:"))
    path = write(tmp_path, text + "control_period: 0.1\n", "panda.yaml")
    second = len(lines) + 1
    with pytest.raises(ConfigError) as info:
        load_robot_config(path)
    error = info.value
    assert error.source == str(path)
    assert error.key == "control_period"
    message = str(error)
    assert message.startswith(f"{path}: control_period: expected valid YAML (line {second}, ")
    assert f"key 'control_period' given twice (lines {first} and {second})" in message


def test_a_duplicate_key_inside_a_camera_view_is_refused_with_its_dotted_key(tmp_path):
    text = "\n".join(
        [
            "description: two views",  # 1
            "base_frame: base",  # 2
            "views:",  # 3
            "  - name: front",  # 4
            "    slot: 0",  # 5
            "    image_topic: /front/image_raw",  # 6
            "    camera_info_topic: /front/camera_info",  # 7
            "    optical_frame: front_optical",  # 8
            "    slot: 1",  # 9
            "    extrinsics: {translation: [0, 0, 1], rotation_wxyz: [1, 0, 0, 0]}",  # 10
            "",
        ]
    )
    path = write(tmp_path, text, "cameras.yaml")
    with pytest.raises(ConfigError, match=r"given twice \(lines 5 and 9\)") as info:
        load(CameraSetup, path)
    assert info.value.key == "views[0].slot"
    assert str(path) in str(info.value)


def test_a_syntax_error_in_a_camera_setup_names_the_line(tmp_path):
    text = shipped("cameras", "sim_panda")
    broken = text.replace("translation: [1.06, 0.0, 0.438]", "translation: [1.06, 0.0, 0.438")
    assert broken != text
    line = next(i for i, row in enumerate(broken.splitlines(), 1) if "0.438" in row) + 1
    path = write(tmp_path, broken)
    with pytest.raises(ConfigError, match=rf"expected valid YAML \(line {line}, column \d+\)"):
        load(CameraSetup, path)


def test_yes_is_a_string_and_refused_for_a_bool_field(tmp_path):
    text = shipped("recorder", "default")
    assert "fsync: false" in text
    path = write(tmp_path, text.replace("fsync: false", "fsync: yes"))
    with pytest.raises(ConfigError) as info:
        load(RecorderConfig, path)
    assert info.value.key == "fsync"
    assert "true or false (YAML 1.2: yes, no, on and off are strings), got 'yes'" in str(info.value)


def test_true_is_still_a_bool(tmp_path):
    text = shipped("recorder", "default")
    config = load(RecorderConfig, write(tmp_path, text.replace("fsync: false", "fsync: True")))
    assert config.fsync is True


# Robot files whose URDF is made on the robot's machine (the file says how): here they are
# loaded without resolving it, and must be refused for exactly that URDF by the full loader.
URDF_MADE_ON_THE_ROBOT = {"fr3.yaml"}


def _load_shipped(path: Path):
    folder = path.parent.name
    if folder == "robots" and path.name in URDF_MADE_ON_THE_ROBOT:
        with pytest.raises(ConfigError) as info:
            load_robot_config(path)
        assert info.value.key == "arms[0].urdf"
        return load(RobotConfig, path)
    if folder == "robots":
        return load_robot_config(path)
    if folder == "cameras":
        return load(CameraSetup, path)
    if folder == "model":
        return load_model_config(path)
    if folder == "graphs":
        return load(GraphConfig, path)
    if folder == "recorder":
        return load(RecorderConfig, path)
    if folder == "training":
        return TrainingConfig.from_yaml(path)
    raise AssertionError(f"{path}: no loader known for config/{folder}/ (add it to this test)")


SHIPPED = sorted(CONFIG.glob("*/*.yaml")) + sorted(CONFIG.glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_yaml_loads_and_means_what_it_meant_under_yaml_1_1(path):
    assert _load_shipped(path) is not None
    # The switch from PyYAML (YAML 1.1) changes no value of a shipped file.
    assert read_yaml(path) == yaml.safe_load(path.read_text())


def test_the_shipped_files_are_all_found():
    folders = {p.parent.name for p in SHIPPED}
    assert {"robots", "cameras", "model", "graphs", "recorder", "training"} <= folders


def test_a_model_file_cannot_override_the_checkpoints_quaternion_convention(tmp_path):
    """The proprio quaternion convention is what the checkpoint was trained with: a model
    YAML that tried to change it would feed the model proprio it never saw."""

    path = tmp_path / "model.yaml"
    path.write_text(
        "description: tiny\npreset: tiny\n"
        "policy:\n  proprio_quaternion: {convention: hemisphere, reference_wxyz: [0, 1, 0, 0]}\n"
    )
    with pytest.raises(ConfigError, match=r"policy\.proprio_quaternion: expected no override"):
        load_model_config(path)


def test_a_negative_imagination_delay_or_thread_count_is_refused(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("description: tiny\npreset: tiny\ncpu_threads: -1\n")
    with pytest.raises(ConfigError, match=r"cpu_threads: expected 0 or more, got -1"):
        load_model_config(path)
    path.write_text("description: tiny\npreset: tiny\nimagination_delay: -0.1\n")
    with pytest.raises(ConfigError, match=r"imagination_delay: expected 0 or more, got -0\.1"):
        load_model_config(path)
    path.write_text("description: tiny\npreset: tiny\nimagination_delay: 0.25\n")
    assert load_model_config(path).imagination_delay == 0.25
    path.write_text("description: tiny\npreset: tiny\nimagination_pieces_per_chunk: -1\n")
    with pytest.raises(ConfigError, match=r"imagination_pieces_per_chunk: expected 0 or more"):
        load_model_config(path)
