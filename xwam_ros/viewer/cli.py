"""`xwam view`, and the viewer process that `xwam demo --view` and `xwam eval --view` start.

    xwam view [graph] [--robot R] [--cameras C] [--bag PATH [--rate X]]
              [--web-port 9090] [--grpc-port 9876] [--duration S]

prints the URL to open (`[xwam view] open http://localhost:9090/?url=...`) once both servers
listen, then shows the graph's live topics (default graph: `demo`, the simulated arm; `robot`
with `--cameras <setup>` for a real arm), or replays a bag, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xwam_ros.graph.description import GraphDescription, describe_graph
from xwam_ros.viewer.ports import (
    DEFAULT_GRPC_PORT,
    DEFAULT_WEB_PORT,
    ViewerError,
    start_and_wait,
    stop_process,
)

READY = re.compile(r"\[xwam view\] open (http://\S+)")
START_TIMEOUT_S = 60.0  # importing rclpy and rerun and starting both servers: seconds


def say(message: str) -> None:
    """One progress line of `xwam view`."""
    print(f"[xwam view] {message}", flush=True)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The ports of the stream and the web viewer."""
    parser.add_argument(
        "--web-port",
        type=int,
        default=DEFAULT_WEB_PORT,
        help=f"port of the web viewer's page (default {DEFAULT_WEB_PORT})",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=DEFAULT_GRPC_PORT,
        help=f"port of the data stream the page connects to (default {DEFAULT_GRPC_PORT})",
    )


def add_view_parser(sub) -> None:
    """The `xwam view` subcommand."""
    view = sub.add_parser(
        "view", help="watch the policy loop and its imagined future live in a browser"
    )
    view.add_argument(
        "graph",
        nargs="?",
        default="demo",
        help="the graph whose topics to show: a name in config/graphs/ or a path (default: "
        "demo, the simulated arm; robot for a real arm)",
    )
    view.add_argument("--robot", help="robot configuration (name in config/robots/ or path)")
    view.add_argument("--cameras", help="camera setup (name in config/cameras/ or path)")
    view.add_argument("--bag", help="replay this rosbag2 bag (a folder) instead of live topics")
    view.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="with --bag: replay at this multiple of recorded speed (0: all at once, to scrub)",
    )
    add_server_arguments(view)
    view.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: until Ctrl-C)",
    )
    view.add_argument(
        "--memory-limit",
        default="25%",
        help="data the stream keeps for pages opened late: a share of RAM or a size (2GB); the "
        "oldest is dropped past it",
    )
    view.add_argument(
        "--server-log",
        help="file for the rerun server's own output (default: a temporary file, named on error)",
    )
    view.set_defaults(func=cmd_view)


def add_view_flags(parser: argparse.ArgumentParser) -> None:
    """`--view` and its options, for `xwam demo` and `xwam eval`."""
    parser.add_argument(
        "--view",
        action="store_true",
        help="also serve the live browser view (xwam view) and print its URL",
    )
    parser.add_argument(
        "--view-hold",
        type=float,
        default=-1.0,
        help="with --view: seconds the viewer keeps serving after the run (default -1: until "
        "Ctrl-C; 0: stop with the run)",
    )
    add_server_arguments(parser)


@dataclass(frozen=True)
class ViewOptions:
    """`--view` of `xwam demo` / `xwam eval`: ports, and how long to serve after the run."""

    web_port: int = DEFAULT_WEB_PORT
    grpc_port: int = DEFAULT_GRPC_PORT
    hold_s: float = -1.0


def view_options(args: argparse.Namespace) -> ViewOptions | None:
    """The ViewOptions of parsed `add_view_flags` arguments; None without --view."""
    if not args.view:
        return None
    return ViewOptions(args.web_port, args.grpc_port, args.view_hold)


def cmd_view(args: argparse.Namespace) -> int:
    """Run `xwam view`; the exit code (2 when it cannot start)."""
    overrides = {k: getattr(args, k) for k in ("robot", "cameras") if getattr(args, k)}
    try:
        return run_view(
            describe_graph(args.graph, overrides),
            bag=Path(args.bag) if args.bag else None,
            rate=args.rate,
            web_port=args.web_port,
            grpc_port=args.grpc_port,
            duration=args.duration,
            memory_limit=args.memory_limit,
            server_log=Path(args.server_log) if args.server_log else None,
        )
    except (ViewerError, ValueError) as exc:
        print(f"[xwam view] cannot start: {exc}", file=sys.stderr, flush=True)
        return 2


# Set by SIGINT/SIGTERM. The KeyboardInterrupt they also raise can land inside a subscription
# callback, where rclpy's executor may swallow it: the loops check this too, so a stop asked
# for always ends them.
_STOP = threading.Event()


def _interrupt(*_args) -> None:
    _STOP.set()
    raise KeyboardInterrupt


