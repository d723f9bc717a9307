"""`xwam launch`: starts a graph as processes, prefixes output, forwards Ctrl-C, supervises."""

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from xwam_ros import cli
from xwam_ros.graph import GraphDescription, NodeSpec
from xwam_ros.graph.executables import EXECUTABLES, Executable
from xwam_ros.graph.process_launcher import ProcessLauncher, node_command

REPO = Path(__file__).resolve().parents[3]
XWAM = [sys.executable, "-m", "xwam_ros.cli"]

TWO_NODE_GRAPH = """
description: chunk generator and monitor
nodes:
  - name: gen
    executable: chunk_generator
    parameters: {joint_names: [a, b], center: [0.1, 0.2], chunk_period: 0.2}
    remappings: {/xwam_model/action_chunk: /test/chunks}
  - name: mon
    executable: monitor
    parameters: {report_period: 0.3, action_chunk_topic: /test/chunks}
"""


def test_node_command_carries_name_namespace_parameters_and_remappings(tmp_path, monitor_spec):
    spec = monitor_spec
    cmd = node_command(spec, tmp_path / "p.yaml", python="py")
    assert cmd == [
        "py",
        "-m",
        "xwam_ros.nodes.monitor",
        "--ros-args",
        "-r",
        "__node:=mon",
        "-r",
        "__ns:=/arm",
        "--params-file",
        str(tmp_path / "p.yaml"),
        "-r",
        "/joint_states:=/arm/joint_states",
    ]


def start_launcher(graph: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*XWAM, "launch", str(graph), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(process: subprocess.Popen, pattern: str, timeout: float = 30.0) -> str:
    """Read the launcher's output until a line matches `pattern`; all lines read so far."""
    seen = []
    deadline = time.monotonic() + timeout
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            seen.append(line)
            if re.search(pattern, line):
                return "".join(seen)
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.02)
    raise AssertionError(f"no line matching {pattern!r} within {timeout} s:\n{''.join(seen)}")


def test_two_node_graph_runs_over_dds_and_stops_cleanly_on_ctrl_c(tmp_path):
    graph = tmp_path / "two.yaml"
    graph.write_text(TWO_NODE_GRAPH)
    launcher = start_launcher(graph)
    try:
        # The monitor, in another process, counts chunks the generator sent over DDS.
        before = read_until(launcher, r"^\[mon\] .*chunks [3-9]\d* ")
        os.killpg(launcher.pid, signal.SIGINT)  # what a Ctrl-C in the terminal does
        rest, _ = launcher.communicate(timeout=30)
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    output = before + rest
    assert launcher.returncode == 0, output
    assert re.search(r"^\[xwam launch\] started 'gen' \(pid \d+\)", output, re.M)
    assert re.search(r"^\[mon\] .*last chunk #\d+ 8x2 joint_position", output, re.M)
    assert "[xwam launch] stop requested; stopping the graph" in output
    assert "[xwam launch] 'gen' exited with code 0" in output
    assert "[xwam launch] 'mon' exited with code 0" in output
    assert "SIGTERM" not in output


def test_a_namespace_moves_the_whole_graph_and_keeps_it_connected(tmp_path):
    # Topics of the peers named relatively, as the shipped graphs name them.
    graph = tmp_path / "relative.yaml"
    graph.write_text(
        TWO_NODE_GRAPH.replace("    remappings: {/xwam_model/action_chunk: /test/chunks}\n", "")
        .replace("chunk_period: 0.2}", "chunk_period: 0.2, action_chunk_topic: gen/chunks}")
        .replace("action_chunk_topic: /test/chunks", "action_chunk_topic: gen/chunks")
    )
    launcher = start_launcher(graph, "--namespace", "/arm_2")
    rest = ""
    try:
        output = read_until(launcher, r"^\[mon\] .*chunks [3-9]\d* ")
        os.killpg(launcher.pid, signal.SIGINT)
        rest = launcher.communicate(timeout=30)[0] or ""
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
    assert re.search(r"^\[mon\] .*\[arm_2\.mon\]: chunks", output, re.M), output
    assert launcher.returncode == 0, rest  # how the graph stopped: each node's exit


def test_a_required_node_that_dies_stops_the_graph(tmp_path):
    graph = tmp_path / "broken.yaml"
    graph.write_text(TWO_NODE_GRAPH.replace("center: [0.1, 0.2]", "center: [0.1]"))
    result = subprocess.run(
        [*XWAM, "launch", str(graph)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    # The node said why, prefixed with its name; the launcher stopped the monitor.
    assert re.search(r"^\[gen\] .*center has 1 values but joint_names has 2", result.stdout, re.M)
    assert "required node 'gen' exited with code 2; stopped the graph" in result.stdout
    assert "'mon' exited with code 0" in result.stdout


def test_a_node_that_ignores_sigint_gets_sigterm(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "test"))
    graph = GraphDescription(
        "stubborn",
        Path("stubborn.yaml"),
        "a hung node",
        (NodeSpec(name="hung", executable="hung", module="xwam_testing.peers.stubborn"),),
    )
    out = io.StringIO()
    launcher = ProcessLauncher(graph, duration=1.5, sigint_timeout=0.5, out=out)
    assert launcher.run() == 1  # stopped, but not cleanly
    text = out.getvalue()
    assert "[hung] stubborn: ignoring SIGINT" in text
    assert "hung still running; sending SIGTERM" in text
    assert "'hung' exited with code 143" in text


def test_launching_a_graph_with_missing_nodes_needs_allow_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(
        EXECUTABLES,
        "teleporter",
        Executable("xwam_ros.nodes.teleporter", "the teleporter (issue 99)"),
    )
    graph = tmp_path / "future.yaml"
    graph.write_text(
        "description: d\nnodes:\n  - {name: tp, executable: teleporter}\n"
        "  - {name: mon, executable: monitor}\n"
    )
    assert cli.main(["launch", str(graph)]) == 2
    error = capsys.readouterr().err
    assert "'tp' (the teleporter (issue 99))" in error
    assert "--allow-missing" in error


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_nodes_die_with_a_killed_launcher(tmp_path):
    graph = tmp_path / "two.yaml"
    graph.write_text(TWO_NODE_GRAPH)
    launcher = start_launcher(graph)
    try:
        output = read_until(launcher, r"^\[mon\] .*chunks [1-9]")
        pids = [int(p) for p in re.findall(r"started '\w+' \(pid (\d+)\)", output)]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)
        os.kill(launcher.pid, signal.SIGKILL)  # no chance to stop anything itself
        launcher.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids), "orphaned nodes still running"
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
