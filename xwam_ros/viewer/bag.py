"""Replay a recorded rosbag2 bag into the viewer instead of live topics.

The bag's messages are deserialized into the same rclpy messages a subscription hands over
(`rclpy.serialization`), so the bridge shows a bag exactly as it shows the live loop; a message
stamped 0 takes its time of receipt as recorded. Any rosbag2 bag that rosbags reads (MCAP or
sqlite3): the recorder's episodes (`xwam launch record`; add the model node's `imagined/...`
topics to the recorder's `extra_topics` to keep the imagined futures), or `ros2 bag record`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader

from xwam_ros.recording import message_types
from xwam_ros.viewer.bridge import RerunBridge
from xwam_ros.viewer.ports import ViewerError
from xwam_ros.viewer.topics import ViewerTopics


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did: messages shown per topic, and topics left out with the reason."""

    messages: dict[str, int]
    skipped: list[str]


def replay_bag(
    path: str | Path,
    topics: ViewerTopics,
    bridge: RerunBridge,
    rate: float = 0.0,
    say: Callable[[str], None] = lambda _line: None,
) -> ReplaySummary:
    """Hand every message of `topics` in the bag at `path` to `bridge`, in recorded order.

    `rate`: 0 replays as fast as it reads (the page gets the whole bag at once, to scrub);
    r > 0 paces the messages at r times their recorded speed. ViewerError when the bag cannot be
    read or holds none of the topics (naming the ones it has).
    """
    path = Path(path)
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises many kinds; all mean "cannot read it"
        raise ViewerError(f"cannot open the bag {path}: {type(exc).__name__}: {exc}") from None
    try:
        return _replay(reader, path, topics, bridge, rate, say)
    finally:
        reader.close()


def _replay(reader, path, topics, bridge, rate, say) -> ReplaySummary:
    wanted = topics.by_name()
    connections, skipped = [], []
    for connection in reader.connections:
        topic = wanted.get(connection.topic)
        if topic is None:
            continue
        try:
            message_types.python_class(connection.msgtype)
        except message_types.MessageTypeError as exc:
            skipped.append(f"{connection.topic}: {exc}")
            continue
        connections.append(connection)
    if not connections:
        present = sorted({c.topic for c in reader.connections})
        raise ViewerError(
            f"the bag {path} has none of the topics the viewer shows for this graph "
            f"({', '.join(sorted(wanted))}); it has: {', '.join(present) or 'no topics'}"
            + (f"; left out: {'; '.join(skipped)}" if skipped else "")
        )
    classes = {c.id: message_types.python_class(c.msgtype) for c in connections}
    total = sum(c.msgcount for c in connections)
    say(f"replaying {total} messages on {len({c.topic for c in connections})} topics of {path}")
    counts: dict[str, int] = {}
    first_ns = wall_start = None
    done = 0
    messages = reader.messages(connections=connections)
    while True:
        try:
            connection, received_ns, raw = next(messages)
        except StopIteration:
            break
        except Exception as exc:  # a truncated or corrupt file
            raise ViewerError(
                f"cannot read the bag {path} past message {done}: {type(exc).__name__}: {exc}"
            ) from None
        if rate > 0:
            if first_ns is None:
                first_ns, wall_start = received_ns, time.monotonic()
            delay = (received_ns - first_ns) * 1e-9 / rate - (time.monotonic() - wall_start)
            if delay > 0:
                time.sleep(delay)
        topic = wanted[connection.topic]
        message = deserialize_message(bytes(raw), classes[connection.id])
        bridge.handle(topic.kind, topic.view, message, received_ns)
        counts[connection.topic] = counts.get(connection.topic, 0) + 1
        done += 1
        if done % 1000 == 0:
            say(f"replayed {done}/{total} messages")
    return ReplaySummary(counts, skipped)
