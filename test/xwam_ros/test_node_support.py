"""What every node shares: a wrong parameter or malformed arguments end the node with one clear
line (no traceback), and Ctrl-C ends it cleanly even when it arrives twice (as under
`ros2 launch`, where the terminal's and launch's both reach the node)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter

from xwam_ros.node_support import Param, ParameterTypeError, declare_parameters
from xwam_ros.paths import config_dir

ROBOT = config_dir() / "robots" / "panda.yaml"


def start(module: str, *ros_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"xwam_ros.nodes.{module}", "--ros-args", *ros_args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "module,argument,line",
    [
        (
            "executor",
            "autostart:=maybe",
            "[xwam_executor]: parameter autostart: expected a bool (true or false), "
            "got 'maybe' (a string)",
        ),
        (
            "executor",
            "status_period:=fast",
            "[xwam_executor]: parameter status_period: expected a float (with a decimal point: "
            "1.0, not 1), got 'fast' (a string)",
        ),
        (
            "executor",
            "status_period:=1",
            "[xwam_executor]: parameter status_period: expected a float (with a decimal point: "
            "1.0, not 1), got 1 (an integer)",
        ),
        (
            "chunk_generator",
            "joint_names:=[1,2]",
            "[xwam_chunk_generator]: parameter joint_names: expected a list of strings, "
            "got [1, 2] (a list of integers)",
        ),
    ],
)
def test_a_parameter_of_the_wrong_type_ends_the_node_with_one_line(module, argument, line):
    result = start(module, "-p", f"robot_config:={ROBOT}", "-p", argument)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 2, output
    assert output.count("\n") == 0, output
    assert output.startswith("[FATAL]") and output.endswith(line), output


def test_malformed_ros_arguments_end_the_node_without_a_traceback():
    result = start("monitor", "-p", "autostart")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.count("[FATAL] cannot start the node: ") == 1
    assert "Couldn't parse parameter override rule: '-p autostart'" in result.stderr


def test_declare_parameters_names_parameter_type_and_value(ros_node):
    node = Node(
        "typed",
        context=ros_node.context,
        parameter_overrides=[Parameter("period", value="fast")],
    )
    try:
        with pytest.raises(ParameterTypeError) as info:
            declare_parameters(node, [Param("period", 0.5, "seconds")])
        assert str(info.value) == (
            "parameter period: expected a float (with a decimal point: 1.0, not 1), "
            "got 'fast' (a string)"
        )
        assert info.value.node_name == "typed"
    finally:
        node.destroy_node()


def test_two_ctrl_c_stop_a_node_cleanly():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xwam_ros.nodes.executor",
            "--ros-args",
            "-p",
            f"robot_config:={ROBOT}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        os.set_blocking(process.stdout.fileno(), False)
        seen, deadline = "", time.monotonic() + 60
        while "executing panda" not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            seen += line
            if not line:
                time.sleep(0.05)
        assert "executing panda" in seen, seen
        os.kill(process.pid, signal.SIGINT)  # the terminal's
        time.sleep(0.01)
        os.kill(process.pid, signal.SIGINT)  # and launch's, passed on
        process.wait(timeout=30)
        os.set_blocking(process.stdout.fileno(), True)
        seen += process.stdout.read()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, seen
    assert "Traceback" not in seen
