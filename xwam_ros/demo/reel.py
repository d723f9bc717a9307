"""The imagination reel: for each imagined future, what the model saw, what it imagined
(RGB, depth, the point cloud) and what the simulator then actually rendered.

One panel per imagination, one row per view: observed | imagined RGB at three future times |
imagined depth at the last | actual frames at the same three times; a last row renders the
imagined point cloud from above and from the side. Panels are the frames of `reel.gif`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pointcloud2 import read_points

from xwam_ros.conversions.clouds import unpack_rgb
from xwam_ros.demo.watcher import EpisodeWatcher, Imagination

TILE = 128
# Anchor colours of a perceptually ordered map (near = yellow, far = dark blue).
_DEPTH_COLOURS = np.array(
    [[253, 231, 37], [94, 201, 98], [33, 145, 140], [59, 82, 139], [68, 1, 84]], dtype=np.float64
)


def colourise_depth(depth: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth [H, W] to RGB uint8; invalid pixels black."""
    t = np.clip((depth - near) / max(far - near, 1e-6), 0.0, 1.0)
    position = t * (len(_DEPTH_COLOURS) - 1)
    low = np.floor(position).astype(int).clip(0, len(_DEPTH_COLOURS) - 2)
    fraction = (position - low)[..., None]
    rgb = _DEPTH_COLOURS[low] * (1 - fraction) + _DEPTH_COLOURS[low + 1] * fraction
    rgb[~np.isfinite(depth)] = 0
    return rgb.astype(np.uint8)


def render_cloud(
    points: np.ndarray,
    colors: np.ndarray,
    axes: tuple[int, int, int],
    bounds: tuple[tuple[float, float], tuple[float, float]],
    size: int = TILE,
) -> np.ndarray:
    """An orthographic view of coloured points: `axes` = (horizontal, vertical, depth axis),
    the point with the largest depth-axis value winning each pixel."""
    image = np.zeros((size, size, 3), np.uint8)
    (h_lo, h_hi), (v_lo, v_hi) = bounds
    u = ((points[:, axes[0]] - h_lo) / (h_hi - h_lo) * (size - 1)).round().astype(int)
    v = ((v_hi - points[:, axes[1]]) / (v_hi - v_lo) * (size - 1)).round().astype(int)
    inside = (u >= 0) & (u < size) & (v >= 0) & (v < size)
    order = np.argsort(points[inside, axes[2]])  # nearest to the viewer painted last
    image[v[inside][order], u[inside][order]] = colors[inside][order]
    return image


def _tile(image: np.ndarray | None, label: str) -> Image.Image:
    tile = Image.new("RGB", (TILE, TILE), (40, 40, 40))
    if image is not None:
        tile.paste(Image.fromarray(image).resize((TILE, TILE)))
    draw = ImageDraw.Draw(tile)
    # A dark band behind the label keeps it readable on white tables and walls.
    draw.rectangle((0, 0, TILE, 13), fill=(0, 0, 0))
    draw.text((3, 1), label, fill=(255, 255, 255))
    return tile


def panel(
    watcher: EpisodeWatcher, imagination: Imagination, near: float, far: float
) -> Image.Image | None:
    """The reel panel of one imagination (None when a view has no imagined frame)."""
    views = [v.name for v in watcher.setup.ordered_views]
    if not all(imagination.rgb.get(v) for v in views):
        return None
    rows = []
    for view in views:
        times = sorted(imagination.rgb[view])
        picks = [times[0], times[len(times) // 2], times[-1]]
        observed = watcher.frame_at(view, imagination.observation_ns)
        tiles = [_tile(observed[1] if observed else None, f"{view} now")]
        for t in picks:
            ms = (t - imagination.observation_ns) / 1e6
            tiles.append(_tile(imagination.rgb[view][t], f"imagined +{ms:.0f}ms"))
        depth = imagination.depth.get(view, {}).get(picks[-1])
        tiles.append(
            _tile(None if depth is None else colourise_depth(depth, near, far), "imagined depth")
        )
        for t in picks:
            actual = watcher.frame_at(view, t)
            tiles.append(_tile(actual[1] if actual else None, "actual"))
        rows.append(tiles)
    if imagination.cloud is not None:
        cloud = read_points(imagination.cloud)
        xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1)
        colors = unpack_rgb(cloud["rgb"])
        top = render_cloud(xyz, colors, (1, 0, 2), ((0.6, -0.6), (-0.1, 1.1)))
        side = render_cloud(xyz, colors, (0, 2, 1), ((-0.1, 1.1), (-0.3, 0.9)))
        rows.append([_tile(top, "cloud, above"), _tile(side, "cloud, side")])
    width = max(len(r) for r in rows) * TILE
    sheet = Image.new("RGB", (width, len(rows) * TILE), (20, 20, 20))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * TILE, r * TILE))
    return sheet


def write_reel(watcher: EpisodeWatcher, path: Path, near: float = 0.05, far: float = 2.5) -> int:
    """Write `path` (GIF, one panel per complete imagination); the number of panels."""
    imaginations = [i for i in watcher.imaginations() if i.complete]
    panels = [p for i in imaginations if (p := panel(watcher, i, near, far)) is not None]
    if panels:
        panels[0].save(path, save_all=True, append_images=panels[1:], duration=1500, loop=0)
    return len(panels)
