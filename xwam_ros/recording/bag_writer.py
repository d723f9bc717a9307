"""An episode's rosbag2 folder, written as short MCAP splits so that a kill loses little.

rosbags' MCAP writer keeps the file's summary (the index every reader starts from) until it
is closed; a process killed before that leaves a file no reader opens. So the episode is
written as a sequence of complete MCAP files, like `ros2 bag record --max-bag-duration`:

- the split being written is `<bag>/<bag>.mcap` (rosbags' own writer names it so);
- every `split_period` seconds (wall time) it is closed by rosbags (summary, footer),
  renamed to `<bag>_<n>.mcap`, and metadata.yaml is rewritten (to a temporary file, then
  renamed over the old one) listing it;
- metadata.yaml exists from the first moment, with the episode's description in
  `custom_data` and `xwam.state: recording` until `close()` says `complete`.

At any instant the folder is a valid rosbag2 bag of every closed split: a recorder killed
mid-episode loses the split being written, at most `split_period` seconds, and nothing else.
The metadata is rosbag2's version 9, so `ros2 bag info` / `ros2 bag play` read the bag.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import yaml
from rosbags.interfaces import (
    Connection,
    ConnectionExtRosbag2,
    MessageDefinition,
    MessageDefinitionFormat,
    Qos,
)
from rosbags.rosbag2.enums import CompressionMode
from rosbags.rosbag2.metadata import dump_qos_v9
from rosbags.rosbag2.storage_mcap import McapWriter
from ruamel.yaml import YAML

from xwam_ros.recording.episode_info import EpisodeInfo, State

METADATA_NAME = "metadata.yaml"
METADATA_VERSION = 9
SERIALIZATION_FORMAT = "cdr"


class BagWriteError(RuntimeError):
    """The bag cannot be written as asked (folder exists, unknown topic, closed bag)."""


@dataclass
class SplitFile:
    """A closed MCAP split: its file name, time span and message count."""

    name: str
    start_ns: int
    end_ns: int
    message_count: int


@dataclass
class BagSummary:
    """What a closed bag holds."""

    path: Path
    message_count: int
    topic_counts: dict[str, int]
    files: list[str]
    duration_s: float
    bytes_written: int = 0


@dataclass
class _OpenSplit:
    storage: McapWriter
    opened_at: float
    start_ns: int = 2**63 - 1
    end_ns: int = 0
    message_count: int = 0
    added_types: set[str] = field(default_factory=set)


class EpisodeBagWriter:
    """Writes one episode bag; see the module docstring for the crash-safety scheme.

    Thread-safe: subscription callbacks, timers and services may call it from any thread.
    """

    def __init__(
        self,
        path: str | Path,
        info: EpisodeInfo,
        *,
        split_period: float = 1.0,
        fsync: bool = False,
        ros_distro: str | None = None,
    ):
        self.path = Path(path)
        if self.path.exists():
            raise BagWriteError(f"{self.path} exists already; an episode bag is never overwritten")
        if split_period <= 0:
            raise BagWriteError(f"split_period: expected > 0 seconds, got {split_period}")
        self.info = info
        self.split_period = split_period
        self.fsync = fsync
        self.ros_distro = ros_distro or os.environ.get("ROS_DISTRO", "kilted")
        self._lock = threading.RLock()
        self._connections: list[Connection] = []
        self._qos_text: dict[int, str] = {}
        self._counts: dict[int, int] = {}
        self._closed_splits: list[SplitFile] = []
        self._split: _OpenSplit | None = None
        self._closed = False
        self.bytes_written = 0
        self.path.mkdir(parents=True)
        self._write_metadata()

    # ------------------------------------------------------------------ topics

    def add_topic(
        self, topic: str, msgtype: str, msgdef: str, rihs01: str, qos: list[Qos] | None = None
    ) -> int:
        """Register a topic (its message definition, type hash and offered QoS); its id."""
        with self._lock:
            self._check_open()
            for existing in self._connections:
                if existing.topic == topic:
                    raise BagWriteError(f"{self.path}: topic {topic} is already in the bag")
            connection = Connection(
                id=len(self._connections) + 1,
                topic=topic,
                msgtype=msgtype,
                msgdef=MessageDefinition(MessageDefinitionFormat.MSG, msgdef),
                digest=rihs01,
                msgcount=0,
                ext=ConnectionExtRosbag2(
                    serialization_format=SERIALIZATION_FORMAT,
                    offered_qos_profiles=list(qos or []),
                ),
                owner=self,
            )
            self._connections.append(connection)
            self._qos_text[connection.id] = _qos_yaml(list(qos or []))
            self._counts[connection.id] = 0
            if self._split is not None:
                self._add_to_split(self._split, connection)
            self._write_metadata()
            return connection.id

    @property
    def topics(self) -> dict[str, int]:
        """Registered topics and their ids."""
        return {c.topic: c.id for c in self._connections}

    # ------------------------------------------------------------------ writing

    def write(self, topic_id: int, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Append one serialized (CDR) message, stamped `timestamp_ns` (receive time)."""
        with self._lock:
            self._check_open()
            if not 1 <= topic_id <= len(self._connections):
                raise BagWriteError(f"{self.path}: unknown topic id {topic_id}")
            split = self._split or self._open_split()
            split.storage.write(self._connections[topic_id - 1], timestamp_ns, data)
            split.start_ns = min(split.start_ns, timestamp_ns)
            split.end_ns = max(split.end_ns, timestamp_ns)
            split.message_count += 1
            self._counts[topic_id] += 1
            self.bytes_written += len(data)
            if time.monotonic() - split.opened_at >= self.split_period:
                self._close_split()

    def flush_due(self) -> None:
        """Close the split being written if it is older than `split_period` (call from a timer,
        so that a quiet spell does not leave recent messages unlisted)."""
        with self._lock:
            split = self._split
            if split is not None and time.monotonic() - split.opened_at >= self.split_period:
                self._close_split()

    def update_info(self, **changes) -> None:
        """Change the episode description (e.g. the outcome) and rewrite metadata.yaml."""
        with self._lock:
            for key, value in changes.items():
                setattr(self.info, key, value)
            self._write_metadata()

    def close(self, state: State = "complete") -> BagSummary:
        """Close the last split and write the final metadata with `state` (`complete` for an
        episode stopped properly, `interrupted` for one cut short by a shutdown)."""
        with self._lock:
            self._check_open()
            if self._split is not None:
                self._close_split(write_metadata=False)
            self.info.state = state
            self._write_metadata()
            self._closed = True
            return self.summary()

    def summary(self) -> BagSummary:
        """Messages, topics and files so far (closed splits and the open one)."""
        with self._lock:
            splits = self._closed_splits
            start = min((s.start_ns for s in splits), default=0)
            end = max((s.end_ns for s in splits), default=0)
            return BagSummary(
                path=self.path,
                message_count=sum(self._counts.values()),
                topic_counts={c.topic: self._counts[c.id] for c in self._connections},
                files=[s.name for s in splits],
                duration_s=max(0, end - start) * 1e-9,
                bytes_written=self.bytes_written,
            )

    # ------------------------------------------------------------------ splits

    def _check_open(self) -> None:
        if self._closed:
            raise BagWriteError(f"{self.path}: the bag is closed")

    def _open_split(self) -> _OpenSplit:
        # rosbags' McapWriter writes <folder>/<folder name>.mcap; the file is renamed when
        # closed, so that name is always free for the next split.
        split = _OpenSplit(McapWriter(self.path, CompressionMode.NONE), time.monotonic())
        for connection in self._connections:
            self._add_to_split(split, connection)
        self._split = split
        return split

    def _add_to_split(self, split: _OpenSplit, connection: Connection) -> None:
        if connection.msgtype not in split.added_types:
            split.storage.add_msgtype(connection)
            split.added_types.add(connection.msgtype)
        split.storage.add_connection(connection, self._qos_text[connection.id])

    def _close_split(self, write_metadata: bool = True) -> None:
        split, self._split = self._split, None
        assert split is not None
        split.storage.close(METADATA_VERSION, self._metadata_text(inner=True))
        name = f"{self.path.name}_{len(self._closed_splits)}.mcap"
        if self.fsync:
            _fsync_file(split.storage.path)
        os.replace(split.storage.path, self.path / name)
        self._closed_splits.append(
            SplitFile(name, split.start_ns, split.end_ns, split.message_count)
        )
        if write_metadata:
            self._write_metadata()

    # ------------------------------------------------------------------ metadata

    def _metadata(self) -> dict:
        splits = self._closed_splits
        start = min((s.start_ns for s in splits), default=0)
        end = max((s.end_ns for s in splits), default=0)
        listed = sum(s.message_count for s in splits)
        return {
            "version": METADATA_VERSION,
            "storage_identifier": "mcap",
            "relative_file_paths": [s.name for s in splits],
            "duration": {"nanoseconds": max(0, end - start)},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": listed,
            "topics_with_message_count": [
                {
                    "topic_metadata": {
                        "name": c.topic,
                        "type": c.msgtype,
                        "serialization_format": SERIALIZATION_FORMAT,
                        "offered_qos_profiles": dump_qos_v9(
                            list(c.ext.offered_qos_profiles)  # type: ignore[union-attr]
                        ),
                        "type_description_hash": c.digest,
                    },
                    "message_count": self._listed_count(c.id),
                }
                for c in self._connections
            ],
            "compression_format": "",
            "compression_mode": "",
            "files": [
                {
                    "path": s.name,
                    "starting_time": {"nanoseconds_since_epoch": s.start_ns},
                    "duration": {"nanoseconds": max(0, s.end_ns - s.start_ns)},
                    "message_count": s.message_count,
                }
                for s in splits
            ],
            "custom_data": self.info.to_custom_data(),
            "ros_distro": self.ros_distro,
        }

    def _listed_count(self, topic_id: int) -> int:
        """Messages of a topic in the closed splits (the open split is not part of the bag)."""
        if self._split is None:
            return self._counts[topic_id]
        # rosbags' writer counts the messages per channel of the file it writes.
        return self._counts[topic_id] - self._split.storage.channel_stats.get(topic_id, 0)

    def _metadata_text(self, inner: bool = False) -> str:
        information = self._metadata()
        stream = StringIO()
        writer = YAML(typ="safe")
        writer.default_flow_style = False
        writer.dump(information if inner else {"rosbag2_bagfile_information": information}, stream)
        return stream.getvalue().strip() if inner else stream.getvalue()

    def _write_metadata(self) -> None:
        target = self.path / METADATA_NAME
        temporary = self.path / (METADATA_NAME + ".tmp")
        with temporary.open("w", encoding="utf8") as stream:
            stream.write(self._metadata_text())
            if self.fsync:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, target)  # atomic: readers see the old or the new, never half


def _qos_yaml(profiles: list[Qos]) -> str:
    """The offered QoS as the YAML text rosbags stores in each MCAP channel."""
    stream = StringIO()
    writer = YAML(typ="safe")
    writer.default_flow_style = False
    writer.dump(dump_qos_v9(profiles), stream)
    return stream.getvalue().strip()


def _fsync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_metadata(path: str | Path) -> dict:
    """A bag folder's metadata.yaml (`rosbag2_bagfile_information`), as a dict."""
    text = (Path(path) / METADATA_NAME).read_text()
    return yaml.safe_load(text)["rosbag2_bagfile_information"]
