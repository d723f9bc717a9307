"""The shipped RViz configuration shows every imagined topic and matches its generator."""

import yaml

from xwam_ros import cli
from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.paths import config_dir
from xwam_ros.rviz_config import rviz_text


def topics(config: dict) -> set[str]:
    found = set()

    def walk(displays):
        for display in displays:
            if "Displays" in display:
                walk(display["Displays"])
            elif "Topic" in display:
                found.add(display["Topic"]["Value"])

    walk(config["Visualization Manager"]["Displays"])
    return found


def test_shipped_rviz_config_is_the_generated_one():
    setup = load(CameraSetup, config_dir() / "cameras" / "sim_panda.yaml")
    shipped = (config_dir() / "xwam.rviz").read_text()
    assert shipped == rviz_text(setup, "config/cameras/sim_panda.yaml")


def test_rviz_config_shows_every_imagined_output(tmp_path):
    output = tmp_path / "two.rviz"
    assert cli.main(["rviz", "two_cameras", "-o", str(output)]) == 0
    config = yaml.safe_load(output.read_text())
    expected = {
        "/xwam_model/imagined/points",
        "/xwam_model/imagined/ee_path",
        "/xwam_model/imagined/ee_poses",
        "/front/color/image_raw",
        "/wrist/color/image_raw",
    }
    for view in ("front", "wrist"):
        expected |= {f"/xwam_model/imagined/{view}/rgb", f"/xwam_model/imagined/{view}/depth"}
    assert topics(config) == expected
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "panda_link0"
