"""Camera geometry in numpy: depth images to point clouds and back, fusion, comparison.

Conventions (REP 103 / REP 105 / REP 118):

- A camera's frame is its *optical* frame: z forward, x right, y down.
- `T_base_camera` is the 4x4 pose of that optical frame in the robot base frame: it maps
  camera coordinates to base coordinates, `p_base = R p_camera + t`.
- Depth is metric (metres) along the optical z axis, not along the ray; 0, negative, NaN
  and Inf mean "no reading".
- Pixel (u, v) = (column, row) has its centre at integer coordinates, so the image spans
  [-0.5, W - 0.5] x [-0.5, H - 0.5] and `K @ [x/z, y/z, 1]` gives the pixel a point falls in.

Every function is vectorised over pixels and points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

_ROTATION_TOLERANCE = 1e-4


@dataclass(frozen=True)
class PointCloud:
    """Points `[N, 3]` float32 (metres) and, optionally, their colours `[N, 3]` uint8 RGB."""

    points: np.ndarray
    colors: np.ndarray | None = None

    def __post_init__(self) -> None:
        points = np.asarray(self.points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"PointCloud.points: expected [N, 3], got shape {points.shape}")
        object.__setattr__(self, "points", points.astype(np.float32, copy=False))
        if self.colors is not None:
            colors = np.asarray(self.colors)
            if colors.dtype != np.uint8 or colors.shape != points.shape:
                raise ValueError(
                    f"PointCloud.colors: expected uint8 [{len(points)}, 3], "
                    f"got {colors.dtype} {colors.shape}"
                )
            object.__setattr__(self, "colors", colors)

    def __len__(self) -> int:
        return len(self.points)


# ------------------------------------------------------------------------------ cameras


def intrinsics_from_fov(width: int, height: int, fov_y_degrees: float) -> np.ndarray:
    """Pinhole `K` [3, 3] of an ideal camera: square pixels, principal point at the image centre.

    `fov_y_degrees` is the vertical field of view (MuJoCo's `fovy`), edge to edge of the image.
    """
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: expected a positive number of pixels, got {value!r}")
    if not 0.0 < fov_y_degrees < 180.0:
        raise ValueError(f"fov_y_degrees: expected a value in (0, 180), got {fov_y_degrees!r}")
    focal = 0.5 * height / np.tan(np.radians(fov_y_degrees) / 2.0)
    return np.array(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    )


def look_at(
    eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> np.ndarray:
    """`T_base_camera` [4, 4] of an optical frame at `eye` looking at `target`.

    z points from `eye` to `target`, x to the right of the view and y down, with "up" the
    base frame's `up` direction (+z by default, REP 103).
    """
    eye, target, up = (np.asarray(v, dtype=np.float64).reshape(3) for v in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    z_axis = forward / np.linalg.norm(forward)
    right = np.cross(z_axis, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: the viewing direction is parallel to up; choose another up")
    x_axis = right / np.linalg.norm(right)
    y_axis = np.cross(z_axis, x_axis)  # down
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x_axis, y_axis, z_axis], axis=1)
    pose[:3, 3] = eye
    return pose


# ------------------------------------------------------------------------------ depth <-> points


def depth_to_points(
    depth: np.ndarray,
    K: np.ndarray,  # noqa: N803 - the usual names of intrinsics and pose
    T_base_camera: np.ndarray,  # noqa: N803
    rgb: np.ndarray | None = None,
    *,
    stride: int = 1,
    min_depth: float | None = None,
    max_depth: float | None = None,
) -> PointCloud:
    """Unproject a metric depth image `[H, W]` into the base frame.

    Pixels without a valid reading (0, negative, NaN, Inf, or outside `[min_depth,
    max_depth]` when given) are dropped. `stride` keeps every stride-th row and column.
    With `rgb` (`[H, W, 3]` uint8) each point carries its pixel's colour.
    """
    depth = _checked_depth(depth)
    K = _checked_intrinsics(K)
    pose = _checked_pose(T_base_camera)
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride: expected a positive integer, got {stride!r}")
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.shape != (*depth.shape, 3):
            raise ValueError(
                f"rgb: expected uint8 [{depth.shape[0]}, {depth.shape[1]}, 3], "
                f"got {rgb.dtype} {rgb.shape}"
            )

    rows, cols = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    z = depth[rows, cols].astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(z) & (z > 0)
        if min_depth is not None:
            valid &= z >= min_depth
        if max_depth is not None:
            valid &= z <= max_depth
    rows, cols, z = rows[valid], cols[valid], z[valid]

    pixels = np.stack([cols, rows, np.ones_like(cols)], axis=1).astype(np.float64)
    rays = pixels @ np.linalg.inv(K).T  # [x/z, y/z, 1] in the optical frame
    points_camera = rays * z[:, None]
    points_base = points_camera @ pose[:3, :3].T + pose[:3, 3]
    colors = rgb[rows, cols] if rgb is not None else None
    return PointCloud(points_base.astype(np.float32), colors)


def points_to_depth(
    points: np.ndarray,
    K: np.ndarray,  # noqa: N803 - the usual names of intrinsics and pose
    T_base_camera: np.ndarray,  # noqa: N803
    height: int,
    width: int,
) -> np.ndarray:
    """Render base-frame points `[N, 3]` into a depth image `[height, width]` float32.

    Each point lands in the pixel that contains its projection; where several land in one
    pixel the nearest wins (a z-buffer). Pixels no point reaches are 0 (no reading).
    """
    points = _checked_points("points", points)
    K = _checked_intrinsics(K)
    pose = _checked_pose(T_base_camera)
    rotation, translation = pose[:3, :3], pose[:3, 3]
    points_camera = (points.astype(np.float64) - translation) @ rotation  # R^T (p - t)
    z = points_camera[:, 2]
    in_front = z > 0
    points_camera, z = points_camera[in_front], z[in_front]
    projected = points_camera @ K.T
    cols = np.rint(projected[:, 0] / z).astype(np.int64)
    rows = np.rint(projected[:, 1] / z).astype(np.int64)
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height)
    pixel, z = rows[inside] * width + cols[inside], z[inside]

    # Sort by pixel, then depth: the first entry of each pixel is its nearest point.
    order = np.lexsort((z, pixel))
    pixel, z = pixel[order], z[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    depth = np.zeros(height * width, dtype=np.float32)
    depth[pixel[first]] = z[first]
    return depth.reshape(height, width)


# ------------------------------------------------------------------------------ clouds


def voxel_downsample(cloud: PointCloud, voxel_size: float) -> PointCloud:
    """One point per occupied voxel (cube of `voxel_size` metres): the mean of its points and
    of their colours."""
    if not voxel_size > 0:
        raise ValueError(f"voxel_size: expected a positive number of metres, got {voxel_size!r}")
    if len(cloud) == 0:
        return cloud
    cells = np.floor(cloud.points.astype(np.float64) / voxel_size).astype(np.int64)
    _, voxel, counts = np.unique(cells, axis=0, return_inverse=True, return_counts=True)
    voxel = voxel.reshape(-1)
    points = _mean_per_voxel(cloud.points.astype(np.float64), voxel, counts)
    colors = None
    if cloud.colors is not None:
        colors = np.rint(_mean_per_voxel(cloud.colors.astype(np.float64), voxel, counts))
        colors = colors.astype(np.uint8)
    return PointCloud(points.astype(np.float32), colors)


def _mean_per_voxel(values: np.ndarray, voxel: np.ndarray, counts: np.ndarray) -> np.ndarray:
    sums = np.stack(
        [np.bincount(voxel, weights=values[:, i], minlength=len(counts)) for i in range(3)], axis=1
    )
    return sums / counts[:, None]


def fuse_views(clouds: Sequence[PointCloud], voxel_size: float | None = None) -> PointCloud:
    """Merge the clouds of several views (all in the same base frame) into one.

    Colours are kept when every cloud has them. With `voxel_size`, the merged cloud is
    down-sampled so overlapping views do not double the density.
    """
    clouds = list(clouds)
    if not clouds or not all(isinstance(c, PointCloud) for c in clouds):
        raise ValueError(f"fuse_views: expected one or more PointClouds, got {clouds!r}")
    points = np.concatenate([c.points for c in clouds])
    with_colors = all(c.colors is not None for c in clouds)
    colors = np.concatenate([c.colors for c in clouds]) if with_colors else None
    fused = PointCloud(points, colors)
    return fused if voxel_size is None else voxel_downsample(fused, voxel_size)


def chamfer_distance(a: np.ndarray | PointCloud, b: np.ndarray | PointCloud) -> float:
    """Symmetric Chamfer distance (metres): the mean of the two directions' mean
    nearest-neighbour distances, `(mean_a min_b |a - b| + mean_b min_a |a - b|) / 2`."""
    a = _checked_points("a", a.points if isinstance(a, PointCloud) else a)
    b = _checked_points("b", b.points if isinstance(b, PointCloud) else b)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(
            f"chamfer_distance: expected non-empty clouds, got {len(a)} and {len(b)} points"
        )
    a, b = a.astype(np.float64), b.astype(np.float64)
    a_to_b = cKDTree(b).query(a)[0]
    b_to_a = cKDTree(a).query(b)[0]
    return float((a_to_b.mean() + b_to_a.mean()) / 2.0)


# ------------------------------------------------------------------------------ checks


def _checked_depth(depth: np.ndarray) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth: expected a metric depth image [H, W], got shape {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise TypeError(
            f"depth: expected floating-point metres, got {depth.dtype} "
            "(convert 16UC1 millimetres with depth / 1000.0)"
        )
    return depth


def _checked_intrinsics(intrinsics: np.ndarray) -> np.ndarray:
    K = np.asarray(intrinsics, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise ValueError(f"K: expected finite intrinsics [3, 3], got shape {K.shape}")
    if not (K[0, 0] > 0 and K[1, 1] > 0) or not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise ValueError(
            f"K: expected [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0, got {K.tolist()}"
        )
    return K


def _checked_pose(pose: np.ndarray) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
        raise ValueError(f"T_base_camera: expected a finite 4x4 transform, got shape {pose.shape}")
    rotation = pose[:3, :3]
    if not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0]) or not (
        np.allclose(rotation.T @ rotation, np.eye(3), atol=_ROTATION_TOLERANCE)
        and np.linalg.det(rotation) > 0
    ):
        raise ValueError(
            "T_base_camera: expected a rigid transform (orthonormal rotation, det +1, last row "
            f"0 0 0 1), got {pose.tolist()}"
        )
    return pose


def _checked_points(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{name}: expected points [N, 3], got shape {points.shape}")
    if not np.issubdtype(points.dtype, np.floating) or not np.all(np.isfinite(points)):
        raise ValueError(f"{name}: expected finite floating-point points")
    return points
