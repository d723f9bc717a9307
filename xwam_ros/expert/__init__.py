"""A scripted expert for the simulated tasks: plans from the simulator's object poses, drives
the arm through the executor's interface (chunks of JointTrajectory), and collects recorded
demonstrations (`xwam collect`)."""
