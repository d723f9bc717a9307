"""The Rerun stream and its web viewer on localhost, and the URL to open.

Rerun's SDK (rerun-sdk 0.23.1: the newest for numpy<2) ships the `rerun` program with its web
viewer built in. `rerun --serve-web` runs a gRPC server that keeps every message it is sent
in memory (up to `memory_limit`, the oldest dropped past it) and streams them to each viewer
that connects, so a page opened late still gets the run from its start, and serves the web
viewer's page over HTTP. The page at `viewer_url` connects to that stream; this process logs
into it as an SDK client (`connect_grpc`).

Why a process of its own rather than the SDK's in-process `serve_grpc`: in 0.23.1 the latter
polls its message channel without blocking and keeps a core busy even when nothing is logged
(measured here: about one core of two; the `rerun` server idles at under 1 %), and it can
only listen on every interface, while `rerun --bind 127.0.0.1` keeps both servers on this
machine. The ports are checked first, for an error that names the one in use.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import rerun as rr
import rerun.blueprint as rrb

from xwam_ros.viewer import bridge
from xwam_ros.viewer.ports import (
    DEFAULT_GRPC_PORT,
    DEFAULT_WEB_PORT,
    HOST,
    ViewerError,
    check_port,
    start_and_wait,
    stop_process,
    viewer_url,
)
from xwam_ros.viewer.topics import ViewerTopics

APPLICATION_ID = "xwam"
SERVER_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ServedViewer:
    """A running viewer: the recording to log into and where to watch it."""

    recording: rr.RecordingStream
    url: str
    grpc_url: str
    server: subprocess.Popen

    def close(self) -> None:
        """Send what is still buffered, then stop the server (its page loses the stream)."""
        self.recording.flush()
        self.recording.disconnect()  # before the server goes, or the client reports an error
        stop_process(self.server)


def blueprint(topics: ViewerTopics) -> rrb.Blueprint:
    """The layout: the 3-D scene (robot, imagined cloud, predicted and executed paths) with the
    time series under it, and per view the observed image, the imagined RGB and depth."""
    views = [v.name for v in topics.setup.ordered_views]
    images = [
        rrb.Spatial2DView(name=f"{view} {label}", origin=origin)
        for label, entity in (
            ("observed", lambda v: bridge.observed(v, "rgb")),
            ("imagined RGB", lambda v: bridge.imagined(v, "rgb")),
            ("imagined depth", lambda v: bridge.imagined(v, "depth")),
        )
        for view in views
        for origin in [entity(view)]
    ]
    scene = rrb.Spatial3DView(
        name=f"robot and imagined future ({topics.robot.frame_id})", origin="/world"
    )
    series = rrb.Horizontal(
        rrb.TimeSeriesView(name="decode latency (ms)", origin=f"/{bridge.DECODE_LATENCY}"),
        rrb.TimeSeriesView(name="refusals (cumulative)", origin="/refusals"),
        rrb.TextLogView(name="chunks and refusals", origin=f"/{bridge.LOG}"),
    )
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Vertical(scene, series, row_shares=[2, 1]),
            rrb.Grid(*images, grid_columns=len(views)),
            column_shares=[1, 1],
        ),
        collapse_panels=True,
    )


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def start_server(web_port: int, grpc_port: int, memory_limit: str, log: Path) -> subprocess.Popen:
    """`rerun --serve-web` on localhost: the stream on `grpc_port`, the page on `web_port`.

    Returns once both listen; ViewerError (with the server's own words) when it does not.
    """
    # rerun-sdk installs the program beside the `rerun` package: rerun_sdk/rerun_cli/rerun.
    binary = Path(rr.__file__).resolve().parents[1] / "rerun_cli" / "rerun"
    command = [
        str(binary),
        "--serve-web",
        "--bind",
        HOST,
        "--port",
        str(grpc_port),
        "--web-viewer-port",
        str(web_port),
        "--server-memory-limit",
        memory_limit,
    ]
    server, _ = start_and_wait(
        command,
        log,
        lambda: _listening(grpc_port) and _listening(web_port),
        SERVER_START_TIMEOUT_S,
        f"the rerun server ({' '.join(command)})",
    )
    return server


def serve(
    topics: ViewerTopics,
    web_port: int = DEFAULT_WEB_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
    memory_limit: str = "25%",
    recording_id: str | None = None,
    server_log: Path | None = None,
) -> ServedViewer:
    """Start the stream and the web viewer for `topics`' loop and connect a recording to it.

    `memory_limit`: how much the stream keeps for pages opened late (rerun's syntax: "25%",
    "2GB"); `server_log`: the server's own output (default: a temporary file). ViewerError
    when a port is taken or the server does not start.
    """
    if web_port == grpc_port:
        raise ViewerError(f"the web viewer and the stream need two ports, both are {web_port}")
    check_port(grpc_port, "stream (gRPC)")
    check_port(web_port, "web viewer")
    if server_log is None:
        server_log = Path(tempfile.mkstemp(prefix="xwam-rerun-server-", suffix=".log")[1])
    server = start_server(web_port, grpc_port, memory_limit, server_log)
    grpc_url = f"rerun+http://{HOST}:{grpc_port}/proxy"
    recording = rr.RecordingStream(APPLICATION_ID, recording_id=recording_id or str(uuid.uuid4()))
    recording.connect_grpc(grpc_url, default_blueprint=blueprint(topics))
    return ServedViewer(recording, viewer_url(web_port, grpc_port), grpc_url, server)
