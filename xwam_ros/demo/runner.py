"""Run the demo episode: start the graph, watch a number of chunks, report, write the reel.

The graph's own output goes to `<output>/launch.log`; the terminal gets one progress line per
chunk. The episode ends after `chunks` chunks have been decoded and sent (and the imagined
futures have had time to come true), when `timeout` wall seconds pass, when a required node
dies, or on Ctrl-C; in every case the report is written with what happened. The graph and the
progress lines are the episode harness's (`xwam_ros.episodes`); the report's `episode` holds
its per-episode metrics, from the first chunk (before it the model is starting up).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.model import load_model_config
from xwam_ros.config.robot import load_robot_config
from xwam_ros.demo.reel import write_reel
from xwam_ros.demo.report import build_report
from xwam_ros.demo.watcher import EpisodeWatcher
from xwam_ros.episodes import episode_metrics, progress, run_episodes
from xwam_ros.graph import describe_graph
from xwam_ros.joint_state_store import stamp_to_ns
from xwam_ros.viewer.cli import ViewOptions, start_viewer

DEMO_GRAPH = "demo"
SETTLE_S = 1.0  # simulated seconds the last imagined future is given to come true
IMAGINATION_WAIT_S = 60.0  # wall seconds after the last chunk to wait for imagined futures


say = progress("demo")


def run_demo(
    *,
    chunks: int,
    timeout: float,
    output: Path,
    overrides: dict[str, str] | None = None,
    view: ViewOptions | None = None,
) -> int:
    """Run one demo episode; 0 when `chunks` chunks were decoded and executed. `view`: also
    serve the live browser view (`xwam_ros.viewer`)."""
    graph = describe_graph(DEMO_GRAPH, overrides)
    if graph.missing_nodes:
        say(
            "cannot run the closed loop; not written yet: "
            + ", ".join(f"{n.name} ({n.planned_in})" for n in graph.missing_nodes)
        )
        return 2
    sim = next(n for n in graph.nodes if n.executable == "sim_arm")
    robot = load_robot_config(sim.parameters["robot_config"])
    setup = load(CameraSetup, sim.parameters["cameras_config"])
    model = load_model_config(
        next(n for n in graph.nodes if n.executable == "model_node").parameters["model_config"]
    )
    # The model node imagines from the first chunk, then at most every n chunks (one at a time).
    every = model.imagine_every_n_chunks
    imaginations = -(-chunks // every) if every else 0
    output.mkdir(parents=True, exist_ok=True)
    say(
        f"{graph.description}; {chunks} chunks ({imaginations} imagined futures), node output "
        f"in {output / 'launch.log'}"
    )
    viewer = start_viewer(view, graph, output, say)

    # A SIGTERM (a `timeout`, a CI runner) stops the episode like Ctrl-C (the harness): the
    # graph is stopped in order and the report of what happened is still written.
    nodes: list[EpisodeWatcher] = []  # created once the harness has initialised rclpy

    def make_nodes(_alive):
        nodes.append(EpisodeWatcher(robot, setup))
        return nodes

    def one(_index: int, alive: Callable[[], bool]) -> dict:
        watcher = nodes[0]
        wall_start = time.monotonic()
        try:
            outcome = _watch(watcher, alive, chunks, imaginations, timeout, wall_start)
        except KeyboardInterrupt:
            outcome = "interrupted (Ctrl-C)"
        say(f"{outcome}; stopping the graph")
        return {
            "outcome": outcome,
            "success": watcher.success_seen,
            "wall_time_s": time.monotonic() - wall_start,
            "end_ns": watcher.now_ns(),
        }

    run = run_episodes(
        graph, output / "launch.log", make_nodes, 1, one, lambda row: row["outcome"], say
    )
    watcher = nodes[0]  # destroyed with the graph, but what it recorded stays readable
    row = run.rows[0] if run.rows else {"outcome": run.stopped, "wall_time_s": run.wall_time_s}
    end_ns = row.get("end_ns", max((t for t, _ in watcher.trajectories), default=0))
    outcome = row["outcome"]
    report = build_report(
        watcher,
        wall_time_s=row["wall_time_s"],
        sim_time_s=end_ns / 1e9,
        task=str(sim.parameters.get("task", "")),
    )
    # The policy runs from its first chunk: the time before it is the model's start-up.
    first_chunk_ns = watcher.chunks[0][0] if watcher.chunks else end_ns
    report["episode"] = episode_metrics(
        trajectories=[(t, m) for t, m in watcher.trajectories if t <= end_ns],
        joint_names=robot.joint_names,
        start_ns=first_chunk_ns,
        end_ns=end_ns,
        model_status=watcher.status,
        executor_status=watcher.executor_status,
    )
    report["reel_panels"] = write_reel(watcher, output / "reel.gif")
    report["outcome"] = outcome
    report["graph_exit_code"] = run.graph_exit_code
    (output / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    say(
        f"report: {output / 'report.json'}; reel: {output / 'reel.gif'} "
        f"({report['reel_panels']} panels)"
    )
    for key in (
        "chunks",
        "trajectories",
        "chunks_rejected_by_executor",
        "imaginations",
        "decode_latency_ms_p50",
        "obs_to_trajectory_ms_p50",
        "refused_observations",
        "refused_observations_by_kind",
        "tracking_error_rad_median",
        "success",
        "real_time_factor",
    ):
        say(f"  {key}: {report[key]}")
    for key, value in report["episode"].items():
        say(f"  {key}: {value}")
    if viewer is not None:
        viewer.hold_then_stop(say)
    return 0 if outcome.startswith("done") else 1


def _watch(
    watcher: EpisodeWatcher,
    alive: Callable[[], bool],
    chunks: int,
    imaginations: int,
    timeout: float,
    wall_start: float,
) -> str:
    reported = 0
    done_at_ns = None
    chunks_done_at = None  # wall time the last chunk was reported
    outcome = "done"
    while True:
        time.sleep(0.05)  # the watcher spins in the harness's thread
        if not alive():
            return "the graph stopped (a required node exited; see launch.log)"
        if time.monotonic() - wall_start > timeout:
            return f"timed out after {timeout:g} s"
        with watcher.lock:
            received = list(watcher.chunks)
            sent = len(watcher.trajectories)
        for arrival, chunk in received[reported:]:
            reported += 1
            if reported > chunks:  # decoded while the last imagined future comes true
                continue
            age_ms = arrival - stamp_to_ns(chunk.header.stamp)
            say(
                f"chunk {reported}/{chunks}: {chunk.num_steps}x{chunk.action_dim} "
                f"{chunk.action_space}, decode {chunk.decode_latency * 1e3:.0f} ms, "
                f"{age_ms / 1e6:.0f} ms after its observation; trajectories sent: {sent}"
            )
        if chunks_done_at is None and reported >= chunks and sent >= 1:
            chunks_done_at = time.monotonic()
        completed = watcher.complete_imaginations()
        if done_at_ns is None and chunks_done_at is not None:
            if completed >= imaginations:
                done_at_ns = watcher.now_ns()
            elif time.monotonic() - chunks_done_at > IMAGINATION_WAIT_S:
                # A machine too slow to imagine between decodes: end within a bound, say so.
                outcome = (
                    f"done; {completed} of {imaginations} imagined futures complete after "
                    f"waiting {IMAGINATION_WAIT_S:g} s (the decodes left them too little time)"
                )
                done_at_ns = watcher.now_ns()
        if done_at_ns is not None and watcher.now_ns() - done_at_ns > SETTLE_S * 1e9:
            return outcome
