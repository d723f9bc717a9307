"""Where the package's shared files (config/, launch/) are found."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

PACKAGE = "xwam_ros"
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


@cache
def share_dir() -> Path:
    """The folder holding `config/` and `launch/`.

    In order: `$XWAM_SHARE_DIR`; the source checkout this module runs from (so that edits
    to config/ take effect without reinstalling); the ament index (`colcon build` installs).
    """
    override = os.environ.get("XWAM_SHARE_DIR")
    if override:
        return Path(override)
    if (_SOURCE_ROOT / "config").is_dir() and (_SOURCE_ROOT / "package.xml").is_file():
        return _SOURCE_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE))
    except (ImportError, LookupError) as exc:
        raise FileNotFoundError(
            f"cannot find the share folder of {PACKAGE}: not running from a source checkout "
            "and the package is not in the ament index (source install/setup.bash, or set "
            "XWAM_SHARE_DIR)"
        ) from exc


def config_dir() -> Path:
    """The `config/` folder: robots/, cameras/, model/, graphs/, the DDS profile."""
    return share_dir() / "config"


def fastdds_profile() -> Path:
    """The FastDDS profile for large images and point clouds (shared memory + UDP)."""
    return config_dir() / "fastdds_large_data.xml"
