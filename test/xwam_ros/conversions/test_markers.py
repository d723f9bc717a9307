"""The end-effector path markers carry the path, in order, in the given frame."""

import numpy as np
import pytest
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from xwam_ros.conversions.markers import ee_path_markers


def test_path_markers():
    path = np.array([[0.5, 0.0, 0.3], [0.52, 0.01, 0.29], [0.55, 0.02, 0.27]])
    array = ee_path_markers(path, Header(frame_id="panda_link0"))
    line, spheres = array.markers
    assert line.type == Marker.LINE_STRIP and spheres.type == Marker.SPHERE_LIST
    for marker in (line, spheres):
        assert marker.header.frame_id == "panda_link0"
        np.testing.assert_allclose([[p.x, p.y, p.z] for p in marker.points], path)
        assert marker.colors[0].a > marker.colors[-1].a
    assert line.id != spheres.id


def test_empty_path_is_refused():
    with pytest.raises(ValueError, match="N > 0"):
        ee_path_markers(np.zeros((0, 3)), Header())
