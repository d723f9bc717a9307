"""QoS for recording: subscribe compatibly with every publisher, store what they offered.

As rosbag2 does: a subscription is RELIABLE only when every publisher is (a reliable
subscription never matches a best-effort publisher), TRANSIENT_LOCAL only when every
publisher is (so latched topics arrive), and the publishers' offered profiles are stored in
the bag so that `ros2 bag play` offers the same.
"""

from __future__ import annotations

from rclpy.duration import Duration
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)


def _time(duration: Duration) -> QosTime:
    nanoseconds = duration.nanoseconds
    return QosTime(nanoseconds // 1_000_000_000, nanoseconds % 1_000_000_000)


def to_bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbags stores it in metadata.yaml (rmw's numbering)."""
    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=_time(profile.deadline),
        lifespan=_time(profile.lifespan),
        liveliness=QosLiveliness(int(profile.liveliness)),
        liveliness_lease_duration=_time(profile.liveliness_lease_duration),
        avoid_ros_namespace_conventions=bool(profile.avoid_ros_namespace_conventions),
    )


def subscription_qos(offered: list[QoSProfile], depth: int) -> QoSProfile:
    """A subscription profile that matches every offered publisher profile."""
    reliable = bool(offered) and all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(
        p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )
