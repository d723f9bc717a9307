"""The one episode harness of `xwam demo`, `xwam eval` and `xwam collect`.

Each command describes its graph and what one episode is; the harness starts the graph (its
output to `<output>/launch.log`), spins the command's nodes, runs the episodes one after the
other with one progress line each, and ends cleanly when the graph stops, a service does not
answer, or on Ctrl-C / SIGTERM: the rows of the episodes that ran are returned either way, so
every command still writes what it measured.

`PolicyEpisodeClient` is the stop/reset/start choreography between policy episodes (model node
and executor stopped, sim reset from a seed, fresh frames awaited, both reset and started).

`episode_metrics` is what every policy episode reports besides its own numbers: the time to the
first motion (simulated seconds from the episode's start until its first trajectory starts: the
first decode), frozen time (simulated seconds after that during which no trajectory was
executing: the arm stalled mid-episode; all of the episode when it never moved), boundary
discontinuity (the jump of commanded joint velocity where one trajectory replaces the next),
refusals by kind, observation refusals by kind, and imaginations completed. The computations
are pure functions of recorded messages, so they are tested on synthetic data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from xwam_msgs.srv import ResetEpisode
from xwam_ros.demo.watcher import EXECUTOR_NODE, MODEL_NODE, SIM_NODE
from xwam_ros.graph.description import GraphDescription
from xwam_ros.graph.session import (
    GraphStoppedError,
    call_service,
    running_graph,
    spinning,
    wait_until,
)
from xwam_ros.joint_state_store import stamp_to_ns


def progress(command: str) -> Callable[[str], None]:
    """The progress printer of `xwam <command>`: one flushed line per call, prefixed."""

    def say(message: str) -> None:
        print(f"[xwam {command}] {message}", flush=True)

    return say


@dataclass
class EpisodesRun:
    """What `run_episodes` did: the rows of the episodes that ran, and how it ended."""

    rows: list[dict] = field(default_factory=list)
    stopped: str | None = None  # why it ended before the last episode (None: all ran)
    wall_time_s: float = 0.0
    graph_exit_code: int | None = None


def run_episodes(
    graph: GraphDescription,
    log_path: Path,
    make_nodes: Callable[[Callable[[], bool]], Sequence[Node]],
    episodes: int,
    run_one: Callable[[int, Callable[[], bool]], dict],
    describe: Callable[[dict], str],
    say: Callable[[str], None],
) -> EpisodesRun:
    """Start `graph`, spin `make_nodes(alive)` and run `run_one(index, alive)` `episodes` times.

    After each episode one line: `episode i/n: <describe(row)>; k/i successful, t s` (a row's
    `success` counts). `alive()` says whether the graph still runs. A GraphStoppedError or a
    Ctrl-C ends the run (the graph is stopped in order either way); the nodes are destroyed
    when it returns, but what they recorded stays readable.
    """
    run = EpisodesRun()
    started = time.monotonic()
    with running_graph(graph, log_path) as session:

        def alive() -> bool:
            return session.alive

        with spinning(*make_nodes(alive)):
            try:
                for index in range(episodes):
                    row = run_one(index, alive)
                    run.rows.append(row)
                    done = sum(bool(r.get("success")) for r in run.rows)
                    say(
                        f"episode {index + 1}/{episodes}: {describe(row)}; "
                        f"{done}/{len(run.rows)} successful, {time.monotonic() - started:.0f} s"
                    )
            except GraphStoppedError as exc:
                run.stopped = str(exc)
                say(f"stopped: {exc} (see {log_path})")
            except KeyboardInterrupt:
                run.stopped = "interrupted (Ctrl-C)"
                say(run.stopped)
    run.wall_time_s = round(time.monotonic() - started, 1)
    run.graph_exit_code = session.exit_code
    return run


class PolicyEpisodeClient(Node):
    """The services between policy episodes: the sim's reset, the model's and executor's
    start/stop/reset."""

    def __init__(self, alive: Callable[[], bool], name: str = "xwam_episodes"):
        super().__init__(
            name, parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, True)]
        )
        self.alive = alive
        self.sim_reset = self.create_client(ResetEpisode, f"{SIM_NODE}/reset")
        self.triggers = {
            f"{node}/{name}": self.create_client(Trigger, f"{node}/{name}")
            for node in (MODEL_NODE, EXECUTOR_NODE)
            for name in ("start", "stop", "reset")
        }

    def trigger(self, node: str, name: str) -> None:
        """Call a std_srvs/Trigger service; GraphStoppedError when it refuses."""
        response = call_service(
            self.triggers[f"{node}/{name}"], Trigger.Request(), 30.0, self.alive
        )
        if not response.success:
            raise GraphStoppedError(f"{node}/{name} refused: {response.message}")

    def reset_sim(self, seed: int) -> ResetEpisode.Response:
        """A new sim episode from `seed`."""
        response = call_service(self.sim_reset, ResetEpisode.Request(seed=seed), 60.0, self.alive)
        if not response.success:
            raise GraphStoppedError(f"the sim refused the reset: {response.message}")
        return response

    def stop_policy(self) -> None:
        """Stop the model node, then the executor (nothing new decoded, nothing executed)."""
        self.trigger(MODEL_NODE, "stop")
        self.trigger(EXECUTOR_NODE, "stop")

    def new_episode(
        self,
        seed: int,
        now_ns: Callable[[], int],
        settle_s: float,
        before_start: Callable[[], None] = lambda: None,
    ) -> tuple[ResetEpisode.Response, int]:
        """Stop the policy, reset the sim from `seed`, wait `settle_s` simulated seconds (the
        cameras show the new scene), call `before_start` (forget the last episode), reset both
        and start them; the sim's reset and the episode's start (simulated ns).

        The executor starts first, so the first chunk finds it running; the start is read
        before the model starts, so its first observation is inside the episode."""
        self.stop_policy()
        reset = self.reset_sim(seed)
        settled = now_ns() + int(settle_s * 1e9)
        wait_until(lambda: now_ns() >= settled, 60.0, "simulated time", self.alive)
        before_start()
        self.trigger(MODEL_NODE, "reset")
        self.trigger(EXECUTOR_NODE, "reset")
        self.trigger(EXECUTOR_NODE, "start")
        start_ns = now_ns()
        self.trigger(MODEL_NODE, "start")
        return reset, start_ns


# --- per-episode metrics ---------------------------------------------------------------------


def _trajectory_start_ns(arrival_ns: int, trajectory: JointTrajectory) -> int:
    # Stamp 0 means "start on receipt" (the executor's trajectories).
    stamp = stamp_to_ns(trajectory.header.stamp)
    return stamp if stamp > 0 else arrival_ns


def _point_times_ns(arrival_ns: int, trajectory: JointTrajectory) -> np.ndarray:
    start = _trajectory_start_ns(arrival_ns, trajectory)
    return np.array([start + stamp_to_ns(p.time_from_start) for p in trajectory.points])


def frozen_time_s(
    trajectories: Sequence[tuple[int, JointTrajectory]], start_ns: int, end_ns: int
) -> float:
    """Simulated seconds within [start_ns, end_ns] during which no trajectory was executing.

    A trajectory executes from its arrival until its last point's time (a later one replacing
    it only shortens that, so the union of those spans is what was covered).
    """
    if end_ns <= start_ns:
        return 0.0
    spans = sorted(
        (max(arrival, start_ns), min(int(_point_times_ns(arrival, t)[-1]), end_ns))
        for arrival, t in trajectories
        if t.points
    )
    covered, reach = 0, start_ns
    for begin, finish in spans:
        begin = max(begin, reach)
        if finish > begin:
            covered += finish - begin
            reach = finish
    return round((end_ns - start_ns - covered) * 1e-9, 3)


def first_motion_ns(
    trajectories: Sequence[tuple[int, JointTrajectory]], start_ns: int
) -> int | None:
    """The first arrival at or after `start_ns` of a trajectory with points (it executes from
    its arrival, as `frozen_time_s` counts), or None when none arrived."""
    arrivals = [arrival for arrival, t in trajectories if t.points and arrival >= start_ns]
    return min(arrivals) if arrivals else None


def commanded_velocity(
    arrival_ns: int, trajectory: JointTrajectory, time_ns: int, joint_names: Sequence[str]
) -> np.ndarray:
    """Joint velocities (rad/s) the trajectory commands at `time_ns`: the slope of the linear
    segment around it, zero before its first point and after its last (it holds them)."""
    index = [list(trajectory.joint_names).index(n) for n in joint_names]
    times = _point_times_ns(arrival_ns, trajectory)
    positions = np.array([[p.positions[i] for i in index] for p in trajectory.points])
    k = int(np.searchsorted(times, time_ns, side="right"))
    if k == 0 or k >= len(times):
        return np.zeros(len(joint_names))
    return (positions[k] - positions[k - 1]) / ((times[k] - times[k - 1]) * 1e-9)


def boundary_discontinuities(
    trajectories: Sequence[tuple[int, JointTrajectory]], joint_names: Sequence[str]
) -> list[float]:
    """At each switch to a new trajectory, the largest per-joint jump (rad/s) between the old
    and the new trajectory's commanded velocity at the switch time (its arrival)."""
    usable = [
        (arrival, t)
        for arrival, t in trajectories
        if t.points and set(joint_names) <= set(t.joint_names)
    ]
    jumps = []
    for (old_arrival, old), (arrival, new) in zip(usable, usable[1:]):
        before = commanded_velocity(old_arrival, old, arrival, joint_names)
        after = commanded_velocity(arrival, new, arrival, joint_names)
        jumps.append(float(np.abs(after - before).max()))
    return jumps


