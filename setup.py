"""ament_python package `xwam_ros`: installs the Python packages xwam_ros and xwam_model."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "xwam_ros"
ROOT = Path(__file__).resolve().parent


def share_files(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing `folder` (recursively) under share/xwam_ros/."""
    entries: dict[str, list[str]] = {}
    for path in sorted((ROOT / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            relative = path.relative_to(ROOT)
            entries.setdefault(f"share/{PACKAGE}/{relative.parent}", []).append(str(relative))
    return list(entries.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    description="X-WAM 4D world action model on ROS 2 robot arms",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["xwam_ros", "xwam_ros.*", "xwam_model", "xwam_model.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share_files("launch"),
        *share_files("config"),
    ],
    # Python dependencies are pinned in requirements.lock and installed by `make setup`;
    # ROS packages come from the ROS installation (see package.xml).
    install_requires=["setuptools"],
    zip_safe=True,
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "xwam = xwam_ros.cli:main",
            "monitor = xwam_ros.nodes.monitor:main",
            "chunk_generator = xwam_ros.nodes.chunk_generator:main",
            "sim_arm = xwam_ros.nodes.sim_arm:main",
            "executor = xwam_ros.nodes.executor:main",
            "model_node = xwam_ros.nodes.model_node:main",
            "recorder = xwam_ros.nodes.recorder:main",
        ],
    },
)