def run_view(
    graph: GraphDescription,
    *,
    bag: Path | None = None,
    rate: float = 0.0,
    web_port: int = DEFAULT_WEB_PORT,
    grpc_port: int = DEFAULT_GRPC_PORT,
    duration: float | None = None,
    memory_limit: str = "25%",
    server_log: Path | None = None,
) -> int:
    """Serve the viewer for `graph` (live, or the `bag`) until Ctrl-C, SIGTERM or `duration`.

    `server_log`: where the rerun server's output goes (default: a temporary file).

    ViewerError (a port in use, a bag without the topics) and ValueError (a graph without a
    model node) before anything is served.
    """
    # Imported here: rclpy and rerun take a second; `xwam --help` should not wait for them.
    from xwam_ros.viewer.bridge import RerunBridge
    from xwam_ros.viewer.server import serve
    from xwam_ros.viewer.topics import viewer_topics

    if bag is not None and not bag.exists():
        raise ViewerError(f"the bag {bag} does not exist")
    topics = viewer_topics(graph)
    served = serve(topics, web_port, grpc_port, memory_limit, server_log=server_log)
    bridge = RerunBridge(served.recording, topics, warn=say)
    say(f"open {served.url}")
    say(
        f"graph '{graph.name}': {len(topics.setup.views)} views, model node "
        f"{topics.model_node}" + (f", bag {bag}" if bag else ", live topics")
    )
    _STOP.clear()
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if duration is None else time.monotonic() + duration
    try:
        if bag is not None:
            _replay(bag, topics, bridge, rate, deadline)
        else:
            _live(topics, bridge, deadline)
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        served.close()
    say(f"stopped; messages shown: {dict(sorted(bridge.counts.items()))}")
    return 0


def _replay(bag: Path, topics, bridge, rate: float, deadline: float | None) -> None:
    from xwam_ros.viewer.bag import replay_bag

    summary = replay_bag(bag, topics, bridge, rate, say)
    for line in summary.skipped:
        say(f"left out: {line}")
    say(f"replayed {sum(summary.messages.values())} messages; serving until Ctrl-C")
    while not _STOP.is_set() and (deadline is None or time.monotonic() < deadline):
        time.sleep(0.2)


def _live(topics, bridge, deadline: float | None) -> None:
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    try:  # rclpy's C++ executor: a fraction of the Python executor's cost per message
        from rclpy.experimental import EventsExecutor as Executor
    except ImportError:
        from rclpy.executors import SingleThreadedExecutor as Executor

    from xwam_ros.viewer.live import ViewerNode

    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = ViewerNode(topics, bridge)
        for line in node.skipped:
            say(f"left out: {line}")
        executor = Executor()
        executor.add_node(node)
        while not _STOP.is_set() and (deadline is None or time.monotonic() < deadline):
            executor.spin_once(timeout_sec=0.1)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


class ViewerProcess:
    """`xwam view` in a process of its own beside a command's graph (`--view`).

    Its own process, so that logging the imagined futures never takes time from the command's
    nodes; its output goes to `log_path`. `start` returns once the URL is printed; ViewerError
    with the end of its log when it does not start.
    """

    def __init__(self, process: subprocess.Popen, log_path: Path, url: str, hold_s: float):
        self.process = process
        self.log_path = log_path
        self.url = url
        self.hold_s = hold_s
        atexit.register(self.stop)  # whatever ends the command, the viewer goes with it

    @classmethod
    def start(cls, graph: GraphDescription, log_path: Path, options: ViewOptions) -> ViewerProcess:
        """Start the viewer for `graph`'s model node; ViewerError when it does not come up."""
        model = next((n for n in graph.nodes if n.executable == "model_node"), None)
        if model is None:
            raise ViewerError(f"graph '{graph.name}' has no model node to view")
        command = [
            sys.executable,
            "-m",
            "xwam_ros.viewer",
            str(graph.source),
            "--robot",
            str(model.parameters["robot_config"]),
            "--cameras",
            str(model.parameters["cameras_config"]),
            "--web-port",
            str(options.web_port),
            "--grpc-port",
            str(options.grpc_port),
            "--server-log",
            str(log_path.with_name("rerun_server.log")),
        ]
        process, found = start_and_wait(
            command,
            log_path,
            lambda: READY.search(log_path.read_text()),
            START_TIMEOUT_S,
            "the viewer",
        )
        return cls(process, log_path, found.group(1), options.hold_s)

    def hold_then_stop(self, say: Callable[[str], None]) -> None:
        """Keep serving for `hold_s` seconds (< 0: until Ctrl-C), then stop the viewer."""
        if self.hold_s != 0 and self.process.poll() is None:
            until = "until Ctrl-C" if self.hold_s < 0 else f"for {self.hold_s:g} s"
            say(f"the viewer keeps serving {self.url} {until}")
            previous = signal.signal(signal.SIGTERM, _interrupt)
            end = None if self.hold_s < 0 else time.monotonic() + self.hold_s
            try:
                while self.process.poll() is None and (end is None or time.monotonic() < end):
                    time.sleep(0.2)
            except KeyboardInterrupt:
                pass
            finally:
                signal.signal(signal.SIGTERM, previous)
        self.stop()

    def stop(self) -> None:
        """Stop the viewer (SIGINT, then SIGKILL after 10 s); nothing if it has stopped."""
        stop_process(self.process, timeout=15.0)


def start_viewer(
    options: ViewOptions | None,
    graph: GraphDescription,
    output: Path,
    say_line: Callable[[str], None],
) -> ViewerProcess | None:
    """For `--view`: the viewer of `graph` started, its URL said, its log in
    `<output>/viewer.log`; None without --view. ViewerError when it does not start."""
    if options is None:
        return None
    viewer = ViewerProcess.start(graph, output / "viewer.log", options)
    say_line(f"viewer: open {viewer.url} (its log: {output / 'viewer.log'})")
    return viewer
