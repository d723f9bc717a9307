"""ROS message <-> numpy conversions: images, camera info, point clouds, markers.

Vectorised numpy, zero-copy where the layout allows; every malformed message is refused with
an `ImageFormatError` (or ValueError) naming the field and what was expected.
"""
