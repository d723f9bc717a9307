"""What `xwam` needs of the viewer without importing rerun: ports, the URL, the error, and the
life of its child processes."""

from __future__ import annotations

import ctypes
import errno
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

T = TypeVar("T")

HOST = "127.0.0.1"  # both servers listen on this machine only
DEFAULT_WEB_PORT = 9090  # rerun's defaults: a native `rerun` viewer finds the stream as usual
DEFAULT_GRPC_PORT = 9876


class ViewerError(RuntimeError):
    """The viewer cannot start (a port in use, a bag without the topics, ...)."""


def check_port(port: int, what: str) -> None:
    """ViewerError naming `what` and the option to change when `port` cannot be bound."""
    if not 0 < port < 65536:
        raise ViewerError(f"the {what} port must be within 1..65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server will: a listener there (or on every interface) makes it fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            option = "--web-port" if "web" in what else "--grpc-port"
            raise ViewerError(
                f"port {port} for the {what} is {reason}: pass another with {option} "
                "(or stop what listens there)"
            ) from None


def free_port() -> int:
    """A TCP port free right now (for tests and parallel runs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def viewer_url(web_port: int, grpc_port: int) -> str:
    """The page that opens the stream: the web viewer with `?url=<the gRPC proxy>`."""
    stream = f"rerun+http://localhost:{grpc_port}/proxy"
    return f"http://localhost:{web_port}/?url={quote(stream, safe='')}"


def die_with_parent() -> None:
    """In a child process (`preexec_fn`): be sent SIGTERM when the parent dies, however it
    dies, so that no server outlives the command that started it (Linux prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGINT, then SIGKILL after `timeout` seconds; nothing if it has ended."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_and_wait(
    command: list[str], log: Path, ready: Callable[[], T], timeout: float, what: str
) -> tuple[subprocess.Popen, T]:
    """Start `command` (its output to `log`, dying with this process) and wait until `ready()`
    returns something true: the process and that value. ViewerError naming `what`, the log
    and its last lines when the process ends or `timeout` seconds pass first (the process
    then stopped)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as output:
        process = subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + timeout
    while True:
        found = ready()
        if found:
            return process, found
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            said = log.read_text().strip().splitlines()[-5:]
            raise ViewerError(
                f"{what} did not start (its output in {log}): "
                + (" | ".join(said) or f"exit code {process.returncode}")
            )
        time.sleep(0.1)
