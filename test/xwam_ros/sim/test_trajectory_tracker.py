"""The trajectory tracker follows joint_trajectory_controller semantics (no ROS involved)."""

import numpy as np
import pytest

from xwam_ros.sim.trajectory_tracker import (
    InvalidTrajectoryError,
    Trajectory,
    TrajectoryPoint,
    TrajectoryTracker,
    interpolate,
)

JOINTS = ("j1", "j2")
ZERO = np.zeros(2)


def point(t, positions, velocities=None, accelerations=None):
    return TrajectoryPoint(
        t,
        np.asarray(positions, float),
        None if velocities is None else np.asarray(velocities, float),
        None if accelerations is None else np.asarray(accelerations, float),
    )


def trajectory(*points, start=0.0, names=JOINTS):
    return Trajectory(tuple(names), tuple(points), start)


def tracker_at(positions, from_desired_state=False):
    tracker = TrajectoryTracker(JOINTS, from_desired_state=from_desired_state)
    tracker.hold(np.asarray(positions, float))
    return tracker


def test_linear_interpolation_between_points_without_velocities():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [1.0, -2.0]), point(3.0, [2.0, 0.0])), now=10.0)
    # Stamp 0: starts at the first sample (t = 10); the measured state is the point before.
    first = tracker.sample(10.0, ZERO, ZERO)
    np.testing.assert_allclose(first.positions, [0.0, 0.0])
    np.testing.assert_allclose(tracker.sample(10.5, ZERO, ZERO).positions, [0.5, -1.0])
    middle = tracker.sample(12.0, ZERO, ZERO)
    np.testing.assert_allclose(middle.positions, [1.5, -1.0])
    np.testing.assert_allclose(middle.velocities, [0.5, 1.0])


def test_cubic_interpolation_matches_positions_and_velocities_at_both_ends():
    a = point(0.0, [0.0, 1.0], [1.0, 0.0])
    b = point(2.0, [1.0, 3.0], [0.0, -1.0])
    for t, expected in ((0.0, a), (2.0 - 1e-9, b)):
        out = interpolate(t, 0.0, a, 2.0, b)
        np.testing.assert_allclose(out.positions, expected.positions, atol=1e-6)
        np.testing.assert_allclose(out.velocities, expected.velocities, atol=1e-6)
    # A cubic Hermite segment, checked at its midpoint against the closed form.
    h = 2.0
    mid = interpolate(1.0, 0.0, a, h, b).positions
    hermite = 0.5 * a.positions + 0.125 * h * a.velocities + 0.5 * b.positions
    hermite -= 0.125 * h * b.velocities
    np.testing.assert_allclose(mid, hermite, atol=1e-12)


def test_quintic_interpolation_meets_accelerations():
    a = point(0.0, [0.0, 0.0], [0.0, 0.5], [1.0, 0.0])
    b = point(1.0, [1.0, 1.0], [0.0, 0.0], [-2.0, 0.0])
    start = interpolate(0.0, 0.0, a, 1.0, b)
    end = interpolate(1.0, 0.0, a, 1.0, b)
    np.testing.assert_allclose(start.accelerations, a.accelerations, atol=1e-9)
    np.testing.assert_allclose(end.positions, b.positions, atol=1e-9)
    np.testing.assert_allclose(end.accelerations, b.accelerations, atol=1e-9)


def test_holds_the_last_point_after_the_end():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(
        trajectory(point(0.25, [0.1, 0.1], [0.4, 0.4]), point(0.5, [0.2, 0.3], [0.0, 0.0])),
        now=0.0,
    )
    tracker.sample(0.0, ZERO, ZERO)
    held = tracker.sample(5.0, ZERO, ZERO)
    np.testing.assert_allclose(held.positions, [0.2, 0.3])
    np.testing.assert_allclose(held.velocities, [0.0, 0.0])


def test_state_reports_the_next_point_and_the_time_past_the_end():
    tracker = tracker_at([0.0, 0.0])
    assert tracker.state is None and not tracker.following
    tracker.accept(trajectory(point(1.0, [1.0, 1.0]), point(2.0, [2.0, 2.0])), now=3.0)
    assert tracker.following
    tracker.sample(3.0, ZERO, ZERO)
    first = tracker.state
    assert (first.next_index, first.first_sample, first.finished) == (0, True, False)
    assert first.elapsed == 0.0 and first.after_end == -2.0
    tracker.sample(4.5, ZERO, ZERO)
    assert (tracker.state.next_index, tracker.state.first_sample) == (1, False)
    tracker.sample(5.0, ZERO, ZERO)  # the last point's time: finished, as JTC's end() segment
    assert tracker.state.next_index == 2 and tracker.state.finished
    tracker.sample(5.25, ZERO, ZERO)
    assert tracker.state.after_end == pytest.approx(0.25)
    np.testing.assert_allclose(tracker.setpoint.positions, [2.0, 2.0])
    tracker.hold(np.array([0.5, 0.5]))
    assert tracker.state is None and not tracker.following


def test_validate_reorders_without_touching_the_active_trajectory():
    tracker = tracker_at([0.0, 0.0])
    checked = tracker.validate(trajectory(point(1.0, [5.0, 7.0]), names=("j2", "j1")), now=0.0)
    assert checked.joint_names == JOINTS
    np.testing.assert_allclose(checked.points[0].positions, [7.0, 5.0])
    assert not tracker.following


