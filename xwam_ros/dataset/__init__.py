"""Episode bags -> X-WAM training data (`xwam dataset build`).

`bag_source` reads a bag (rosbags), `alignment` lays the model's clock over its streams,
`commands` replays the controllers' commands, `robot_motion` turns joints into actions and
proprio, `episode` converts one bag, `builder` converts many and writes the dataset (whose
format and reader live in `xwam_model.data`, so training needs no ROS).
"""
