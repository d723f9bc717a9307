"""The evaluation summary over episodes (the closed loop itself: test_eval_closed_loop.py)."""

from __future__ import annotations

import pytest

from xwam_ros.evaluation.runner import summarize


def episode(success, chunks, prefixes, refusals, by_kind, jump_mean, frozen=1.0, imagined=0):
    return {
        "success": success,
        "chunks": chunks,
        "decode_latency_ms": [200.0] * chunks,
        "prefix_steps": prefixes,
        "executor_refusals": refusals,
        "refusals_by_kind": {"chunks_rejected_by_executor_by_kind": by_kind},
        "time_to_first_motion_s": 0.5,
        "frozen_time_s": frozen,
        "imaginations_completed": imagined,
        "imaginations_abandoned": 0,
        "boundary_discontinuity_rad_s_max": None if jump_mean is None else 2 * jump_mean,
        "boundary_discontinuity_rad_s_mean": jump_mean,
        "imagination": [],
    }


def test_the_summary_adds_refusals_by_kind_and_averages_splices():
    summary = summarize(
        [
            episode(True, 3, [0, 4, 5], 1, {"jump": 1}, 0.2, frozen=0.0, imagined=2),
            episode(False, 2, [0, 3], 3, {"jump": 1, "ik": 2}, 0.4),
            episode(False, 1, [0], None, None, None),  # no executor status came
        ]
    )
    assert summary["success_rate"] == pytest.approx(0.333, abs=1e-3)
    assert summary["executor_refusals"] == 4
    assert summary["executor_refusals_per_chunk"] == pytest.approx(4 / 6, abs=1e-3)
    assert summary["episodes_frozen"] == 2
    assert summary["frozen_time_s_mean"] == pytest.approx(2 / 3, abs=1e-3)
    assert summary["time_to_first_motion_s_mean"] == pytest.approx(0.5)
    assert summary["imaginations_completed"] == 2
    assert summary["episodes_with_an_imagination"] == 1
    assert summary["executor_refusals_by_kind"] == {"ik": 2, "jump": 2}
    assert summary["prefix_steps_mean"] == pytest.approx(2.0)
    assert summary["boundary_discontinuity_rad_s_mean"] == pytest.approx(0.3)
