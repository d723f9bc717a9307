"""Monitor node: a one-line summary of the policy loop, for terminals and launch logs.

Subscribes to the action chunks, the policy status and the joint states, and logs every
`report_period` seconds the chunk rate, the last chunk's id and decode latency, the policy
state and counters, and the joint-state rate. It commands nothing.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState

from xwam_msgs.msg import ActionChunk, PolicyStatus
from xwam_ros.node_support import Param, declare_parameters, run_node

PARAMS = (
    Param("action_chunk_topic", "/xwam_model/action_chunk", "ActionChunk topic to watch"),
    Param("status_topic", "/xwam_model/status", "PolicyStatus topic to watch"),
    Param("joint_states_topic", "/joint_states", "JointState topic to watch"),
    Param("report_period", 2.0, "seconds between two summary lines"),
)
STATE_NAMES = {
    PolicyStatus.STATE_IDLE: "idle",
    PolicyStatus.STATE_RUNNING: "running",
    PolicyStatus.STATE_PAUSED: "paused",
    PolicyStatus.STATE_ESTOPPED: "E-STOPPED",
}


class Monitor(Node):
    """Counts what the policy loop publishes and logs a summary line periodically."""

    def __init__(self):
        super().__init__("xwam_monitor")
        p = declare_parameters(self, PARAMS)
        if p["report_period"] <= 0:
            raise ValueError(f"report_period must be > 0 seconds, got {p['report_period']}")
        self.chunks = 0
        self.chunks_in_window = 0
        self.joint_states_in_window = 0
        self.last_chunk: ActionChunk | None = None
        self.last_status: PolicyStatus | None = None
        self.window_start = time.monotonic()
        self.create_subscription(ActionChunk, p["action_chunk_topic"], self.on_chunk, 10)
        self.create_subscription(PolicyStatus, p["status_topic"], self.on_status, 10)
        self.create_subscription(
            JointState, p["joint_states_topic"], self.on_joint_state, qos_profile_sensor_data
        )
        self.create_timer(p["report_period"], self.report)

    def on_chunk(self, msg: ActionChunk) -> None:
        self.chunks += 1
        self.chunks_in_window += 1
        self.last_chunk = msg

    def on_status(self, msg: PolicyStatus) -> None:
        self.last_status = msg

    def on_joint_state(self, _msg: JointState) -> None:
        self.joint_states_in_window += 1

    def report(self) -> None:
        elapsed = max(time.monotonic() - self.window_start, 1e-9)
        parts = [f"chunks {self.chunks} ({self.chunks_in_window / elapsed:.1f} Hz)"]
        if self.last_chunk is not None:
            c = self.last_chunk
            parts.append(
                f"last chunk #{c.chunk_id} {c.num_steps}x{c.action_dim} "
                f"{c.action_space}, decode {c.decode_latency * 1e3:.0f} ms"
            )
        if self.last_status is not None:
            s = self.last_status
            parts.append(
                f"policy {STATE_NAMES.get(s.state, s.state)}, refused "
                f"{s.observations_refused}, rejected {s.chunks_rejected}"
            )
        parts.append(f"joint_states {self.joint_states_in_window / elapsed:.1f} Hz")
        self.get_logger().info(" | ".join(parts))
        self.chunks_in_window = 0
        self.joint_states_in_window = 0
        self.window_start = time.monotonic()


def main(args=None) -> int:
    return run_node(Monitor, args)


if __name__ == "__main__":
    raise SystemExit(main())
