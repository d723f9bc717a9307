"""Closed-loop evaluation of a policy in the simulator."""
