"""sensor_msgs/Image and CameraInfo <-> numpy.

cv_bridge is not available outside a full ROS install, and rosbags-image ignores row padding
(`step` larger than a packed row), so the few conversions the suite needs are done here with
explicit strides: colour views are zero-copy for rgb8/bgr8/rgba8/bgra8; mono8 and depth
need one copy. Depth follows REP 118: 16UC1 in millimetres, 32FC1 in metres, 0/NaN invalid.
"""

from __future__ import annotations

import sys

import numpy as np
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

# encoding -> (channels, dtype)
_LAYOUTS = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8),
    "16UC1": (1, np.uint16),
    "mono16": (1, np.uint16),
    "32FC1": (1, np.float32),
}
COLOUR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
DEPTH_ENCODINGS = ("16UC1", "32FC1")


class ImageFormatError(ValueError):
    """An image message whose encoding, size or data does not fit what was expected."""


def image_array(msg: Image) -> np.ndarray:
    """The pixels of `msg` as an array [H, W] or [H, W, C] in its own encoding (zero-copy)."""
    if msg.encoding not in _LAYOUTS:
        raise ImageFormatError(
            f"encoding '{msg.encoding}' is not supported; expected one of {sorted(_LAYOUTS)}"
        )
    channels, dtype = _LAYOUTS[msg.encoding]
    itemsize = np.dtype(dtype).itemsize
    if msg.height == 0 or msg.width == 0:
        raise ImageFormatError(f"empty image ({msg.width}x{msg.height})")
    packed_row = msg.width * channels * itemsize
    if msg.step < packed_row:
        raise ImageFormatError(
            f"step {msg.step} is smaller than a {msg.encoding} row of "
            f"width {msg.width} ({packed_row} bytes)"
        )
    if len(msg.data) != msg.step * msg.height:
        raise ImageFormatError(
            f"data has {len(msg.data)} bytes; expected step x height = "
            f"{msg.step} x {msg.height} = {msg.step * msg.height}"
        )
    order = ">" if msg.is_bigendian else "<"
    array = np.ndarray(
        shape=(msg.height, msg.width, channels),
        dtype=np.dtype(dtype).newbyteorder(order) if itemsize > 1 else dtype,
        buffer=memoryview(msg.data),
        strides=(msg.step, channels * itemsize, itemsize),
    )
    return array[..., 0] if channels == 1 else array


def image_to_rgb(msg: Image) -> np.ndarray:
    """A colour image message as RGB uint8 [H, W, 3] (a view when the encoding allows)."""
    if msg.encoding not in COLOUR_ENCODINGS:
        raise ImageFormatError(
            f"encoding '{msg.encoding}' is not a colour encoding; expected "
            f"one of {list(COLOUR_ENCODINGS)}"
        )
    pixels = image_array(msg)
    if msg.encoding == "rgb8":
        return pixels
    if msg.encoding == "bgr8":
        return pixels[..., ::-1]
    if msg.encoding == "rgba8":
        return pixels[..., :3]
    if msg.encoding == "bgra8":
        return pixels[..., 2::-1]
    return np.repeat(pixels[..., None], 3, axis=2)  # mono8


def image_to_depth(msg: Image) -> np.ndarray:
    """A depth image message as float32 metres [H, W], invalid pixels NaN (REP 118)."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageFormatError(
            f"encoding '{msg.encoding}' is not a depth encoding; expected "
            f"one of {list(DEPTH_ENCODINGS)} (mm or m)"
        )
    pixels = image_array(msg)
    if msg.encoding == "16UC1":
        depth = pixels.astype(np.float32) * np.float32(1e-3)
        depth[pixels == 0] = np.nan
    else:
        depth = pixels.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth


def rgb_to_image(rgb: np.ndarray, header: Header) -> Image:
    """An RGB uint8 array [H, W, 3] as an rgb8 Image message."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageFormatError(
            f"expected an RGB uint8 array [H, W, 3], got {rgb.dtype} {rgb.shape}"
        )
    height, width = rgb.shape[:2]
    msg = Image(
        header=header,
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=False,
        step=width * 3,
    )
    msg.data = np.ascontiguousarray(rgb).tobytes()
    return msg


def depth_to_image(depth: np.ndarray, header: Header) -> Image:
    """Metric depth [H, W] as a 32FC1 Image message in metres (REP 118; invalid as NaN)."""
    if depth.ndim != 2:
        raise ImageFormatError(f"expected a depth array [H, W], got shape {depth.shape}")
    height, width = depth.shape
    msg = Image(
        header=header,
        height=height,
        width=width,
        encoding="32FC1",
        is_bigendian=sys.byteorder == "big",
        step=width * 4,
    )
    msg.data = np.ascontiguousarray(depth, dtype=np.float32).tobytes()
    return msg


def camera_info_intrinsics(msg: CameraInfo) -> np.ndarray:
    """The 3x3 intrinsic matrix K of a CameraInfo message, checked to be usable."""
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0 and k[2, 2] == 1.0):
        raise ImageFormatError(
            f"camera_info of '{msg.header.frame_id}' has no usable K "
            f"(fx, fy > 0, K[2,2] = 1): {k.ravel().tolist()}"
        )
    return k


def intrinsics_to_camera_info(k: np.ndarray, width: int, height: int, header: Header) -> CameraInfo:
    """A CameraInfo message (plumb_bob, no distortion) for intrinsics K and an image size."""
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    msg = CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob")
    msg.d = [0.0] * 5
    msg.k = k.ravel().tolist()
    msg.r = np.eye(3).ravel().tolist()
    msg.p = np.hstack([k, np.zeros((3, 1))]).ravel().tolist()
    return msg


def scale_intrinsics(
    k: np.ndarray, source_size: tuple[int, int], target_size: tuple[int, int]
) -> np.ndarray:
    """K for an image resized from (width, height) `source_size` to `target_size`."""
    sx = target_size[0] / source_size[0]
    sy = target_size[1] / source_size[1]
    scaled = np.array(k, dtype=np.float64)
    scaled[0, 0] *= sx
    scaled[0, 2] = (scaled[0, 2] + 0.5) * sx - 0.5
    scaled[1, 1] *= sy
    scaled[1, 2] = (scaled[1, 2] + 0.5) * sy - 0.5
    return scaled
