"""The executor's run state: started or stopped, the latching emergency stop, the watchdog,
and the count of every chunk not executed with the reason why.

Stop and emergency stop mean: stop sending. Nothing is commanded; the controller finishes
(or holds at the end of) the trajectory it already has. Only `reset` clears an emergency stop.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from xwam_ros.executor.safety import Rejection

# PolicyStatus.STATE_* values (kept here as numbers so this module imports no ROS).
STATE_IDLE, STATE_RUNNING, STATE_PAUSED, STATE_ESTOPPED = 0, 1, 2, 3


@dataclass(frozen=True)
class WatchdogTrip:
    """A stream that stopped (or never started): which one, why, and whether it ever arrived."""

    stream: str
    reason: str
    seen: bool


class Watchdog:
    """Trips when joint states or chunks stop arriving; clears when they arrive again."""

    def __init__(self, joint_state_timeout: float, chunk_timeout: float):
        self.timeouts_ns = {
            "joint_states": int(joint_state_timeout * 1e9),
            "chunks": int(chunk_timeout * 1e9),
        }

    def check_stream(
        self, stream: str, now_ns: int, received_ns: int | None
    ) -> WatchdogTrip | None:
        """The trip of one stream ("joint_states" or "chunks") given its last arrival, or None."""
        what = "joint state with every arm joint" if stream == "joint_states" else "action chunk"
        if received_ns is None:
            return WatchdogTrip(stream, f"no {what} received yet", seen=False)
        age, timeout = now_ns - received_ns, self.timeouts_ns[stream]
        if age > timeout:
            return WatchdogTrip(
                stream,
                f"no {what} for {age * 1e-9:.2f} s (timeout {timeout * 1e-9:.2f} s)",
                seen=True,
            )
        return None

    def check(
        self, now_ns: int, joint_states_ns: int | None, chunk_ns: int | None
    ) -> WatchdogTrip | None:
        """The first tripped stream, joint states before chunks, or None when both arrive."""
        return self.check_stream("joint_states", now_ns, joint_states_ns) or self.check_stream(
            "chunks", now_ns, chunk_ns
        )


class Supervisor:
    """Started/stopped, emergency stop, counters and the last refusal reason."""

    def __init__(self, autostart: bool = True):
        self.running = autostart
        self.estopped = False
        self.chunks_executed = 0
        self.rejections: Counter[str] = Counter()
        self.last_refusal_reason = ""

    @property
    def chunks_rejected(self) -> int:
        """Chunks not executed since the start (or the last reset)."""
        return sum(self.rejections.values())

    def gate(self) -> Rejection | None:
        """Why no chunk may be executed now whatever it holds, or None."""
        if self.estopped:
            return Rejection("estop", "emergency stop latched; call ~/reset to clear it")
        if not self.running:
            return Rejection("stopped", "the executor is stopped; call ~/start to resume")
        return None

    def rejected(self, rejection: Rejection) -> None:
        """Count a chunk that was not executed and remember why."""
        self.rejections[rejection.category] += 1
        self.last_refusal_reason = str(rejection)

    def refused_to_send(self, reason: str) -> None:
        """Remember why sending stopped (a watchdog trip), without counting a chunk."""
        self.last_refusal_reason = reason

    def executed(self) -> None:
        """Count a chunk that was sent."""
        self.chunks_executed += 1

    def emergency_stop(self) -> None:
        """Latch the emergency stop: nothing is sent until `reset`."""
        self.estopped = True
        self.last_refusal_reason = "estop: emergency stop requested"

    def reset(self) -> None:
        """Clear the emergency stop, the counters and the last reason."""
        self.estopped = False
        self.chunks_executed = 0
        self.rejections.clear()
        self.last_refusal_reason = ""

    def start(self) -> tuple[bool, str]:
        """Resume sending, unless the emergency stop is latched."""
        if self.estopped:
            return False, "emergency stop latched; call ~/reset first"
        self.running = True
        return True, "started"

    def stop(self) -> tuple[bool, str]:
        """Stop sending (nothing is commanded)."""
        self.running = False
        return True, "stopped: nothing is sent until ~/start"

    def state(self, can_execute: bool) -> int:
        """The PolicyStatus state: e-stopped, paused (stopped), running, or idle (watchdog)."""
        if self.estopped:
            return STATE_ESTOPPED
        if not self.running:
            return STATE_PAUSED
        return STATE_RUNNING if can_execute else STATE_IDLE
