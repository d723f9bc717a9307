"""Camera geometry on synthetic scenes with known answers.

Depth images are rendered here by analytic ray casting (a plane, a box on a table), so the
expected points are known exactly: unprojection must land every point on the surface it
came from, re-projection must give the same depth image back, and two cameras must agree
on the part of the scene both see.
"""

from __future__ import annotations

import numpy as np
import pytest

from xwam_model.geometry import (
    PointCloud,
    chamfer_distance,
    depth_to_points,
    fuse_views,
    intrinsics_from_fov,
    look_at,
    points_to_depth,
    voxel_downsample,
)

HEIGHT, WIDTH = 96, 128
K = intrinsics_from_fov(WIDTH, HEIGHT, fov_y_degrees=60.0)
BOX_LO, BOX_HI = np.array([-0.1, -0.1, 0.0]), np.array([0.1, 0.1, 0.2])


# ------------------------------------------------------------------------------ a ray caster


def _rays(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin and per-pixel directions (base frame) scaled so that the hit parameter is depth."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    pixels = np.stack([cols, rows, np.ones_like(cols)], axis=-1).reshape(-1, 3).astype(float)
    directions_camera = pixels @ np.linalg.inv(K).T  # optical z = 1
    return pose[:3, 3], directions_camera @ pose[:3, :3].T


def _hit_plane(origin, directions, normal, offset) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (offset - origin @ normal) / (directions @ normal)
    return np.where(s > 0, s, np.inf)


def _hit_box(origin, directions, lo, hi) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (lo - origin) / directions, (hi - origin) / directions
    near = np.nanmax(np.minimum(t1, t2), axis=1)
    far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((far >= near) & (near > 0), near, np.inf)


def render_scene(pose: np.ndarray, with_box: bool = True) -> np.ndarray:
    """Depth image of the table plane z = 0 and (optionally) the box; 0 where nothing is hit."""
    origin, directions = _rays(pose)
    depth = _hit_plane(origin, directions, np.array([0.0, 0.0, 1.0]), 0.0)
    if with_box:
        depth = np.minimum(depth, _hit_box(origin, directions, BOX_LO, BOX_HI))
    depth = np.where(np.isfinite(depth), depth, 0.0)
    return depth.reshape(HEIGHT, WIDTH).astype(np.float32)


def distance_to_scene(points: np.ndarray) -> np.ndarray:
    """Distance of each point to the nearest surface: the table top or the box's boundary."""
    to_table = np.abs(points[:, 2])
    outside = np.maximum(np.maximum(BOX_LO - points, points - BOX_HI), 0.0)
    inside = np.minimum(points - BOX_LO, BOX_HI - points).min(axis=1)
    to_box = np.where(outside.any(axis=1), np.linalg.norm(outside, axis=1), inside)
    return np.minimum(to_table, to_box)


# Looking down steeply enough that every pixel sees the table or the box.
CAMERA_A = look_at(eye=(0.5, -0.4, 0.8), target=(0.0, 0.0, 0.1))
CAMERA_B = look_at(eye=(-0.3, 0.55, 0.9), target=(0.0, 0.05, 0.1))


# ------------------------------------------------------------------------------ cameras


def test_look_at_is_an_optical_frame_looking_at_the_target():
    pose = CAMERA_A
    rotation, eye = pose[:3, :3], pose[:3, 3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)

    def in_camera(point):
        return rotation.T @ (np.asarray(point) - eye)

    # The target is straight ahead (optical +z) at its distance; a point above it (base +z)
    # is up in the image (optical -y); the optical x axis is horizontal (REP 103 +z is up).
    target = np.array([0.0, 0.0, 0.1])
    np.testing.assert_allclose(in_camera(target), [0, 0, np.linalg.norm(target - eye)], atol=1e-12)
    assert in_camera(target + [0, 0, 0.05])[1] < 0
    assert rotation[2, 0] == pytest.approx(0.0, abs=1e-12)
    # Seen from (0.5, -0.4) towards the origin, base +x +y lies to the right.
    assert in_camera(target + [0.05, 0.05, 0.0])[0] > 0
    # And the rendering agrees: the target lands on the principal point's pixel block.
    depth = points_to_depth(target[None], K, pose, HEIGHT, WIDTH)
    row, col = np.argwhere(depth > 0)[0]
    assert abs(row - K[1, 2]) <= 0.5 and abs(col - K[0, 2]) <= 0.5


def test_look_at_refuses_degenerate_views():
    with pytest.raises(ValueError, match="parallel to up"):
        look_at(eye=(0, 0, 1), target=(0, 0, 0))
    with pytest.raises(ValueError, match="coincide"):
        look_at(eye=(1, 1, 1), target=(1, 1, 1))


def test_intrinsics_span_the_field_of_view():
    # A point on the upper edge of the vertical field of view projects to the image's top
    # edge (row -0.5), its centre column at the principal point.
    K_ = intrinsics_from_fov(WIDTH, HEIGHT, fov_y_degrees=60.0)
    edge = K_ @ np.array([0.0, -np.tan(np.radians(30.0)), 1.0])
    assert edge[1] == pytest.approx(-0.5)
    assert K_[0, 2] == pytest.approx((WIDTH - 1) / 2)
    assert K_[0, 0] == K_[1, 1]
    with pytest.raises(ValueError, match="fov_y_degrees"):
        intrinsics_from_fov(WIDTH, HEIGHT, 180.0)


# ------------------------------------------------------------------------------ round trips


def test_plane_at_known_distance_unprojects_onto_the_plane_and_back():
    pose = look_at(eye=(0.0, 0.0, 1.25), target=(0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0))
    depth = render_scene(pose, with_box=False)
    np.testing.assert_allclose(depth, 1.25, rtol=1e-6)  # a camera straight above the table

    cloud = depth_to_points(depth, K, pose)
    assert len(cloud) == HEIGHT * WIDTH
    assert cloud.points.dtype == np.float32
    np.testing.assert_allclose(cloud.points[:, 2], 0.0, atol=1e-6)
    # The footprint on the table is the field of view at 1.25 m: half-height 1.25 tan(30 deg)
    # up to the outermost pixel centres.
    half_extent = 1.25 * (HEIGHT - 1) / 2 / K[1, 1]
    assert np.ptp(cloud.points[:, 0]) == pytest.approx(2 * half_extent, rel=1e-5)
    np.testing.assert_allclose(
        points_to_depth(cloud.points, K, pose, HEIGHT, WIDTH), depth, atol=1e-6
    )


def test_box_on_a_table_round_trips_exactly():
    depth = render_scene(CAMERA_A)
    assert (depth > 0).all() and np.ptp(depth) > 0.1  # the box is in view, in front of the table
    cloud = depth_to_points(depth, K, CAMERA_A)
    assert distance_to_scene(cloud.points.astype(np.float64)).max() < 1e-5
    np.testing.assert_allclose(
        points_to_depth(cloud.points, K, CAMERA_A, HEIGHT, WIDTH), depth, atol=1e-5
    )


def test_two_cameras_fuse_to_consistent_points():
    clouds = [depth_to_points(render_scene(pose), K, pose) for pose in (CAMERA_A, CAMERA_B)]
    fused = fuse_views(clouds)
    assert len(fused) == sum(len(c) for c in clouds)
    assert distance_to_scene(fused.points.astype(np.float64)).max() < 1e-5

    # Both cameras see the whole top of the box: their samples of it must cover the same
    # square, to within the pixel footprint (~1.5 cm here).
    def top(points):
        on_top = (np.abs(points[:, 2] - 0.2) < 1e-5) & (np.abs(points[:, :2]) <= 0.1 + 1e-5).all(1)
        return points[on_top]

    top_a, top_b = top(clouds[0].points), top(clouds[1].points)
    assert len(top_a) > 20 and len(top_b) > 20
    assert chamfer_distance(top_a, top_b) < 0.01
    for top_points in (top_a, top_b):
        np.testing.assert_allclose(top_points.mean(axis=0), [0.0, 0.0, 0.2], atol=0.01)
    # Negative control: camera B's depth placed with the inverted pose (T_camera_base, a
    # common mix-up) lands nowhere near the scene.
    misplaced = depth_to_points(render_scene(CAMERA_B), K, np.linalg.inv(CAMERA_B))
    assert np.median(distance_to_scene(misplaced.points.astype(np.float64))) > 0.1


def test_voxel_fusion_keeps_the_geometry_and_thins_the_overlap():
    clouds = [depth_to_points(render_scene(pose), K, pose) for pose in (CAMERA_A, CAMERA_B)]
    fused = fuse_views(clouds)
    thinned = fuse_views(clouds, voxel_size=0.05)
    assert len(thinned) < len(fused) / 4
    assert chamfer_distance(thinned, fused) < 0.05


# ------------------------------------------------------------------------------ details


def test_invalid_depth_is_dropped():
    pose = look_at(eye=(0.0, 0.0, 1.0), target=(0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0))
    depth = np.full((HEIGHT, WIDTH), 1.0, dtype=np.float32)
    depth[0, :4] = [0.0, -1.0, np.nan, np.inf]
    depth[1, 0], depth[1, 1] = 0.2, 5.0
    assert len(depth_to_points(depth, K, pose)) == HEIGHT * WIDTH - 4
    assert len(depth_to_points(depth, K, pose, min_depth=0.5, max_depth=2.0)) == HEIGHT * WIDTH - 6


def test_colours_follow_their_pixels_and_stride_subsamples():
    pose = look_at(eye=(0.0, 0.0, 1.0), target=(0.0, 0.0, 0.0), up=(1.0, 0.0, 0.0))
    depth = render_scene(pose, with_box=False)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.uint8)
    cloud = depth_to_points(depth, K, pose, rgb)
    # Re-project each point: it must fall in the pixel its colour names.
    for point, color in zip(cloud.points[::97], cloud.colors[::97]):
        image = points_to_depth(point[None], K, pose, HEIGHT, WIDTH)
        assert tuple(np.argwhere(image > 0)[0]) == (color[0], color[1])
    strided = depth_to_points(depth, K, pose, rgb, stride=2)
    keep = (cloud.colors[:, 0] % 2 == 0) & (cloud.colors[:, 1] % 2 == 0)
    np.testing.assert_array_equal(strided.points, cloud.points[keep])
    np.testing.assert_array_equal(strided.colors, cloud.colors[keep])


