"""The live browser view of the policy loop (`xwam view`, `xwam demo --view`, `xwam eval --view`).

A bridge from the model node's ROS topics (and the arm's, and the cameras') to Rerun, whose
SDK serves its own web viewer on localhost: the observed views, each imagined future (RGB and
depth per view and step, the point cloud in the base frame), the predicted end-effector path
against the executed one, the robot from TF, chunk boundaries, decode latency and refusals,
all on one timeline of ROS time, so the imagined future can be scrubbed next to what happened.

- `topics`: which topics of a graph the viewer shows, and what each becomes;
- `bridge`: ROS messages -> Rerun entities (no rclpy node: the same code for live topics and
  bags);
- `tf_tree`: the transforms of /tf and /tf_static, for the robot's links in the base frame;
- `server`: the Rerun gRPC stream and the web viewer, the URL to open, the layout;
- `live`: the rclpy node that subscribes; `bag`: a recorded rosbag2 bag replayed instead;
- `cli`: `xwam view`, and the viewer process that `xwam demo --view` starts.

Why Rerun rather than viser: the view is a record over time (scrub back to any chunk, time
series of latency and refusals, images beside the 3-D scene on one timeline), which is what
Rerun is made for and what its web viewer shows with no front-end code of ours; viser serves
a live 3-D scene for interaction (handles, GUI controls) without a timeline or history.
"""
