"""When to ask for the next chunk: a decode-latency estimate and the request rule.

The next decode must start early enough that its chunk arrives before the current one runs
out: a request goes out once the time left in the executing chunk falls below the decode
latency estimate plus a margin. While nothing is executing (at start, after a rejection, after
the last chunk ran out) requests repeat every `idle_period`, so a model node that decodes only
on request is never left waiting.
"""

from __future__ import annotations

from collections import deque

import numpy as np


class LatencyEstimator:
    """A robust running decode latency: a high quantile of the recent latencies.

    A quantile of a window, not a mean: one slow decode moves it by at most one sample's
    rank, and the estimate leans to the slow side, where being wrong costs a gap in motion.
    Until the window is full of measured latencies, `initial` counts as one of them: the
    first decodes come from an idle model (no imagination in progress to wait for) and are
    its fastest, so a plan made from one of them alone asks for the second chunk too late.
    """

    def __init__(self, initial: float, window: int = 20, quantile: float = 0.9):
        self.initial = initial
        self.quantile = quantile
        self._samples: deque[float] = deque(maxlen=window)

    def add(self, latency: float) -> None:
        """Record one measured latency (seconds); non-finite or negative values are ignored."""
        if np.isfinite(latency) and latency >= 0:
            self._samples.append(float(latency))

    @property
    def estimate(self) -> float:
        """The latency (seconds) to plan with."""
        samples = list(self._samples)
        if len(samples) < self._samples.maxlen:
            samples.append(self.initial)
        return float(np.quantile(np.array(samples), self.quantile, method="higher"))

    def __len__(self) -> int:
        return len(self._samples)


class RequestScheduler:
    """Decides when to request the next chunk; one request per executing chunk."""

    def __init__(self, margin: float, idle_period: float):
        self.margin_ns = int(margin * 1e9)
        self.idle_period_ns = int(idle_period * 1e9)
        self.chunk_id = 0
        self.chunk_end_ns: int | None = None
        self._requested_for_chunk = False
        self._last_request_ns: int | None = None

    def chunk_started(self, chunk_id: int, end_ns: int) -> None:
        """A chunk was sent; it ends (its last point is reached) at `end_ns`."""
        self.chunk_id = chunk_id
        self.chunk_end_ns = end_ns
        self._requested_for_chunk = False

    def time_left(self, now_ns: int) -> float:
        """Seconds until the executing chunk ends (negative once past; 0 before any chunk)."""
        if self.chunk_end_ns is None:
            return 0.0
        return (self.chunk_end_ns - now_ns) * 1e-9

    def should_request(self, now_ns: int, latency: float) -> bool:
        """Whether to request the next chunk now (and if so, remember that it was)."""
        executing = self.chunk_end_ns is not None and self.chunk_end_ns > now_ns
        if executing:
            due = self.chunk_end_ns - now_ns < int(latency * 1e9) + self.margin_ns
            request = due and not self._requested_for_chunk
        else:
            request = (
                self._last_request_ns is None
                or now_ns - self._last_request_ns >= self.idle_period_ns
            )
        if request:
            self._requested_for_chunk = True
            self._last_request_ns = now_ns
        return request
