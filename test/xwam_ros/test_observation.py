"""Observation assembly: complete, fresh, aligned streams pass; anything else is refused."""

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header

from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup
from xwam_ros.conversions.images import intrinsics_to_camera_info
from xwam_ros.observation import ObservationAssembler, ObservationRefusedError
from xwam_ros.paths import config_dir

SECOND = 1_000_000_000
JOINTS = [f"panda_joint{i}" for i in range(1, 8)]
K = np.array([[80.0, 0, 15.5], [0, 80.0, 11.5], [0, 0, 1]])


def header(t_ns: int, frame: str = "") -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = divmod(t_ns, SECOND)
    return h


def bgr_image(t_ns: int, value: int) -> Image:
    msg = Image(header=header(t_ns), height=24, width=32, encoding="bgr8", step=96)
    pixels = np.zeros((24, 32, 3), np.uint8)
    pixels[..., 0] = value  # blue channel in BGR
    msg.data = pixels.tobytes()
    return msg


def joint_state(t_ns: int, positions=None) -> JointState:
    names = ["panda_finger_joint1", *reversed(JOINTS)]  # any order, extra joints allowed
    positions = list(range(8)) if positions is None else positions
    return JointState(header=header(t_ns), name=names, position=[float(p) for p in positions])


@pytest.fixture
def assembler():
    setup = load(CameraSetup, config_dir() / "cameras" / "sim_panda.yaml")
    return ObservationAssembler(setup, JOINTS)


def feed(assembler, t_ns, views=None):
    for slot, view in enumerate(assembler.views):
        if views is None or view.name in views:
            assembler.on_image(view.name, bgr_image(t_ns, 10 * (slot + 1)))
            assembler.on_camera_info(view.name, intrinsics_to_camera_info(K, 32, 24, header(t_ns)))
    assembler.on_joint_state(joint_state(t_ns))


def test_a_complete_observation(assembler):
    feed(assembler, 10 * SECOND)
    obs = assembler.take(10 * SECOND + SECOND // 10)
    assert obs.view_names == ("agentview", "sideview", "wrist")
    for slot, image in enumerate(obs.images):
        assert image.shape == (24, 32, 3)
        assert (image[..., 2] == 10 * (slot + 1)).all()  # blue ended up in the B of RGB
    np.testing.assert_array_equal(obs.joint_positions, [7, 6, 5, 4, 3, 2, 1])
    np.testing.assert_array_equal(obs.intrinsics[0], K)
    assert obs.stamp_ns == 10 * SECOND


def refusal(assembler, now_ns) -> ObservationRefusedError:
    with pytest.raises(ObservationRefusedError) as info:
        assembler.take(now_ns)
    return info.value


def test_missing_stream_is_refused_and_counted(assembler):
    feed(assembler, SECOND, views={"agentview", "wrist"})
    error = refusal(assembler, SECOND)
    assert "no image yet from view 'sideview' (/sideview/image_raw)" in error.reason
    assert assembler.refusals == {"missing": 1}


def test_stale_stream_is_refused(assembler):
    feed(assembler, 10 * SECOND)
    error = refusal(assembler, 11 * SECOND)
    assert error.kind == "stale" and "1.000 s old (staleness limit 0.5 s)" in error.reason


def test_skewed_streams_are_refused(assembler):
    feed(assembler, 10 * SECOND)
    assembler.on_image("wrist", bgr_image(10 * SECOND + 3 * SECOND // 10, 1))
    error = refusal(assembler, 10 * SECOND + 3 * SECOND // 10)
    assert error.kind == "skew" and "0.300 s apart" in error.reason and "'wrist'" in error.reason


def test_malformed_image_is_refused_with_the_view(assembler):
    feed(assembler, SECOND)
    bad = bgr_image(SECOND, 1)
    bad.encoding = "yuv422"
    assembler.on_image("sideview", bad)
    error = refusal(assembler, SECOND)
    assert error.kind == "malformed" and error.reason.startswith("view 'sideview':")


def test_camera_info_of_another_size_is_refused(assembler):
    feed(assembler, SECOND)
    assembler.on_camera_info("agentview", intrinsics_to_camera_info(K, 64, 48, header(SECOND)))
    assert "image is 32x24 but camera_info is 64x48" in refusal(assembler, SECOND).reason


def test_joint_state_problems_are_refused(assembler):
    feed(assembler, SECOND)
    assembler.on_joint_state(JointState(header=header(SECOND), name=JOINTS[:6], position=[0.0] * 6))
    assert "lacks joints ['panda_joint7']" in refusal(assembler, SECOND).reason
    assembler.on_joint_state(joint_state(SECOND, [0, 1, 2, float("nan"), 4, 5, 6, 7]))
    assert "non-finite positions for ['panda_joint5']" in refusal(assembler, SECOND).reason
    assert assembler.refusals["malformed"] == 2
