"""The controllers of the simulated arm: what ros2_control would run on the real one.

From the robot YAML's arm: one joint_trajectory_controller (a `TrajectoryTracker`) per
JointTrajectory topic (the arm's, and the gripper's when it takes trajectories; one tracker
for both when they share a topic), for a forward_command gripper the finger positions last
commanded, and for a gripper behind an action (gripper_command, parallel_gripper_command) a
`GripperMotion`. Each control step, `targets` turns them into a position target for every
joint. The arm's tracker also serves its FollowJointTrajectory action when the arm's interface
is `action`. Pure Python: the node does the ROS side.
"""

from __future__ import annotations

import numpy as np

from xwam_ros.config.robot import ArmConfig
from xwam_ros.sim.gripper_motion import GripperMotion, GripperSettings
from xwam_ros.sim.trajectory_tracker import Trajectory, TrajectoryTracker


class SimControllers:
    """Joint position targets of one arm and its gripper from their controllers' commands."""

    def __init__(
        self,
        arm: ArmConfig,
        from_desired_state: bool = False,
        gripper_settings: GripperSettings | None = None,
    ):
        gripper = arm.gripper
        self.joint_names = [*arm.joint_names, *gripper.joints]
        self.arm_dof = len(arm.joints)
        self.arm_topic = arm.trajectory_topic
        groups = {arm.trajectory_topic: list(arm.joint_names)}
        self.finger_topic = None
        self.gripper: GripperMotion | None = None
        if gripper.interface == "joint_trajectory":
            groups.setdefault(gripper.topic, []).extend(gripper.joints)
        elif gripper.interface == "forward_command":
            self.finger_topic = gripper.topic
        else:
            self.gripper = GripperMotion(gripper, gripper_settings)
        self.trackers = {
            topic: TrajectoryTracker(names, from_desired_state) for topic, names in groups.items()
        }
        self._indices = {
            topic: np.array([self.joint_names.index(name) for name in names])
            for topic, names in groups.items()
        }
        self._fingers: np.ndarray | None = None

    def indices(self, topic: str) -> np.ndarray:
        """Where the joints of `topic`'s tracker sit in `joint_names`."""
        return self._indices[topic]

    def accept(self, topic: str, trajectory: Trajectory, now: float) -> None:
        """Hand a trajectory to the controller of `topic` (InvalidTrajectoryError if refused)."""
        self.trackers[topic].accept(trajectory, now)

    def command_fingers(self, positions: np.ndarray) -> None:
        """A forward_command gripper's finger positions (ValueError if malformed)."""
        positions = np.asarray(positions, dtype=np.float64)
        fingers = len(self.joint_names) - self.arm_dof
        if positions.shape != (fingers,) or not np.isfinite(positions).all():
            raise ValueError(
                f"expected {fingers} finite finger positions, got {positions.tolist()}"
            )
        self._fingers = positions

    def hold(self, positions: np.ndarray) -> None:
        """Drop every command and hold all joints at `positions` (ordered as joint_names)."""
        positions = np.asarray(positions, dtype=np.float64)
        for topic, tracker in self.trackers.items():
            tracker.hold(positions[self._indices[topic]])
        self._fingers = positions[self.arm_dof :].copy() if self.finger_topic else None
        if self.gripper is not None:
            self.gripper.hold(positions[self.arm_dof :])

    def hold_tracker(self, topic: str, positions: np.ndarray) -> None:
        """Drop `topic`'s trajectory and hold its joints where `positions` (all joints, ordered
        as joint_names) has them; the other controllers carry on."""
        positions = np.asarray(positions, dtype=np.float64)
        self.trackers[topic].hold(positions[self._indices[topic]])

    def targets(self, now: float, positions: np.ndarray, velocities: np.ndarray) -> np.ndarray:
        """Position targets of all joints at simulated time `now`, from the measured state."""
        targets = np.asarray(positions, dtype=np.float64).copy()
        for topic, tracker in self.trackers.items():
            index = self._indices[topic]
            targets[index] = tracker.sample(now, positions[index], velocities[index]).positions
        if self._fingers is not None:
            targets[self.arm_dof :] = self._fingers
        if self.gripper is not None:
            targets[self.arm_dof :] = self.gripper.targets(now)
        return targets
