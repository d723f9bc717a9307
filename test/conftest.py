"""Test session setup: a DDS domain of its own, localhost discovery, the large-data profile.

Set before any rclpy context exists, and inherited by every process a test starts, so that
parallel test runs (and a robot on the same network) never see each other's topics.
"""

import os
import random
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ["ROS_DOMAIN_ID"] = str(
    random.Random(os.getpid() ^ int.from_bytes(os.urandom(4))).randint(1, 100)
)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO / "config" / "fastdds_large_data.xml")
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
os.environ["PYTHONUNBUFFERED"] = "1"

# A suite started in the background by a non-interactive shell (`make test &`) inherits
# SIGINT ignored (POSIX), and so would every process a test starts: the tests that stop
# their nodes, demos and launchers with Ctrl-C need it delivered, as from a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def ros_node():
    """Yield a factory of rclpy nodes in a fresh context, shut down after the test."""
    from xwam_testing.ros import RosTestContext

    with RosTestContext() as ctx:
        yield ctx
