"""What every xwam node shares: declared parameters with descriptions, and the run loop.

A node that cannot start says why in one line and exits with code 2, never with a traceback
for what a user got wrong: a parameter of the wrong type (`autostart:=maybe`,
`status_period:=fast`, or `status_period:=1` where a float is declared: ROS parameters are
typed by their default and do not convert), malformed `--ros-args`, or a `ValueError` from
the node's own checks (a bad configuration file).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.parameter import Parameter


@dataclass(frozen=True)
class Param:
    """A ROS parameter of a node: its name, default value and description."""

    name: str
    default: Any
    description: str


class ParameterTypeError(ValueError):
    """A parameter was given a value of another type than its declaration's."""

    def __init__(self, message: str, node_name: str):
        super().__init__(message)
        self.node_name = node_name


def declare_parameters(node: Node, params: Sequence[Param]) -> dict[str, Any]:
    """Declare `params` on `node` (with descriptions) and return their current values.

    Raises ParameterTypeError naming the parameter, the type it takes and the value given
    when an override (`-p name:=value`, a parameters file) has another type.
    """
    values = {}
    for param in params:
        descriptor = ParameterDescriptor(description=param.description)
        try:
            value = node.declare_parameter(param.name, param.default, descriptor).value
        except InvalidParameterTypeException as exc:
            message = _type_error_message(node, param, exc)
            raise ParameterTypeError(message, node.get_name()) from None
        values[param.name] = value
    return values


_TYPE_NAMES = {
    Parameter.Type.BOOL: "a bool (true or false)",
    Parameter.Type.INTEGER: "an integer",
    Parameter.Type.DOUBLE: "a float (with a decimal point: 1.0, not 1)",
    Parameter.Type.STRING: "a string",
    Parameter.Type.BYTE_ARRAY: "a list of bytes",
    Parameter.Type.BOOL_ARRAY: "a list of bools",
    Parameter.Type.INTEGER_ARRAY: "a list of integers",
    Parameter.Type.DOUBLE_ARRAY: "a list of floats (1.0, not 1)",
    Parameter.Type.STRING_ARRAY: "a list of strings",
}


def _type_error_message(node: Node, param: Param, exc: Exception) -> str:
    expected = _TYPE_NAMES.get(Parameter.Type.from_parameter_value(param.default), "?")
    # rclpy keeps the overrides it was given only in this attribute; without it, its own
    # message (which has the value and both types too) is the best there is.
    given = getattr(node, "_parameter_overrides", {}).get(param.name)
    if given is None:
        return f"parameter {param.name}: expected {expected}: {exc}"
    kind = _TYPE_NAMES.get(given.type_, given.type_.name.lower()).split(" (")[0]
    return f"parameter {param.name}: expected {expected}, got {given.value!r} ({kind})"


def run_node(
    factory: Callable[[], Node], args: Sequence[str] | None = None, threads: int = 1
) -> int:
    """Init rclpy, spin the node until Ctrl-C or shutdown, clean up; the process exit code.

    A node whose construction fails (a bad parameter, a bad configuration file) logs why and
    returns 2, without a traceback for expected errors. Ctrl-C stops it cleanly (code 0).
    """
    with _first_interrupt_only():
        try:
            rclpy.init(args=args)
        except rclpy_implementation.RCLError as exc:  # malformed --ros-args or parameters file
            print(f"[FATAL] cannot start the node: {exc}", file=sys.stderr, flush=True)
            return 2
        return _spin(factory, threads)


def _spin(factory: Callable[[], Node], threads: int) -> int:
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
    except (ValueError, ParameterException) as exc:
        # ParameterTypeError is a ValueError; a ParameterException comes from a parameter a
        # node declared by itself. Either way: one line, no traceback.
        name = node.get_name() if node else getattr(exc, "node_name", "xwam")
        rclpy.logging.get_logger(name).fatal(str(exc))
        return 2
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


def _interrupt_once(_signum, _frame) -> None:
    """SIGINT: stop (KeyboardInterrupt), and ignore every SIGINT after this one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


@contextlib.contextmanager
def _first_interrupt_only():
    """For the block, the first SIGINT stops the node and later ones are ignored.

    A Ctrl-C in the terminal of `ros2 launch` reaches every node twice: from the terminal (the
    same process group) and from launch, which passes it on. The second, arriving during the
    cleanup, would break it with a traceback. Installed before rclpy.init, which chains its own
    handler (the one that wakes the executor) to this one. Main thread only: elsewhere signal
    handlers cannot be set.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _interrupt_once)
    try:
        yield
    finally:
        # After a Ctrl-C the process is on its way out: a late second SIGINT must still be
        # ignored (restored, it would kill the interpreter while it finalizes).
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)
