"""What every xwam node shares: declared parameters with descriptions, and the run loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


@dataclass(frozen=True)
class Param:
    """A ROS parameter of a node: its name, default value and description."""

    name: str
    default: Any
    description: str


def declare_parameters(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare `params` on `node` (with descriptions) and return their current values."""
    values = {}
    for param in params:
        descriptor = ParameterDescriptor(description=param.description)
        values[param.name] = node.declare_parameter(param.name, param.default, descriptor).value
    return values


def run_node(
    factory: Callable[[], Node], args: Sequence[str] | None = None, threads: int = 1
) -> int:
    """Init rclpy, spin the node until Ctrl-C or shutdown, clean up; the process exit code.

    A node whose construction fails (a bad parameter, a bad configuration file) logs why and
    returns 2, without a traceback for expected errors.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = factory()
        executor = MultiThreadedExecutor(threads) if threads > 1 else None
        rclpy.spin(node, executor=executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # A message taken while Ctrl-C shuts the context down can fail to convert inside
        # rclpy, a moment before the context reports the shutdown. That is the shutdown we
        # asked for, not a crash; a context still up a second later means a real error.
        context = node.context if node else None
        deadline = time.monotonic() + 1.0
        while rclpy.ok(context=context) and time.monotonic() < deadline:
            time.sleep(0.01)
        if rclpy.ok(context=context):
            raise
    except ValueError as exc:
        name = node.get_name() if node else "xwam"
        rclpy.logging.get_logger(name).fatal(str(exc))
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
