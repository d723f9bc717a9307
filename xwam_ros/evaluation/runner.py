"""`xwam eval`: a policy's closed loop on the simulated arm, episode after episode, measured.

The demo graph (sim, model node, executor) runs with the model configuration asked for. Each
episode: the model node and the executor are stopped, the sim is reset from the episode's seed
(held-out placements: the expert's demonstrations use seeds from 0), the cameras are given
`SETTLE_S` to show the new scene, then both are reset and started. The episode ends at the
sim's first success, after `max_chunks` chunks have been executed, or after `episode_timeout`
wall seconds. Measured per episode: success (and when), chunks, the model node's decode
latencies, the executor's refusals, the harness's per-episode metrics (frozen time, boundary
discontinuity, refusals by kind, imaginations completed: `xwam_ros.episodes`), and every
imagined frame scored against the frame the sim rendered at the time it depicts
(`imagination_quality`). The graph, the stop/reset/start choreography and the progress lines
are the episode harness's (`xwam_ros.episodes`), shared with `xwam demo` and `xwam collect`.

`<output>/eval.json` holds the protocol, the episodes and the summary; `<output>/eval.png`
the one-page summary (with a baseline's summary beside it when `baseline` names another
evaluation's eval.json); `<output>/reel.gif` the first episode's imagined futures beside what
the sim rendered (as `make demo`'s reel); `<output>/launch.log` the graph's output.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.config.model import load_model_config
from xwam_ros.config.robot import load_robot_config
from xwam_ros.dataset.spec import model_parts
from xwam_ros.demo.reel import write_reel
from xwam_ros.demo.watcher import MODEL_NODE, EpisodeWatcher
from xwam_ros.episodes import (
    EpisodesRun,
    PolicyEpisodeClient,
    episode_metrics,
    progress,
    run_episodes,
)
from xwam_ros.evaluation.imagination_quality import score_imagination
from xwam_ros.evaluation.summary import write_summary_png
from xwam_ros.executor.chunk import Chunk
from xwam_ros.graph import describe_graph
from xwam_ros.graph.session import GraphStoppedError
from xwam_ros.viewer.cli import ViewOptions, start_viewer

EVAL_GRAPH = "demo"
SETTLE_S = 0.6  # simulated seconds after a reset before the policy starts (fresh frames)
METRICS = {
    "rgb_psnr": "rgb_psnr_db",
    "rgb_ssim": "rgb_ssim",
    "depth_abs_rel": "depth_abs_rel",
    "depth_rmse_m": "depth_rmse_m",
    "chamfer_m": "chamfer_m",
}


say = progress("eval")


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def _mean(values: list) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return round(float(np.mean(finite)), 4) if finite else None


def summarize(episodes: list[dict]) -> dict:
    """Success rate, chunks, latencies and the mean 4D metrics over episodes."""
    frames = [row for e in episodes for row in e["imagination"]]
    latencies = [v for e in episodes for v in e["decode_latency_ms"]]
    refusals = sum(e.get("executor_refusals") or 0 for e in episodes)
    summary = {
        "episodes": len(episodes),
        "successes": sum(bool(e["success"]) for e in episodes),
        "success_rate": (
            round(sum(bool(e["success"]) for e in episodes) / len(episodes), 3)
            if episodes
            else None
        ),
        "chunks_per_episode_mean": _mean([e["chunks"] for e in episodes]),
        "chunks_to_success_mean": _mean([e["chunks"] for e in episodes if e["success"]]),
        "decode_latency_ms_p50": _percentile(latencies, 50),
        "decode_latency_ms_p95": _percentile(latencies, 95),
        "imagined_frames_scored": len(frames),
        "time_to_first_motion_s_mean": _mean([e.get("time_to_first_motion_s") for e in episodes]),
        "frozen_time_s_mean": _mean([e.get("frozen_time_s") for e in episodes]),
        "episodes_frozen": sum(bool(e.get("frozen_time_s")) for e in episodes),
        "imaginations_completed": sum(e.get("imaginations_completed") or 0 for e in episodes),
        "imaginations_abandoned": sum(e.get("imaginations_abandoned") or 0 for e in episodes),
        "episodes_with_an_imagination": sum(
            bool(e.get("imaginations_completed")) for e in episodes
        ),
        "boundary_discontinuity_rad_s_max_mean": _mean(
            [e.get("boundary_discontinuity_rad_s_max") for e in episodes]
        ),
        "boundary_discontinuity_rad_s_mean": _mean(
            [e.get("boundary_discontinuity_rad_s_mean") for e in episodes]
        ),
        "executor_refusals": refusals,
        "executor_refusals_per_chunk": (
            round(refusals / max(1, sum(e["chunks"] for e in episodes)), 3) if episodes else None
        ),
        "executor_refusals_by_kind": _summed(
            (e.get("refusals_by_kind") or {}).get("chunks_rejected_by_executor_by_kind")
            for e in episodes
        ),
        "prefix_steps_mean": _mean([k for e in episodes for k in e.get("prefix_steps", [])]),
    }
    for key, name in METRICS.items():
        summary[name] = _mean([row[key] for row in frames])
    return summary


def run_evaluation(
    *,
    model: str,
    episodes: int,
    seed: int,
    max_chunks: int,
    output: Path,
    episode_timeout: float = 180.0,
    baseline: Path | None = None,
    view: ViewOptions | None = None,
) -> int:
    """Evaluate the model configuration `model`; 0 when every episode ran. `view`: also serve
    the live browser view (`xwam_ros.viewer`)."""
    graph = describe_graph(EVAL_GRAPH, {"model": model})
    sim = graph.node("sim_arm")
    robot = load_robot_config(sim.parameters["robot_config"])
    setup = load(CameraSetup, sim.parameters["cameras_config"])
    model_path = graph.node("xwam_model").parameters["model_config"]
    model_config = load_model_config(model_path)
    _, settings = model_parts(model_config)
    near = min(r.near for r in settings.depth_ranges)
    far = max(r.far for r in settings.depth_ranges)
    output.mkdir(parents=True, exist_ok=True)
    viewer = start_viewer(view, graph, output, say)
    task = str(sim.parameters.get("task", ""))
    say(
        f"{episodes} {task} episodes (seeds {seed}..{seed + episodes - 1}, at most {max_chunks} "
        f"chunks each) with {model_path}; graph output in {output / 'launch.log'}"
    )
    # The nodes exist only once the harness has initialised rclpy.
    nodes: dict = {}

    def make_nodes(alive):
        nodes["watcher"] = EpisodeWatcher(robot, setup, keep_depth=True)
        nodes["client"] = PolicyEpisodeClient(alive, "xwam_eval")
        return [nodes["watcher"], nodes["client"]]

    def one(index: int, alive) -> dict:
        watcher = nodes["watcher"]
        row = _episode(
            nodes["client"], watcher, seed + index, max_chunks, episode_timeout, near, far
        )
        if index == 0:  # what the imagination looked like, for a person to judge
            row["reel_panels"] = write_reel(watcher, output / "reel.gif", near, far)
        return row

    run: EpisodesRun = run_episodes(
        graph,
        output / "launch.log",
        make_nodes,
        episodes,
        one,
        lambda row: (
            f"seed {row['seed']}, {'success' if row['success'] else 'failure'} after "
            f"{row['chunks']} chunks ({row['sim_time_s']:.1f} s simulated, "
            f"{row['frozen_time_s']:.1f} s frozen)"
        ),
        say,
    )
    rows = run.rows
    report = {
        "policy": model_config.description,
        "model_config": str(model_path),
        "checkpoint": model_config.checkpoint or f"random weights ({model_config.preset})",
        "task": task,
        "protocol": {
            "episodes": episodes,
            "seeds": [seed, seed + episodes - 1],
            "max_chunks": max_chunks,
            "episode_timeout_s": episode_timeout,
            "settle_s": SETTLE_S,
            "sim_real_time_factor_cap": sim.parameters.get("real_time_factor"),
            "depth_range_m": [near, far],
        },
        "wall_time_s": run.wall_time_s,
        "summary": summarize(rows),
        "episodes": rows,
    }
    if baseline is not None:
        other = json.loads(Path(baseline).read_text())
        report["baseline"] = {"policy": other.get("policy"), **other["summary"]}
    (output / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    write_summary_png(report, output / "eval.png")
    summary = report["summary"]
    say(f"report: {output / 'eval.json'}; summary: {output / 'eval.png'}")
    for key in (
        "success_rate",
        "chunks_per_episode_mean",
        "decode_latency_ms_p50",
        *METRICS.values(),
    ):
        say(f"  {key}: {summary[key]}")
    if viewer is not None:
        viewer.hold_then_stop(say)
    return 0 if len(rows) == episodes else 1


def _episode(client, watcher, seed, max_chunks, timeout, near, far) -> dict:
    reset, start_ns = client.new_episode(seed, watcher.now_ns, SETTLE_S, before_start=watcher.clear)
    deadline = time.monotonic() + timeout
    last_chunk_ns = None
    while time.monotonic() < deadline:
        if not client.alive():
            raise GraphStoppedError("the graph stopped during an episode")
        if watcher.success_seen:
            break
        if last_chunk_ns is None:
            with watcher.lock:
                last = watcher.chunks[max_chunks - 1] if len(watcher.chunks) >= max_chunks else None
            if last is not None:
                # No more decodes; the executor finishes what it was sent: the chunk's last
                # step is due at its stamp (the observation) plus its steps, not its arrival
                # plus its steps (that counted the decode latency as frozen time at the end).
                client.trigger(MODEL_NODE, "stop")
                last_chunk_ns = int(Chunk.from_msg(last[1]).step_times_ns()[-1])
        elif watcher.now_ns() > last_chunk_ns:
            break  # the last chunk has been executed
        time.sleep(0.02)
    # After the budget, the episode ends with its last chunk, not when this loop noticed.
    end_ns = watcher.now_ns() if last_chunk_ns is None else min(watcher.now_ns(), last_chunk_ns)
    client.stop_policy()
    with watcher.lock:
        chunks = [c for arrival, c in watcher.chunks if arrival <= end_ns][:max_chunks]
        success_ns = watcher.success_ns
        trajectories = [(t, m) for t, m in watcher.trajectories if t <= end_ns]
    intrinsics = {
        view: np.array(info.k, dtype=np.float64).reshape(3, 3)
        for view, info in watcher.camera_infos.items()
    }
    scored = []
    for imagination in watcher.imaginations():
        if imagination.observation_ns < start_ns:
            continue
        scored += score_imagination(
            imagination.observation_ns,
            imagination.rgb,
            imagination.depth,
            lambda view, t, depth: watcher.frame_at(view, t, depth=depth),
            intrinsics,
            near,
            far,
            until_ns=end_ns,
        )
    objects = {
        name: [round(pose.position.x, 4), round(pose.position.y, 4), round(pose.position.z, 4)]
        for name, pose in zip(reset.object_names, reset.object_poses)
    }
    return {
        "seed": seed,
        "objects": objects,
        "success": success_ns is not None,
        "time_to_success_s": (
            round((success_ns - start_ns) * 1e-9, 2) if success_ns is not None else None
        ),
        "chunks": len(chunks),
        "sim_time_s": round((end_ns - start_ns) * 1e-9, 2),
        "decode_latency_ms": [round(c.decode_latency * 1e3, 1) for c in chunks],
        "prefix_steps": [int(c.prefix_steps) for c in chunks],
        "executor_refusals": _refusals(watcher),
        **episode_metrics(
            trajectories=trajectories,
            joint_names=watcher.robot.joint_names,
            start_ns=start_ns,
            end_ns=end_ns,
            model_status=watcher.status,
            executor_status=watcher.executor_status,
        ),
        "imagination": scored,
    }


def _summed(counts) -> dict[str, int]:
    """Counts by kind added up over the episodes (None entries skipped)."""
    total: dict[str, int] = {}
    for by_kind in counts:
        for kind, count in (by_kind or {}).items():
            total[kind] = total.get(kind, 0) + int(count)
    return dict(sorted(total.items()))


def _refusals(watcher) -> int | None:
    status = watcher.executor_status
    return int(status.chunks_rejected) if status is not None else None
