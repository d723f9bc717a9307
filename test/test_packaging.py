"""Packaging: both ROS packages are well formed, discoverable by colcon, and install right."""

import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

from catkin_pkg.package import parse_package

from xwam_ros.graph.executables import EXECUTABLES

REPO = Path(__file__).resolve().parent.parent
COLCON = Path(sys.executable).parent / "colcon"


def test_xwam_ros_package_xml():
    package = parse_package(REPO / "package.xml")
    assert package.package_format == 3
    assert package.name == "xwam_ros"
    assert package.get_build_type() == "ament_python"
    assert [lic for lic in package.licenses] == ["Apache-2.0"]
    exec_depends = {d.name for d in package.exec_depends}
    assert {
        "rclpy",
        "xwam_msgs",
        "sensor_msgs",
        "trajectory_msgs",
        "visualization_msgs",
        "launch_ros",
    } <= exec_depends


def test_xwam_msgs_package_declares_every_interface_file():
    package = parse_package(REPO / "xwam_msgs" / "package.xml")
    assert package.get_build_type() == "ament_cmake"
    assert "rosidl_interface_packages" in [g.name for g in package.member_of_groups]
    cmake = (REPO / "xwam_msgs" / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"((?:msg|srv)/\w+\.(?:msg|srv))"', cmake))
    on_disk = {
        str(p.relative_to(REPO / "xwam_msgs"))
        for p in (REPO / "xwam_msgs").glob("*/*")
        if p.suffix in (".msg", ".srv")
    }
    assert listed == on_disk


def colcon_list(tmp_path, *base_paths):
    result = subprocess.run(
        [str(COLCON), "list", "--base-paths", *map(str, base_paths)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    return {line.split("\t")[0]: line.split("\t")[2] for line in result.stdout.splitlines()}


def test_colcon_finds_both_packages_with_both_base_paths(tmp_path):
    # Discovery stops at the package.xml at the root: xwam_msgs needs its own base path,
    # as the README says.
    assert colcon_list(tmp_path, REPO) == {"xwam_ros": "(ros.ament_python)"}
    assert colcon_list(tmp_path, REPO, REPO / "xwam_msgs") == {
        "xwam_ros": "(ros.ament_python)",
        "xwam_msgs": "(ros.ament_cmake)",
    }


def test_every_written_executable_has_its_console_script():
    scripts = {
        ep.name: ep.value
        for ep in entry_points(group="console_scripts")
        if ep.dist is not None and ep.dist.name == "xwam_ros"
    }
    for name, executable in EXECUTABLES.items():
        if executable.available:
            assert scripts.get(name) == f"{executable.module}:main", name
        else:
            assert name not in scripts, f"{name} has a console script but no module"
    assert scripts["xwam"] == "xwam_ros.cli:main"


def test_the_wheel_installs_launch_config_and_the_ament_marker(tmp_path):
    # Built from a copy: setuptools writes an egg-info into the source tree, and one left in
    # the checkout would shadow the installed metadata (entry points) for later imports.
    source = tmp_path / "src"
    ignored = shutil.ignore_patterns(
        ".venv", ".git", "build", "runs", "*.egg-info", "__pycache__", ".*_cache", "test"
    )
    shutil.copytree(REPO, source, ignore=ignored)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("xwam_ros-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    data = "xwam_ros-0.1.0.data/data/"
    expected = [
        "share/ament_index/resource_index/packages/xwam_ros",
        "share/xwam_ros/package.xml",
        "share/xwam_ros/launch/xwam.launch.py",
        "share/xwam_ros/config/fastdds_large_data.xml",
        "share/xwam_ros/config/graphs/demo.yaml",
    ]
    for path in expected:
        assert data + path in names, path
    assert "xwam_model/__init__.py" in names and "xwam_ros/cli.py" in names
