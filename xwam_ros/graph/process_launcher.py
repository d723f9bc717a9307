"""`xwam launch`: start a graph's nodes as processes where `ros2 launch` is not installed.

Each node runs as `python -m <module> --ros-args ...` in its own session (so a Ctrl-C in the
terminal reaches the launcher only, which then stops the nodes in order). Output is prefixed
with the node name. Stopping escalates as ros2 launch does: SIGINT, then SIGTERM, then SIGKILL.
When a required node exits, the whole graph is stopped and the launcher fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import yaml

from xwam_ros.graph.description import GraphDescription, NodeSpec
from xwam_ros.paths import fastdds_profile

_POLL_S = 0.05
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def node_command(spec: NodeSpec, params_file: Path, python: str = sys.executable) -> list[str]:
    """The command line that starts one node with its name, namespace, parameters, remappings."""
    cmd = [python, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        cmd += ["-r", f"__ns:={spec.namespace}"]
    if spec.parameters:
        cmd += ["--params-file", str(params_file)]
    for source, target in spec.remappings:
        cmd += ["-r", f"{source}:={target}"]
    return cmd


def node_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the nodes: the caller's, with the large-data DDS profile by default."""
    env = dict(os.environ if base is None else base)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(fastdds_profile()))
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
    return env


@dataclass
class _Running:
    spec: NodeSpec
    process: subprocess.Popen
    reader: threading.Thread


class ProcessLauncher:
    """Runs the available nodes of a graph until Ctrl-C, a duration, or a required node's exit."""

    def __init__(
        self,
        graph: GraphDescription,
        *,
        duration: float | None = None,
        sigint_timeout: float = 5.0,
        sigterm_timeout: float = 5.0,
        out: TextIO | None = None,
    ):
        self.graph = graph
        self.duration = duration
        self.sigint_timeout = sigint_timeout
        self.sigterm_timeout = sigterm_timeout
        self.out = out or sys.stdout
        self._print_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._running: list[_Running] = []

    def say(self, message: str, name: str = "xwam launch") -> None:
        """Print one line with a `[name]` prefix, never interleaved with another line."""
        with self._print_lock:
            self.out.write(f"[{name}] {message}\n")
            self.out.flush()

    def request_stop(self, *_args) -> None:
        """Ask the launcher to stop the graph (signal handlers and callers use this)."""
        self._stop_requested.set()

    def run(self) -> int:
        """Start the graph, supervise it, stop it; 0 when it was stopped cleanly on request."""
        previous = self._install_signal_handlers()
        try:
            with tempfile.TemporaryDirectory(prefix="xwam-launch-") as tmp:
                self._start_all(Path(tmp))
                failure = self._supervise()
                clean = self._stop_all()
            if failure:
                self.say(failure)
                return 1
            return 0 if clean else 1
        finally:
            self._restore_signal_handlers(previous)

    def _start_all(self, tmp: Path) -> None:
        env = node_environment()
        self.say(f"graph '{self.graph.name}' ({self.graph.source})")
        for spec in self.graph.missing_nodes:
            self.say(
                f"not started: '{spec.name}' ({spec.executable}) is not written yet: "
                f"{spec.planned_in}"
            )
        for spec in self.graph.available_nodes:
            params_file = tmp / f"{spec.name}.yaml"
            params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": spec.parameters}}))
            cmd = node_command(spec, params_file)
            process = subprocess.Popen(
                cmd,
                preexec_fn=_die_with_parent,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
                text=True,
                bufsize=1,
                errors="replace",
            )
            reader = threading.Thread(target=self._relay, args=(spec.name, process), daemon=True)
            reader.start()
            self._running.append(_Running(spec, process, reader))
            self.say(f"started '{spec.name}' (pid {process.pid}): {spec.module}")

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.say(line.rstrip("\n"), name)

    def _supervise(self) -> str:
        deadline = None if self.duration is None else time.monotonic() + self.duration
        reported: set[str] = set()
        while not self._stop_requested.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                self.say(f"duration of {self.duration:g} s reached; stopping the graph")
                return ""
            alive = 0
            for node in self._running:
                code = node.process.poll()
                if code is None:
                    alive += 1
                    continue
                if node.spec.name in reported:
                    continue
                reported.add(node.spec.name)
                if node.spec.required:
                    return (
                        f"required node '{node.spec.name}' exited with code {code}; "
                        "stopped the graph"
                    )
                self.say(f"node '{node.spec.name}' exited with code {code} (not required)")
            if alive == 0:
                self.say("every node has exited")
                return ""
            time.sleep(_POLL_S)
        self.say("stop requested; stopping the graph")
        return ""

    def _stop_all(self) -> bool:
        """Stop every node, escalating; True when each exited by itself with code 0."""
        clean = True
        for sig, timeout in (
            (signal.SIGINT, self.sigint_timeout),
            (signal.SIGTERM, self.sigterm_timeout),
            (signal.SIGKILL, None),
        ):
            running = [n for n in self._running if n.process.poll() is None]
            if not running:
                break
            if sig is not signal.SIGINT:
                clean = False
                self.say(
                    f"{', '.join(n.spec.name for n in running)} still running; sending {sig.name}"
                )
            for node in running:
                _signal_group(node.process, sig)
            end = time.monotonic() + (timeout if timeout is not None else 5.0)
            while time.monotonic() < end and any(n.process.poll() is None for n in running):
                time.sleep(_POLL_S)
        for node in self._running:
            node.process.wait()
            node.reader.join(timeout=2.0)
            code = node.process.returncode
            if code != 0:
                clean = False
            self.say(f"'{node.spec.name}' exited with code {code}")
        return clean

    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        return {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }

    @staticmethod
    def _restore_signal_handlers(previous) -> None:
        for sig, handler in (previous or {}).items():
            signal.signal(sig, handler)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the launcher dies, however it dies.

    Nodes run in their own sessions (so a terminal's Ctrl-C reaches the launcher only); if the
    launcher is killed outright, nothing else would stop them, and orphaned nodes would keep
    publishing on the domain. Linux only; elsewhere the launcher's own shutdown is all.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
