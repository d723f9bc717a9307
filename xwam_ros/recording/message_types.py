"""Message types for bags: definitions and type hashes (rosbags), Python classes (rclpy).

A rosbag2 bag stores each topic's message definition and its RIHS01 type hash. rosbags knows
the standard messages of ROS 2 Kilted; any other type (xwam_msgs, a driver's custom message)
is read from the `.msg` files its package installs under `<prefix>/share/<package>/msg/`, in
every prefix of AMENT_PREFIX_PATH and this interpreter's prefix, its nested types included.
The same type store deserializes bags when datasets are built, without rclpy.
"""

from __future__ import annotations

import importlib
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore


class MessageTypeError(ValueError):
    """A message type whose definition or Python class cannot be found."""


def share_prefixes() -> list[Path]:
    """Install prefixes whose `share/` folders may hold interface packages."""
    prefixes = [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    prefixes.append(Path(sys.prefix))
    unique: list[Path] = []
    for prefix in prefixes:
        if prefix not in unique:
            unique.append(prefix)
    return unique


def _find_msg_file(msgtype: str) -> Path:
    package, kind, name = msgtype.split("/")
    looked = []
    for prefix in share_prefixes():
        candidate = prefix / "share" / package / kind / f"{name}.msg"
        looked.append(str(candidate.parent))
        if candidate.is_file():
            return candidate
    raise MessageTypeError(
        f"message type {msgtype}: no {name}.msg found under {', '.join(looked)} (install the "
        f"{package} package or source its setup file)"
    )


def _nested_names(definition: Any) -> set[str]:
    """Type names referenced anywhere in a rosbags field definition."""
    if isinstance(definition, str):
        return {definition} if definition.count("/") == 2 else set()
    if isinstance(definition, tuple | list):
        return set().union(*(_nested_names(item) for item in definition)) if definition else set()
    return set()


def ensure_registered(store: Typestore, msgtype: str) -> None:
    """Register `msgtype` (and the types it nests) from installed `.msg` files if unknown."""
    pending = [msgtype]
    while pending:
        name = pending.pop()
        if name in store.fielddefs:
            continue
        if name.count("/") != 2:
            raise MessageTypeError(f"message type {name}: expected pkg/msg/Type")
        types = get_types_from_msg(_find_msg_file(name).read_text(), name)
        store.register(types)
        for definition in types.values():
            pending.extend(n for n in _nested_names(definition) if n not in store.fielddefs)


@cache
def type_store() -> Typestore:
    """The process's type store: ROS 2 Kilted's messages, extended on demand."""
    return get_typestore(Stores.ROS2_KILTED)


def definition(msgtype: str) -> tuple[str, str]:
    """The message definition text (with nested types) and the RIHS01 hash of `msgtype`."""
    store = type_store()
    ensure_registered(store, msgtype)
    text, _ = store.generate_msgdef(msgtype, ros_version=2)
    return text, store.hash_rihs01(msgtype)


def python_class(msgtype: str) -> type:
    """The rclpy message class of `msgtype` (e.g. sensor_msgs/msg/Image)."""
    try:
        package, kind, name = msgtype.split("/")
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ValueError, ImportError, AttributeError) as exc:
        raise MessageTypeError(
            f"message type {msgtype}: no Python class ({exc}); is its package installed?"
        ) from None


def deserialize(data: bytes | memoryview, msgtype: str) -> Any:
    """A CDR-serialized message as a rosbags message object (fields as in ROS, arrays numpy)."""
    store = type_store()
    ensure_registered(store, msgtype)
    return store.deserialize_cdr(data, msgtype)
