"""Driving a generator of resumable pieces (an imagination's, a VAE decode's) to its end."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any


def run_pieces(
    steps: Generator[Any, None, Any], between: Callable[[int], None]
) -> tuple[list[Any], Any]:
    """Advance `steps` to its end, calling `between(n)` after each of its yields (n: yields
    so far), as a worker interleaves other work with the pieces. Returns what it yielded and
    what it returned."""
    yielded: list[Any] = []
    while True:
        try:
            yielded.append(next(steps))
        except StopIteration as done:
            return yielded, done.value
        between(len(yielded))
