"""A node (run as every xwam node is, by `run_node`) whose timer callback works for a while:
it prints when the work begins and when it ends, to show a Ctrl-C does not cut it short."""

import time

from rclpy.node import Node

from xwam_ros.node_support import run_node

WORK_S = 1.0


class BusyCallback(Node):
    """One timer whose callback takes WORK_S seconds (as a bag write or a decode can)."""

    def __init__(self):
        super().__init__("busy_callback")
        self.create_timer(0.2, self.work)

    def work(self) -> None:
        print("work begins", flush=True)
        deadline = time.monotonic() + WORK_S
        while time.monotonic() < deadline:  # busy, as computation is, not asleep
            sum(range(1000))
        print("work ends", flush=True)


if __name__ == "__main__":
    raise SystemExit(run_node(BusyCallback))
