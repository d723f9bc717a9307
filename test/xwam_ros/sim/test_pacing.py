"""The real-time pacer: simulated time capped at a factor of wall time, the factor measured."""

import pytest

from xwam_ros.sim.pacing import RealTimePacer


class FakeWallClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_waits_until_wall_time_catches_up_with_the_cap():
    wall = FakeWallClock()
    pacer = RealTimePacer(real_time_factor=2.0, wall_clock=wall)
    assert pacer.delay(0.0) == 0.0  # the first call anchors the schedule
    assert pacer.delay(1.0) == pytest.approx(0.5)  # 1 simulated second = 0.5 s at 2x
    wall.now += 0.2
    assert pacer.delay(1.0) == pytest.approx(0.3)


def test_small_lags_are_caught_up_and_large_ones_are_not():
    wall = FakeWallClock()
    pacer = RealTimePacer(real_time_factor=1.0, max_lag=0.25, wall_clock=wall)
    pacer.delay(0.0)
    wall.now += 0.2  # a slow step: 0.1 s behind at simulated time 0.1
    assert pacer.delay(0.1) == 0.0
    assert pacer.delay(0.3) == pytest.approx(0.1)  # the lag is made up, not the full 0.2
    wall.now += 5.0  # a long pause: no sprint afterwards, the schedule restarts here
    assert pacer.delay(0.4) == 0.0
    assert pacer.delay(0.5) == pytest.approx(0.1)


def test_uncapped_never_waits():
    wall = FakeWallClock()
    pacer = RealTimePacer(real_time_factor=0.0, wall_clock=wall)
    assert pacer.delay(0.0) == 0.0
    assert pacer.delay(1000.0) == 0.0


def test_achieved_factor_over_the_recent_window():
    wall = FakeWallClock()
    pacer = RealTimePacer(real_time_factor=1.0, window=2.0, wall_clock=wall)
    assert pacer.achieved == 0.0
    for step in range(1, 101):  # 0.5 simulated seconds per wall second
        wall.now += 0.1
        pacer.record(0.05 * step)
    assert pacer.achieved == pytest.approx(0.5)
    for step in range(101, 201):  # then 2x: the window forgets the slow part
        wall.now += 0.1
        pacer.record(5.0 + 0.2 * (step - 100))
    assert pacer.achieved == pytest.approx(2.0)
    pacer.restart()
    assert pacer.achieved == 0.0