def refusals_by_kind(status) -> dict[str, int] | None:
    """A PolicyStatus's refusals by kind (None without a status): the model node's observations
    refused, the executor's chunks rejected."""
    if status is None:
        return None
    return dict(zip(status.refusal_kinds, (int(c) for c in status.refusal_counts)))


def episode_metrics(
    *,
    trajectories: Sequence[tuple[int, JointTrajectory]],
    joint_names: Sequence[str],
    start_ns: int,
    end_ns: int,
    model_status=None,
    executor_status=None,
) -> dict:
    """The numbers every policy episode reports (see the module's docstring).

    The model's counters are since its last reset, which every episode begins with; the
    executor counts its refusals only in aggregate (`chunks_rejected`, the last reason).
    """
    jumps = boundary_discontinuities(trajectories, joint_names)
    moved_ns = first_motion_ns(trajectories, start_ns)
    return {
        "time_to_first_motion_s": (
            round((moved_ns - start_ns) * 1e-9, 3) if moved_ns is not None else None
        ),
        "frozen_time_s": frozen_time_s(
            trajectories, start_ns if moved_ns is None else min(moved_ns, end_ns), end_ns
        ),
        "boundary_discontinuity_rad_s_max": round(max(jumps), 4) if jumps else None,
        "boundary_discontinuity_rad_s_mean": round(float(np.mean(jumps)), 4) if jumps else None,
        "refusals_by_kind": {
            "chunks_rejected_by_model": (
                int(model_status.chunks_rejected) if model_status is not None else None
            ),
            "chunks_rejected_by_executor": (
                int(executor_status.chunks_rejected) if executor_status is not None else None
            ),
            "chunks_rejected_by_executor_by_kind": refusals_by_kind(executor_status),
            "executor_goals_rejected": (
                int(executor_status.goals_rejected) if executor_status is not None else None
            ),
            "executor_goals_aborted": (
                int(executor_status.goals_aborted) if executor_status is not None else None
            ),
        },
        "executor_last_refusal": (
            executor_status.last_refusal_reason if executor_status is not None else None
        ),
        "observation_refusals_by_kind": refusals_by_kind(model_status),
        "imaginations_completed": (
            int(model_status.imaginations_completed) if model_status is not None else None
        ),
        "imaginations_abandoned": (
            int(model_status.imaginations_abandoned) if model_status is not None else None
        ),
        "imagination_completion_rate": imagination_completion_rate(model_status),
    }


def imagination_completion_rate(model_status) -> float | None:
    """Imagined futures completed / attempted (completed + abandoned), from the model node's
    counters; None without a status or before any was attempted."""
    if model_status is None:
        return None
    completed = int(model_status.imaginations_completed)
    attempted = completed + int(model_status.imaginations_abandoned)
    return round(completed / attempted, 3) if attempted else None
