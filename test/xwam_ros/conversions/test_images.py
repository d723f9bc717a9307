"""Image conversions: every encoding decodes to the right pixels; bad messages are refused."""

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from xwam_ros.conversions.images import (
    ImageFormatError,
    camera_info_intrinsics,
    depth_to_image,
    image_to_depth,
    image_to_rgb,
    intrinsics_to_camera_info,
    rgb_to_image,
    scale_intrinsics,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


def message(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian=False) -> Image:
    """An Image with `pad` extra bytes at the end of each row (as some drivers send)."""
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1).view(np.uint8).reshape(height, -1)
    padded = np.concatenate([rows, np.full((height, pad), 0xEE, np.uint8)], axis=1)
    msg = Image(
        height=height, width=width, encoding=encoding, step=padded.shape[1], is_bigendian=bigendian
    )
    msg.data = padded.tobytes()
    return msg


@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize(
    "encoding,pixels",
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1].copy()),
        ("rgba8", np.concatenate([RGB, np.full((5, 7, 1), 9, np.uint8)], axis=2)),
        ("bgra8", np.concatenate([RGB[..., ::-1], np.full((5, 7, 1), 9, np.uint8)], axis=2)),
    ],
)
def test_colour_encodings_decode_to_rgb(encoding, pixels, pad):
    np.testing.assert_array_equal(image_to_rgb(message(pixels, encoding, pad)), RGB)


def test_mono8_becomes_grey_rgb():
    grey = RGB[..., 0].copy()
    rgb = image_to_rgb(message(grey, "mono8", pad=1))
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=2))


def test_rgb8_is_a_view_of_the_message_buffer():
    msg = message(RGB, "rgb8")
    assert not image_to_rgb(msg).flags.owndata


def test_depth_16uc1_millimetres_and_32fc1_metres():
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    depth = image_to_depth(message(mm, "16UC1", pad=2))
    np.testing.assert_allclose(depth[0, 1], 1.0)
    np.testing.assert_allclose(depth[1, 0], 1.5)
    assert np.isnan(depth[0, 0])  # 0 mm means no reading (REP 118)
    metres = np.array([[0.5, np.inf], [-1.0, 2.25]], dtype=np.float32)
    depth = image_to_depth(message(metres, "32FC1"))
    assert depth[0, 0] == 0.5 and depth[1, 1] == 2.25
    assert np.isnan(depth[0, 1]) and np.isnan(depth[1, 0])


def test_big_endian_depth_is_swapped():
    mm = np.array([[1000, 2000]], dtype=">u2")
    depth = image_to_depth(message(mm, "16UC1", bigendian=True))
    np.testing.assert_allclose(depth, [[1.0, 2.0]])


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda m: setattr(m, "encoding", "yuv422"), "encoding 'yuv422' is not a colour encoding"),
        (lambda m: setattr(m, "step", 5), "step 5 is smaller than a rgb8 row"),
        (lambda m: setattr(m, "data", bytes(10)), "data has 10 bytes; expected step x height"),
        (lambda m: setattr(m, "width", 0), "empty image"),
    ],
)
def test_malformed_images_are_refused_with_the_reason(mutate, match):
    msg = message(RGB, "rgb8")
    mutate(msg)
    with pytest.raises(ImageFormatError, match=match):
        image_to_rgb(msg)


def test_depth_encoding_is_not_accepted_as_colour_and_vice_versa():
    with pytest.raises(ImageFormatError, match="not a colour encoding"):
        image_to_rgb(message(np.zeros((2, 2), np.float32), "32FC1"))
    with pytest.raises(ImageFormatError, match="not a depth encoding"):
        image_to_depth(message(RGB, "rgb8"))


def test_outgoing_images_round_trip():
    header = Header(frame_id="cam_optical_frame")
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(RGB, header)), RGB)
    depth = RNG.uniform(0.2, 3.0, (4, 6)).astype(np.float32)
    msg = depth_to_image(depth, header)
    assert msg.encoding == "32FC1" and msg.header.frame_id == "cam_optical_frame"
    np.testing.assert_array_equal(image_to_depth(msg), depth)


def test_camera_info_round_trip_and_refusal():
    k = np.array([[100.0, 0, 31.5], [0, 120.0, 23.5], [0, 0, 1]])
    info = intrinsics_to_camera_info(k, 64, 48, Header(frame_id="c"))
    np.testing.assert_array_equal(camera_info_intrinsics(info), k)
    assert info.p[0] == 100.0 and info.p[3] == 0.0
    info.k = [0.0] * 9
    with pytest.raises(ImageFormatError, match="no usable K"):
        camera_info_intrinsics(info)


def test_scaled_intrinsics_project_pixel_centres_consistently():
    k = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])  # centre of a 64x48 image
    half = scale_intrinsics(k, (64, 48), (32, 24))
    assert half[0, 0] == 50.0 and half[0, 2] == 15.5 and half[1, 2] == 11.5
