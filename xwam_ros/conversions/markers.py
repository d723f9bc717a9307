"""The predicted end-effector path as a visualization_msgs/MarkerArray for RViz."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray


def ee_path_markers(
    positions: np.ndarray,
    header: Header,
    namespace: str = "ee_path",
    line_width: float = 0.005,
    point_size: float = 0.012,
) -> MarkerArray:
    """A line through the predicted end-effector positions [N, 3] and a sphere at each one,
    fading from opaque (now) to faint (the end of the chunk)."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] != 3 or len(positions) == 0:
        raise ValueError(f"positions: expected [N, 3] with N > 0, got {positions.shape}")
    points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in positions]
    alphas = np.linspace(1.0, 0.3, len(points))
    colors = [ColorRGBA(r=1.0, g=0.5, b=0.0, a=float(a)) for a in alphas]

    line = Marker(
        header=header,
        ns=namespace,
        id=0,
        type=Marker.LINE_STRIP,
        action=Marker.ADD,
        points=points,
        colors=colors,
    )
    line.pose.orientation.w = 1.0
    line.scale.x = line_width
    spheres = Marker(
        header=header,
        ns=namespace,
        id=1,
        type=Marker.SPHERE_LIST,
        action=Marker.ADD,
        points=points,
        colors=colors,
    )
    spheres.pose.orientation.w = 1.0
    spheres.scale.x = spheres.scale.y = spheres.scale.z = point_size
    return MarkerArray(markers=[line, spheres])
