"""Observation assembly: the latest frame of each camera and the latest joint state, checked.

ROS callbacks only store the latest message of each stream (cheap, under a lock). When the
policy asks for an observation, `take()` converts and checks them in the caller's thread:
every stream present, none older than the staleness limit, all within the skew limit of
each other, images decodable, camera intrinsics usable and matching the image size, every
configured joint present and finite. A refusal raises `ObservationRefusedError` with the reason,
and is counted by reason.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, Image, JointState

from xwam_ros.config.cameras import CameraSetup
from xwam_ros.conversions.images import ImageFormatError, camera_info_intrinsics, image_to_rgb

JOINT_STATES = "joint_states"


class ObservationRefusedError(Exception):
    """An observation could not be taken; `reason` says why, `kind` groups it for counting."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Observation:
    """What the policy gets: views in model slot order, intrinsics, joints, and when."""

    stamp_ns: int
    view_names: tuple[str, ...]
    images: tuple[np.ndarray, ...]
    intrinsics: tuple[np.ndarray, ...]
    joint_names: tuple[str, ...]
    joint_positions: np.ndarray
    stream_stamps_ns: dict[str, int]


def stamp_ns(msg) -> int:
    """A message header's stamp in integer nanoseconds."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class ObservationAssembler:
    """Keeps the latest message of every stream and assembles checked observations."""

    def __init__(self, setup: CameraSetup, joint_names: list[str]):
        self.setup = setup
        self.views = setup.ordered_views
        self.joint_names = tuple(joint_names)
        self.refusals: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._images: dict[str, Image] = {}
        self._infos: dict[str, CameraInfo] = {}
        self._joint_state: JointState | None = None

    def on_image(self, view: str, msg: Image) -> None:
        """Store the latest colour image of `view` (callback; no conversion here)."""
        with self._lock:
            self._images[view] = msg

    def on_camera_info(self, view: str, msg: CameraInfo) -> None:
        """Store the latest CameraInfo of `view`."""
        with self._lock:
            self._infos[view] = msg

    def on_joint_state(self, msg: JointState) -> None:
        """Store the latest joint state."""
        with self._lock:
            self._joint_state = msg

    def take(self, now_ns: int) -> Observation:
        """Assemble an observation at `now_ns`, or raise (and count) ObservationRefusedError."""
        try:
            return self._assemble(now_ns)
        except ObservationRefusedError as refusal:
            self.refusals[refusal.kind] += 1
            raise

    def _assemble(self, now_ns: int) -> Observation:
        with self._lock:
            images = dict(self._images)
            infos = dict(self._infos)
            joint_state = self._joint_state
        streams: dict[str, object] = {}
        for view in self.views:
            if view.name not in images:
                raise ObservationRefusedError(
                    "missing", f"no image yet from view '{view.name}' ({view.image_topic})"
                )
            if view.name not in infos:
                raise ObservationRefusedError(
                    "missing",
                    f"no camera_info yet for view '{view.name}' ({view.camera_info_topic})",
                )
            streams[view.name] = images[view.name]
        if joint_state is None:
            raise ObservationRefusedError("missing", "no joint state yet")
        streams[JOINT_STATES] = joint_state

        stamps = {name: stamp_ns(msg) for name, msg in streams.items()}
        self._check_timing(stamps, now_ns)
        rgb, intrinsics = [], []
        for view in self.views:
            image, info = images[view.name], infos[view.name]
            try:
                rgb.append(image_to_rgb(image))
                k = camera_info_intrinsics(info)
            except ImageFormatError as exc:
                raise ObservationRefusedError("malformed", f"view '{view.name}': {exc}") from None
            if (info.width, info.height) != (image.width, image.height):
                raise ObservationRefusedError(
                    "malformed",
                    f"view '{view.name}': image is {image.width}x{image.height} "
                    f"but camera_info is {info.width}x{info.height}",
                )
            intrinsics.append(k)
        return Observation(
            stamp_ns=min(stamps.values()),
            view_names=tuple(v.name for v in self.views),
            images=tuple(rgb),
            intrinsics=tuple(intrinsics),
            joint_names=self.joint_names,
            joint_positions=self._joint_positions(joint_state),
            stream_stamps_ns=stamps,
        )

    def _check_timing(self, stamps: dict[str, int], now_ns: int) -> None:
        limit = self.setup.staleness_limit
        for name, stamp in stamps.items():
            age = (now_ns - stamp) * 1e-9
            if age > limit:
                raise ObservationRefusedError(
                    "stale", f"'{name}' is {age:.3f} s old (staleness limit {limit:g} s)"
                )
        skew = (max(stamps.values()) - min(stamps.values())) * 1e-9
        if skew > self.setup.skew_limit:
            oldest = min(stamps, key=stamps.get)
            newest = max(stamps, key=stamps.get)
            raise ObservationRefusedError(
                "skew",
                f"streams are {skew:.3f} s apart ('{oldest}' to '{newest}'; skew limit "
                f"{self.setup.skew_limit:g} s)",
            )

    def _joint_positions(self, msg: JointState) -> np.ndarray:
        if len(msg.position) != len(msg.name):
            raise ObservationRefusedError(
                "malformed",
                f"joint_states has {len(msg.name)} names but {len(msg.position)} positions",
            )
        index = {name: i for i, name in enumerate(msg.name)}
        missing = [n for n in self.joint_names if n not in index]
        if missing:
            raise ObservationRefusedError("malformed", f"joint_states lacks joints {missing}")
        positions = np.array([msg.position[index[n]] for n in self.joint_names])
        if not np.isfinite(positions).all():
            bad = [
                n for n, p in zip(self.joint_names, positions, strict=True) if not np.isfinite(p)
            ]
            raise ObservationRefusedError(
                "malformed", f"joint_states has non-finite positions for {bad}"
            )
        return positions
