"""The commanded joint positions rebuilt from recorded commands (`xwam_ros.dataset.commands`):
a trajectory takes over when it arrives while its points are timed from its header stamp
(chunks of one plan join up), it starts from the measured state at its arrival, a zero stamp
times the points from the arrival, nothing is known before the first command, and a
forward-command array jumps and holds."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration, Time
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from xwam_ros.dataset.commands import (
    Command,
    CommandTimeline,
    command_from_array,
    command_from_trajectory,
)

MS = 1_000_000
S = 1_000_000_000
JOINT = "j"


def trajectory(stamp_ns: int, point_ms: list[int], positions: list[float], joints=(JOINT,)):
    message = JointTrajectory()
    message.header.stamp = Time(sec=stamp_ns // S, nanosec=stamp_ns % S)
    message.joint_names = list(joints)
    for ms, value in zip(point_ms, positions):
        ns = ms * MS
        point = JointTrajectoryPoint()
        point.positions = [float(value)] * len(joints)
        point.time_from_start = Duration(sec=ns // S, nanosec=ns % S)
        message.points.append(point)
    return message


def grid(start_ms: int, stop_ms: int, step_ms: int = 10) -> np.ndarray:
    return np.arange(start_ms, stop_ms + 1, step_ms, dtype=np.int64) * MS


def positions(commands, times, measured=None, valid=None):
    if measured is None:
        measured = np.full(len(times), -5.0)  # far from every command: its use shows
    if valid is None:
        valid = np.ones(len(times), dtype=bool)
    return CommandTimeline(commands).positions([JOINT], times, measured[:, None], valid)


def plan(ms: np.ndarray) -> np.ndarray:
    return np.sin(ms / 300.0)


def test_command_from_trajectory_reads_stamp_points_and_arrival():
    command = command_from_trajectory(trajectory(2 * S + 5 * MS, [0, 50], [1.0, 2.0]), 3 * S)
    assert command.start_ns == 2 * S + 5 * MS
    assert command.arrival_ns == command.active_ns == 3 * S
    assert command.point_ns.tolist() == [0, 50 * MS]
    assert command.positions[:, 0].tolist() == [1.0, 2.0]
    assert command.joint_names == (JOINT,)
    assert command_from_trajectory(trajectory(S, [], []), S) is None
    # Without an arrival a command is active from its start.
    assert Command(7, (JOINT,), np.zeros(1, np.int64), np.zeros((1, 1))).active_ns == 7


def test_chunks_of_one_plan_follow_the_plan_without_a_jump():
    stamp = 1 * S
    points = np.arange(0, 2001, 50)  # the plan: a point every 50 ms for 2 s
    first = points[points <= 1200]
    second = points[points >= 800]  # overlaps the first chunk by 400 ms
    # The second chunk arrives 1 s into the plan, with the same header stamp.
    commands = [
        command_from_trajectory(trajectory(stamp, first.tolist(), plan(first)), stamp),
        command_from_trajectory(trajectory(stamp, second.tolist(), plan(second)), stamp + S),
    ]
    times = grid(1000, 3000)
    values, valid = positions(commands, times)
    assert valid.all()
    expected = np.interp(times, stamp + points * MS, plan(points))
    np.testing.assert_allclose(values[:, 0], expected, atol=1e-12)
    # No jump at the second chunk's arrival (2.0 s): the step there is like its neighbours.
    arrival = int(np.flatnonzero(times == 2 * S)[0])
    steps = np.abs(np.diff(values[:, 0]))
    assert steps[arrival - 1] < 2 * steps[arrival - 3 : arrival + 3].mean() + 1e-9
    # After the last point the plan's end is held.
    assert values[-1, 0] == pytest.approx(plan(points)[-1])


def test_a_later_arrival_replaces_an_earlier_one_whatever_the_stamps():
    # The second message carries an older stamp but arrives later: it wins from its arrival.
    commands = [
        command_from_trajectory(trajectory(1 * S, [0, 2000], [0.0, 0.0]), 1 * S),
        command_from_trajectory(trajectory(S // 2, [0, 3000], [3.0, 3.0]), 2 * S),
    ]
    values, valid = positions(commands, grid(1000, 2500, 500))
    assert valid.all()
    assert values[:, 0].tolist() == [0.0, 0.0, 3.0, 3.0]


def test_a_trajectory_starting_after_its_arrival_starts_from_the_measured_state():
    old = command_from_trajectory(trajectory(0 * S, [0], [0.0]), 0)
    # Arrives at 1.0 s, its first point due at 1.2 s (stamp 1.0 s + 200 ms).
    new = command_from_trajectory(trajectory(1 * S, [200, 300], [2.0, 3.0]), 1 * S)
    times = grid(0, 1500, 50)
    measured = np.where(times < S, 0.0, 0.5)  # the arm is measured at 0.5 at the arrival
    values, valid = positions([old, new], times, measured=measured)
    assert valid.all()
    at = {int(t // MS): float(v) for t, v in zip(times, values[:, 0])}
    assert at[950] == 0.0  # before the arrival: the old command
    assert at[1000] == pytest.approx(0.5)  # the measured state at the arrival
    assert at[1100] == pytest.approx(1.25)  # halfway to the first point
    assert at[1200] == pytest.approx(2.0)
    assert at[1250] == pytest.approx(2.5)
    assert at[1500] == pytest.approx(3.0)


def test_a_stamp_ahead_of_the_arrival_takes_over_at_the_arrival():
    old = command_from_trajectory(trajectory(0, [0], [1.0]), 1)
    # Stamped 1.2 s, arrives at 1.0 s: from 1.0 s on it moves from the state to its first point.
    new = command_from_trajectory(trajectory(1200 * MS, [0, 100], [2.0, 2.0]), 1 * S)
    times = grid(800, 1400, 100)
    measured = np.full(len(times), 1.0)
    values, _ = positions([old, new], times, measured=measured)
    assert values[:, 0] == pytest.approx([1.0, 1.0, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_no_measured_state_at_the_arrival_holds_the_first_point():
    new = command_from_trajectory(trajectory(1 * S, [200], [2.0]), 1 * S)
    times = grid(1000, 1300, 100)
    valid_state = np.zeros(len(times), dtype=bool)
    values, valid = positions([new], times, measured=np.zeros(len(times)), valid=valid_state)
    assert valid.all()
    assert values[:, 0] == pytest.approx([2.0, 2.0, 2.0, 2.0])


def test_stamp_zero_times_the_points_from_the_arrival():
    command = command_from_trajectory(trajectory(0, [0, 100, 200], [0.0, 1.0, 2.0]), 5 * S)
    assert command.start_ns == 5 * S
    times = grid(5000, 5300, 50)
    values, valid = positions([command], times)
    assert valid.all()
    assert values[:, 0] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_times_before_the_first_arrival_are_not_known():
    command = command_from_trajectory(trajectory(2 * S, [0, 100], [1.0, 1.0]), 2 * S + 30 * MS)
    times = grid(1900, 2200)
    _, valid = positions([command], times)
    assert not valid[times < 2 * S + 30 * MS].any()
    assert valid[times >= 2 * S + 30 * MS].all()
    # Without any command for the joint nothing is known at all.
    _, valid = CommandTimeline([]).positions(
        [JOINT], times, np.zeros((len(times), 1)), np.ones(len(times), bool)
    )
    assert not valid.any()


def test_forward_commands_jump_and_hold():
    fingers = ["f1", "f2"]

    def array(values):
        message = Float64MultiArray()
        message.data = [float(v) for v in values]
        return message

    commands = [
        command_from_array(array([0.04, 0.03]), fingers, 1 * S),
        command_from_array(array([0.0, 0.01, 9.0]), fingers, 2 * S),  # extra entries ignored
    ]
    assert commands[1].positions.shape == (1, 2)
    timeline = CommandTimeline(commands)
    assert timeline.covers("f1") and timeline.covers("f2") and not timeline.covers("j")
    times = grid(500, 2500, 250)
    measured = np.full((len(times), 2), 0.5)
    values, valid = timeline.positions(fingers, times, measured, np.ones(len(times), bool))
    assert valid.tolist() == [t >= S for t in times]
    after_first = (times >= S) & (times < 2 * S)
    np.testing.assert_array_equal(values[after_first], [[0.04, 0.03]] * int(after_first.sum()))
    np.testing.assert_array_equal(values[times >= 2 * S], [[0.0, 0.01]] * 3)


def test_the_state_at_an_arrival_between_grid_times_is_the_nearest():
    new = command_from_trajectory(trajectory(1 * S, [500], [2.0]), 1010 * MS)
    times = grid(900, 1600, 100)
    measured = (times // MS).astype(np.float64) / 1000.0  # 0.9 at 0.9 s, 1.0 at 1.0 s, ...
    values, _ = positions([new], times, measured=measured)
    # The arrival (1.01 s) is nearest the 1.0 s sample: the trajectory starts from 1.0 there,
    # and at 1.1 s it has moved 0.09 of the 0.49 s to the first point at 1.5 s.
    assert values[2, 0] == pytest.approx(1.0 + (2.0 - 1.0) * 90 / 490)