def test_points_to_depth_keeps_the_nearest_point_per_pixel():
    pose = np.eye(4)  # camera at the origin, optical axes = base axes
    ray = np.array([0.1, -0.05, 1.0])
    points = np.stack([2.0 * ray, 1.0 * ray, 3.0 * ray, [0.0, 0.0, -1.0], [50.0, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    for order in (np.arange(5), rng.permutation(5), rng.permutation(5)):
        depth = points_to_depth(points[order], K, pose, HEIGHT, WIDTH)
        assert np.count_nonzero(depth) == 1  # behind the camera and off-image points vanish
        assert depth.max() == pytest.approx(1.0)


def test_voxel_downsample_averages_points_and_colours():
    cloud = PointCloud(
        np.array([[0.01, 0.01, 0.01], [0.03, 0.03, 0.03], [0.51, 0.0, 0.0]]),
        np.array([[0, 0, 0], [100, 50, 10], [9, 9, 9]], dtype=np.uint8),
    )
    thinned = voxel_downsample(cloud, voxel_size=0.1)
    order = np.argsort(thinned.points[:, 0])
    np.testing.assert_allclose(
        thinned.points[order], [[0.02, 0.02, 0.02], [0.51, 0.0, 0.0]], atol=1e-7
    )
    np.testing.assert_array_equal(thinned.colors[order], [[50, 25, 5], [9, 9, 9]])


def test_chamfer_of_identical_and_shifted_clouds():
    grid = np.stack(np.meshgrid(*[np.arange(5) * 0.1] * 3, indexing="ij"), -1).reshape(-1, 3)
    assert chamfer_distance(grid, grid) == 0.0
    shift = np.array([0.003, -0.004, 0.0])  # 5 mm, well under half the 10 cm spacing
    assert chamfer_distance(grid, grid + shift) == pytest.approx(0.005, abs=1e-12)
    partial = grid[: len(grid) // 2]
    assert chamfer_distance(grid, partial) == pytest.approx(chamfer_distance(partial, grid))
    assert chamfer_distance(grid, partial) > 0


def test_bad_inputs_are_named():
    pose = np.eye(4)
    depth = np.ones((HEIGHT, WIDTH), dtype=np.float32)
    with pytest.raises(TypeError, match="metres"):
        depth_to_points(depth.astype(np.uint16), K, pose)
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        depth_to_points(depth[None], K, pose)
    with pytest.raises(ValueError, match="K"):
        depth_to_points(depth, K[:2], pose)
    with pytest.raises(ValueError, match="rigid"):
        depth_to_points(depth, K, np.diag([2.0, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="rgb"):
        depth_to_points(depth, K, pose, np.zeros((HEIGHT, WIDTH, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="stride"):
        depth_to_points(depth, K, pose, stride=0)
    with pytest.raises(ValueError, match="finite"):
        chamfer_distance(np.array([[np.nan, 0.0, 0.0]]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        chamfer_distance(np.zeros((0, 3)), np.zeros((1, 3)))


def test_chamfer_of_unequal_clouds_by_hand():
    one = np.zeros((1, 3))
    two = np.array([[1.0, 0, 0], [3.0, 0, 0]])
    assert chamfer_distance(one, two) == pytest.approx((1.0 + (1.0 + 3.0) / 2) / 2)


def test_corner_pixels_of_a_constant_plane_in_the_optical_frame():
    depth = np.full((4, 6), 2.0, dtype=np.float32)
    camera = np.array([[100.0, 0.0, 2.5], [0.0, 50.0, 1.5], [0.0, 0.0, 1.0]])
    points = depth_to_points(depth, camera, np.eye(4)).points
    assert points.shape == (24, 3) and points.dtype == np.float32
    # Pixel (u=0, v=0) is up-left of the principal point; (u=5, v=3) the bottom-right corner.
    np.testing.assert_allclose(points[0], [(0 - 2.5) / 100 * 2, (0 - 1.5) / 50 * 2, 2.0])
    np.testing.assert_allclose(points[-1], [(5 - 2.5) / 100 * 2, (3 - 1.5) / 50 * 2, 2.0])
