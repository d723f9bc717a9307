"""The decode-latency estimate and when the next chunk is requested."""

from __future__ import annotations

import pytest

from xwam_ros.executor.timing import LatencyEstimator, RequestScheduler

MS = 1_000_000


def test_latency_estimate_is_robust_and_follows_a_lasting_change():
    estimator = LatencyEstimator(initial=0.5, window=20, quantile=0.9)
    assert estimator.estimate == 0.5
    for _ in range(19):
        estimator.add(0.2)
    estimator.add(3.0)  # one stall
    assert estimator.estimate == pytest.approx(0.2)
    estimator.add(float("nan"))
    estimator.add(-1.0)
    assert len(estimator) == 20
    for _ in range(5):
        estimator.add(0.35)  # the model got slower
    assert estimator.estimate == pytest.approx(0.35)


def test_the_initial_latency_counts_until_the_window_is_full_of_measured_ones():
    estimator = LatencyEstimator(initial=0.5, window=20, quantile=0.9)
    estimator.add(0.26)  # the first decode, from an idle model: not the one to plan with
    assert estimator.estimate == 0.5
    for _ in range(8):
        estimator.add(0.3)
    assert estimator.estimate == 0.5  # the highest of ten, the initial among them
    # With the largest as the quantile, the initial stays until the window is full.
    largest = LatencyEstimator(initial=0.5, window=20, quantile=1.0)
    for _ in range(19):
        largest.add(0.3)
    assert largest.estimate == 0.5
    largest.add(0.3)
    assert largest.estimate == pytest.approx(0.3)
    slower = LatencyEstimator(initial=0.5, window=20, quantile=0.9)
    slower.add(0.8)  # a measured latency above the initial one wins at once
    assert slower.estimate == pytest.approx(0.8)


def test_requests_when_time_left_falls_below_latency_plus_margin():
    scheduler = RequestScheduler(margin=0.15, idle_period=0.5)
    # Idle: at once, then every idle period.
    assert scheduler.should_request(0, 0.3)
    assert not scheduler.should_request(400 * MS, 0.3)
    assert scheduler.should_request(500 * MS, 0.3)

    scheduler.chunk_started(chunk_id=4, end_ns=2_000 * MS)
    assert scheduler.time_left(1_000 * MS) == pytest.approx(1.0)
    assert not scheduler.should_request(1_500 * MS, 0.3)  # 0.5 s left >= 0.45
    assert scheduler.should_request(1_560 * MS, 0.3)  # 0.44 s left
    assert not scheduler.should_request(1_600 * MS, 0.3)  # once per chunk
    scheduler.chunk_started(chunk_id=5, end_ns=2_400 * MS)
    assert scheduler.should_request(1_960 * MS, 0.3)
    # The chunk ran out without a successor: back to idle requests.
    assert scheduler.time_left(2_500 * MS) == pytest.approx(-0.1)
    assert scheduler.should_request(2_500 * MS, 0.3)
