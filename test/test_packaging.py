"""Packaging: both ROS packages are well formed, discoverable by colcon, and install right."""

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points, packages_distributions
from pathlib import Path

from catkin_pkg.package import parse_package
from packaging.utils import canonicalize_name

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


# The rosdep key of each third-party module the code imports that has one (rosdistro
# rosdep/python.yaml; pinocchio is a ROS package). Modules without a key come from
# requirements-colcon.txt; ROS packages are imported under their own names.
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "torch": "python3-torch",
    "transformers": "python3-transformers-pip",
    "yaml": "python3-yaml",
    "ruamel": "python3-ruamel.yaml",
    "rosbags": "python3-rosbags-pip",
    "mujoco": "python3-mujoco-pip",
    "PIL": "python3-pil",
    "skimage": "python3-skimage",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "pinocchio": "pinocchio",
}
OWN_MODULES = {"xwam_ros", "xwam_model"}
# Modules a distribution puts on sys.path through a .pth file, which packages_distributions()
# does not see: rerun-sdk installs `rerun` under site-packages/rerun_sdk/.
PTH_MODULES = {"rerun": ["rerun-sdk"]}


def _optional(node: ast.AST, parents: dict) -> bool:
    """Whether an import sits in a `try` that handles its ImportError (an optional module)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            names = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            if names & {"ImportError", "ModuleNotFoundError"}:
                return True
    return False


def imported_modules() -> set[str]:
    """Top-level names of the modules xwam_ros, xwam_model and the launch files import."""
    modules = set()
    files = [*REPO.glob("xwam_ros/**/*.py"), *REPO.glob("xwam_model/**/*.py")]
    for path in [*files, *REPO.glob("launch/*.py")]:
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if not _optional(node, parents):
                modules.update(name.split(".")[0] for name in names)
    return modules - set(sys.stdlib_module_names) - OWN_MODULES - {"__future__"}


def colcon_requirements() -> set[str]:
    lines = (REPO / "requirements-colcon.txt").read_text().splitlines()
    return {canonicalize_name(line.split("==")[0]) for line in lines if "==" in line}


def test_package_xml_declares_every_runtime_dependency():
    """What the code imports is a ROS package of package.xml, a rosdep key of it, or pinned in
    requirements-colcon.txt, so a colcon workspace gets all of it (README)."""
    package = parse_package(REPO / "package.xml")
    exec_depends = {d.name for d in package.exec_depends}
    colcon = colcon_requirements()
    distributions = packages_distributions()
    missing = []
    for module in sorted(imported_modules()):
        if module in ROSDEP_KEYS:
            covered = ROSDEP_KEYS[module] in exec_depends
        elif module in exec_depends:
            covered = True
        else:
            found = distributions.get(module) or PTH_MODULES.get(module, [])
            dists = {canonicalize_name(d) for d in found}
            covered = bool(dists) and dists <= colcon
        if not covered:
            missing.append(module)
    assert missing == []
    assert {"launch", "launch_ros", "rviz2", "xwam_msgs"} <= exec_depends


def test_package_xml_uses_only_keys_rosdep_resolves():
    # ament_python is a build type, not a rosdep key: `rosdep install` refused the package.
    package = parse_package(REPO / "package.xml")
    names = {d.name for d in package.buildtool_depends + package.exec_depends}
    assert "ament_python" not in names
    assert not {name for name in names if name.startswith("python3-")} - {
        *ROSDEP_KEYS.values(),
        "python3-h5py",  # robosuite's, undeclared by it
    }
