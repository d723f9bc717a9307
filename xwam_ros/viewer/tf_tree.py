"""The newest transform of every frame of /tf and /tf_static, and poses in one frame.

Enough for drawing the robot: each child frame keeps the latest transform from its parent
(no interpolation, no history, unlike tf2's buffer: the viewer draws the arm as it was at
the newest joint state).
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin


def transform_matrix(transform) -> np.ndarray:
    """A geometry_msgs/Transform as a 4x4 pose (metres)."""
    t, q = transform.translation, transform.rotation
    matrix = np.eye(4)
    matrix[:3, :3] = pin.Quaternion(q.w, q.x, q.y, q.z).normalized().toRotationMatrix()
    matrix[:3, 3] = t.x, t.y, t.z
    return matrix


class TfTree:
    """Frames and their parents, from TransformStamped messages."""

    def __init__(self):
        self.parents: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, transforms) -> None:
        """Take geometry_msgs/TransformStamped messages (a TFMessage's `transforms`)."""
        for stamped in transforms:
            child = stamped.child_frame_id.lstrip("/")
            parent = stamped.header.frame_id.lstrip("/")
            if child and parent and child != parent:
                self.parents[child] = (parent, transform_matrix(stamped.transform))

    def pose_in(self, frame: str, root: str) -> np.ndarray | None:
        """The pose [4, 4] of `frame` in `root`, or None when `frame` does not lead to `root`."""
        pose = np.eye(4)
        seen = set()
        while frame != root:
            if frame in seen or frame not in self.parents:
                return None
            seen.add(frame)
            parent, transform = self.parents[frame]
            pose = transform @ pose
            frame = parent
        return pose

    def segments_in(self, root: str) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
        """Every parent -> child link whose both ends lead to `root`: (parent, child, parent's
        origin [3], child's origin [3]) in `root`, metres."""
        segments = []
        for child, (parent, _) in sorted(self.parents.items()):
            child_pose, parent_pose = self.pose_in(child, root), self.pose_in(parent, root)
            if child_pose is not None and parent_pose is not None:
                segments.append((parent, child, parent_pose[:3, 3], child_pose[:3, 3]))
        return segments
