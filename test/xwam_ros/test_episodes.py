"""The episode harness's per-episode metrics on synthetic trajectories and statuses."""

from __future__ import annotations

import pytest
from builtin_interfaces.msg import Duration, Time
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_msgs.msg import PolicyStatus
from xwam_ros.episodes import (
    boundary_discontinuities,
    commanded_velocity,
    episode_metrics,
    first_motion_ns,
    frozen_time_s,
    progress,
    refusals_by_kind,
)

S = 10**9
JOINTS = ["a", "b"]


def trajectory(points: list[tuple[float, list[float]]], stamp_ns: int = 0) -> JointTrajectory:
    """A trajectory through (seconds from start, positions) points; stamp 0: start on receipt."""
    msg = JointTrajectory(joint_names=list(JOINTS))
    msg.header.stamp = Time(sec=stamp_ns // S, nanosec=stamp_ns % S)
    for t, q in points:
        ns = int(round(t * S))
        msg.points.append(
            JointTrajectoryPoint(positions=q, time_from_start=Duration(sec=ns // S, nanosec=ns % S))
        )
    return msg


def test_frozen_time_counts_the_gaps_between_trajectories():
    # Executing [1, 2] s and [3, 5] s of the [0, 6] s episode: frozen 1 + 1 + 1 s.
    trajectories = [
        (1 * S, trajectory([(0.0, [0, 0]), (1.0, [1, 1])])),
        (3 * S, trajectory([(0.0, [0, 0]), (2.0, [1, 1])])),
    ]
    assert frozen_time_s(trajectories, 0, 6 * S) == pytest.approx(3.0)


def test_frozen_time_overlapping_and_clipped_spans():
    # A replacement arrives before the first ends; the second runs past the episode's end.
    trajectories = [
        (0, trajectory([(0.0, [0, 0]), (2.0, [1, 1])])),
        (1 * S, trajectory([(0.0, [0, 0]), (5.0, [1, 1])])),
    ]
    assert frozen_time_s(trajectories, 0, 4 * S) == 0.0
    assert frozen_time_s([], 0, 4 * S) == pytest.approx(4.0)
    assert frozen_time_s(trajectories, 4 * S, 4 * S) == 0.0


def test_the_wait_for_the_first_motion_is_not_frozen_time():
    # The first decode takes 0.5 s; then [0.5, 2] s and [3, 6] s execute: 1 s frozen between.
    trajectories = [
        (S // 2, trajectory([(0.0, [0, 0]), (1.5, [1, 1])])),
        (3 * S, trajectory([(0.0, [0, 0]), (3.0, [1, 1])])),
        (S // 4, JointTrajectory(joint_names=list(JOINTS))),  # no points: no motion
    ]
    assert first_motion_ns(trajectories, 0) == S // 2
    assert first_motion_ns(trajectories, S) == 3 * S
    assert first_motion_ns([], 0) is None
    metrics = episode_metrics(
        trajectories=trajectories, joint_names=JOINTS, start_ns=0, end_ns=6 * S
    )
    assert metrics["time_to_first_motion_s"] == pytest.approx(0.5)
    assert metrics["frozen_time_s"] == pytest.approx(1.0)
    # An episode that never moved was frozen throughout.
    still = episode_metrics(trajectories=[], joint_names=JOINTS, start_ns=0, end_ns=2 * S)
    assert still["time_to_first_motion_s"] is None and still["frozen_time_s"] == pytest.approx(2.0)


def test_frozen_time_uses_a_nonzero_stamp_as_the_start():
    # Stamped to start at 2 s, arriving at 1 s, ending at 3 s: covered [1, 3] of [0, 4].
    stamped = trajectory([(0.0, [0, 0]), (1.0, [1, 1])], stamp_ns=2 * S)
    assert frozen_time_s([(1 * S, stamped)], 0, 4 * S) == pytest.approx(2.0)


def test_commanded_velocity_is_the_segment_slope_and_zero_outside():
    t = trajectory([(0.0, [0, 0]), (1.0, [1, -2]), (2.0, [1, -2])])
    assert commanded_velocity(0, t, S // 2, JOINTS).tolist() == pytest.approx([1.0, -2.0])
    assert commanded_velocity(0, t, 3 * S // 2, JOINTS).tolist() == pytest.approx([0.0, 0.0])
    assert commanded_velocity(0, t, 3 * S, JOINTS).tolist() == [0.0, 0.0]
    assert commanded_velocity(S, t, 0, JOINTS).tolist() == [0.0, 0.0]


def test_boundary_discontinuity_is_the_velocity_jump_at_each_switch():
    # The old trajectory moves joint b at -2 rad/s at the switch (0.5 s), the new one at +1.
    old = trajectory([(0.0, [0, 0]), (1.0, [1, -2])])
    new = trajectory([(0.0, [0.5, -1]), (1.0, [1.5, 0])])
    assert boundary_discontinuities([(0, old), (S // 2, new)], JOINTS) == pytest.approx([3.0])
    # A seamless continuation: no jump.
    same = trajectory([(0.0, [0.5, -1]), (0.5, [1, -2])])
    assert boundary_discontinuities([(0, old), (S // 2, same)], JOINTS) == pytest.approx([0.0])
    assert boundary_discontinuities([(0, old)], JOINTS) == []


def status(**fields) -> PolicyStatus:
    return PolicyStatus(**fields)


def test_refusals_and_imaginations_from_the_statuses():
    model = status(
        chunks_rejected=1,
        refusal_kinds=["stale", "skew"],
        refusal_counts=[3, 1],
        imaginations_completed=4,
        imaginations_abandoned=2,
    )
    executor = status(
        chunks_rejected=2,
        refusal_kinds=["deadline", "jump"],
        refusal_counts=[1, 1],
        goals_aborted=1,
        last_refusal_reason="too late",
    )
    assert refusals_by_kind(model) == {"stale": 3, "skew": 1}
    assert refusals_by_kind(None) is None
    metrics = episode_metrics(
        trajectories=[],
        joint_names=JOINTS,
        start_ns=0,
        end_ns=S,
        model_status=model,
        executor_status=executor,
    )
    assert metrics["frozen_time_s"] == pytest.approx(1.0)
    assert metrics["boundary_discontinuity_rad_s_max"] is None
    assert metrics["refusals_by_kind"] == {
        "chunks_rejected_by_model": 1,
        "chunks_rejected_by_executor": 2,
        "chunks_rejected_by_executor_by_kind": {"deadline": 1, "jump": 1},
        "executor_goals_rejected": 0,
        "executor_goals_aborted": 1,
    }
    assert metrics["executor_last_refusal"] == "too late"
    assert metrics["observation_refusals_by_kind"] == {"stale": 3, "skew": 1}
    assert metrics["imaginations_completed"] == 4
    assert metrics["imaginations_abandoned"] == 2
    assert metrics["imagination_completion_rate"] == 0.667
    empty = episode_metrics(trajectories=[], joint_names=JOINTS, start_ns=0, end_ns=0)
    assert empty["imaginations_completed"] is None
    assert empty["observation_refusals_by_kind"] is None


def test_progress_prefixes_and_flushes(capsys):
    progress("eval")("episode 1/1")
    assert capsys.readouterr().out == "[xwam eval] episode 1/1\n"
