"""Keeping simulated time at or below real time, and measuring the real-time factor achieved.

Simulated time is what the simulator integrates (and what `/clock` carries); wall time is the
host's monotonic clock. The pacer never lets simulated time run ahead of
`real_time_factor x wall time` since its anchor. When the simulation is slower than that, it
runs flat out; a lag of more than `max_lag` wall seconds (a long render, a reset, a busy CPU)
moves the anchor instead of being caught up in a sprint.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RealTimePacer:
    """Says how long to wait before the next step, and the real-time factor achieved."""

    def __init__(
        self,
        real_time_factor: float,
        max_lag: float = 0.25,
        window: float = 2.0,
        wall_clock: Callable[[], float] = time.monotonic,
    ):
        self.cap = real_time_factor
        self.max_lag = max_lag
        self.window = window
        self.wall_clock = wall_clock
        self._anchor: tuple[float, float] | None = None
        self.falls_behind = 0  # times the schedule was restarted after lagging too far
        self._history: deque[tuple[float, float]] = deque()

    def delay(self, sim_time: float) -> float:
        """Wall seconds to wait before simulating up to `sim_time` (0 when uncapped or late)."""
        now = self.wall_clock()
        if self.cap <= 0:
            return 0.0
        if self._anchor is None:
            self._anchor = (now, sim_time)
        wall0, sim0 = self._anchor
        due = wall0 + (sim_time - sim0) / self.cap
        if now - due > self.max_lag:
            # Too far behind: restart the schedule from here rather than sprint to catch up.
            self._anchor = (now, sim_time)
            self.falls_behind += 1
            return 0.0
        return max(due - now, 0.0)

    def record(self, sim_time: float) -> None:
        """Note that simulated time has reached `sim_time` (for `achieved`)."""
        now = self.wall_clock()
        self._history.append((now, sim_time))
        while len(self._history) > 2 and now - self._history[1][0] >= self.window:
            self._history.popleft()

    def restart(self) -> None:
        """Forget the schedule and the history (after a pause such as an episode reset)."""
        self._anchor = None
        self._history.clear()

    @property
    def achieved(self) -> float:
        """Simulated seconds per wall second over the last `window` wall seconds (0 if unknown)."""
        if len(self._history) < 2:
            return 0.0
        (wall0, sim0), (wall1, sim1) = self._history[0], self._history[-1]
        return (sim1 - sim0) / (wall1 - wall0) if wall1 > wall0 else 0.0