def test_without_a_trajectory_it_holds_the_held_position():
    tracker = tracker_at([0.4, -0.4])
    out = tracker.sample(1.0, np.array([9.0, 9.0]), ZERO)
    np.testing.assert_allclose(out.positions, [0.4, -0.4])


def test_first_segment_starts_from_the_measured_state_with_its_velocity():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [1.0, 1.0], [0.0, 0.0])), now=0.0)
    measured, velocity = np.array([0.5, 0.5]), np.array([2.0, 0.0])
    out = tracker.sample(0.0, measured, velocity)
    np.testing.assert_allclose(out.positions, measured)
    np.testing.assert_allclose(out.velocities, velocity)  # cubic: the start velocity is kept


def test_from_desired_state_starts_from_the_last_setpoint():
    tracker = tracker_at([0.3, 0.3], from_desired_state=True)
    tracker.accept(trajectory(point(1.0, [1.0, 1.0])), now=0.0)
    out = tracker.sample(0.0, np.array([0.0, 0.0]), ZERO)
    np.testing.assert_allclose(out.positions, [0.3, 0.3])


def test_nonzero_start_time_is_absolute():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [1.0, 1.0]), point(2.0, [2.0, 2.0]), start=5.0), now=1.0)
    tracker.sample(1.0, ZERO, ZERO)
    # The first point is due at 5 + 1 = 6 s: from the state at 1 s, linearly over 5 s.
    np.testing.assert_allclose(tracker.sample(3.5, ZERO, ZERO).positions, [0.5, 0.5])
    np.testing.assert_allclose(tracker.sample(6.5, ZERO, ZERO).positions, [1.5, 1.5])


def test_zero_stamp_starts_at_the_first_sample_not_at_acceptance():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [1.0, 1.0])), now=0.0)
    # Sampled first at 4 s: the trajectory starts then, its point is due at 5 s.
    np.testing.assert_allclose(tracker.sample(4.0, ZERO, ZERO).positions, [0.0, 0.0])
    np.testing.assert_allclose(tracker.sample(4.5, ZERO, ZERO).positions, [0.5, 0.5])


def test_a_new_trajectory_replaces_the_active_one_from_the_current_state():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(2.0, [2.0, 2.0])), now=0.0)
    tracker.sample(0.0, ZERO, ZERO)
    measured = tracker.sample(1.0, ZERO, ZERO).positions  # [1, 1], half way
    tracker.accept(trajectory(point(1.0, [-1.0, 0.0])), now=1.0)
    out = tracker.sample(1.0, measured, ZERO)
    np.testing.assert_allclose(out.positions, [1.0, 1.0])
    np.testing.assert_allclose(tracker.sample(1.5, ZERO, ZERO).positions, [0.0, 0.5])
    # The old trajectory's target (2, 2) never comes back.
    np.testing.assert_allclose(tracker.sample(10.0, ZERO, ZERO).positions, [-1.0, 0.0])


def test_joint_order_of_the_message_is_mapped_to_the_trackers():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [5.0, 7.0]), names=("j2", "j1")), now=0.0)
    tracker.sample(0.0, ZERO, ZERO)
    np.testing.assert_allclose(tracker.sample(2.0, ZERO, ZERO).positions, [7.0, 5.0])


def test_hold_drops_the_active_trajectory():
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [1.0, 1.0])), now=0.0)
    tracker.sample(0.0, ZERO, ZERO)
    tracker.hold(np.array([0.25, 0.5]))
    np.testing.assert_allclose(tracker.sample(2.0, ZERO, ZERO).positions, [0.25, 0.5])


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (trajectory(), "empty"),
        (trajectory(point(1.0, [1.0, 1.0]), names=("j1", "j3")), r"unknown: \[.j3.\]"),
        (trajectory(point(1.0, [1.0]), names=("j1",)), r"missing: \[.j2.\]"),
        (trajectory(point(1.0, [0, 0]), point(1.0, [1, 1])), "increase strictly"),
        (trajectory(point(1.0, [1.0, 2.0, 3.0])), "3 positions for 2 joints"),
        (trajectory(point(1.0, [1.0, 2.0], [1.0])), "1 velocities for 2 joints"),
        (trajectory(point(1.0, [np.nan, 0.0])), "non-finite"),
        (trajectory(point(1.0, [])), "no positions"),
        (trajectory(point(1.0, [1.0, 1.0]), start=2.0), "ends in the past"),
        (trajectory(point(1.0, [1.0, 1.0], [0.0, 1e-3])), "last point's velocities.*j2"),
    ],
)
def test_invalid_trajectories_are_rejected_and_the_active_one_kept(bad, reason):
    tracker = tracker_at([0.0, 0.0])
    tracker.accept(trajectory(point(1.0, [1.0, 1.0])), now=5.0)
    tracker.sample(5.0, ZERO, ZERO)
    with pytest.raises(InvalidTrajectoryError, match=reason):
        tracker.accept(bad, now=5.0)
    np.testing.assert_allclose(tracker.sample(9.0, ZERO, ZERO).positions, [1.0, 1.0])
