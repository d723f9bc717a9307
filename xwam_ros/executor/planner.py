"""Chunk -> plan: the whole way from a received chunk to timed, safe joint targets.

Order matters: the structure is checked before anything reads the numbers; the deadline
before any IK is spent; jumps are judged on the raw targets (a clamp must not hide them);
the limits are applied last.
"""

from __future__ import annotations

import numpy as np

from xwam_ros.config.robot import RobotConfig
from xwam_ros.executor.action_spaces import joint_targets
from xwam_ros.executor.chunk import Chunk
from xwam_ros.executor.gripper import gripper_limits, gripper_positions, gripper_value
from xwam_ros.executor.kinematics import RobotKinematics
from xwam_ros.executor.measured_state import RobotJointStates
from xwam_ros.executor.safety import (
    ChunkRejectedError,
    Rejection,
    check_finite,
    check_jumps,
    check_structure,
    check_tracking,
    first_kept_step,
    limit_motion,
)
from xwam_ros.executor.trajectory import Plan, point_velocities


class ChunkPlanner:
    """Turns chunks into plans for one robot, or says why not."""

    def __init__(self, config: RobotConfig, kinematics: RobotKinematics | None = None):
        self.config = config
        self.kinematics = kinematics or RobotKinematics(config)
        joints = [j for arm in config.arms for j in arm.joints]
        self.lower = np.array([j.lower for j in joints])
        self.upper = np.array([j.upper for j in joints])
        self.max_velocity = np.array([j.velocity for j in joints])
        self.max_acceleration = np.array([j.acceleration for j in joints])
        # Joints whose controller starts a new trajectory from its last command.
        self.from_command = np.array(
            [arm.interpolate_from_desired_state for arm in config.arms for _ in arm.joints]
        )

    def plan(
        self, chunk: Chunk, state: RobotJointStates, now_ns: int, previous: Plan | None = None
    ) -> Plan | Rejection:
        """The plan for `chunk` at `now_ns` (the previous plan, if any, is still executing)."""
        try:
            return self._plan(chunk, state, now_ns, previous)
        except ChunkRejectedError as exc:
            return exc.rejection

    def _plan(
        self, chunk: Chunk, state: RobotJointStates, now_ns: int, previous: Plan | None
    ) -> Plan:
        config = self.config
        check_structure(chunk, config)
        if previous is not None and chunk.stamp_ns <= previous.chunk_stamp_ns:
            raise ChunkRejectedError(
                "stale",
                f"chunk {chunk.chunk_id} observed no later than the chunk already sent "
                f"({previous.chunk_id})",
            )
        first = first_kept_step(chunk, now_ns, config)
        measured = state.latest()
        if measured is None:
            raise ChunkRejectedError("no_state", "no joint state with every arm joint received yet")
        observed = state.arms_at(chunk.stamp_ns, int(config.safety.max_chunk_age * 1e9))
        if observed is None:
            raise ChunkRejectedError(
                "no_state",
                f"no joint state near the observation time of chunk {chunk.chunk_id} "
                "(the joint history was cleared, or does not reach back that far)",
            )
        observed_gripper = None
        if config.action_space.gripper == "delta":
            # Delta gripper columns start from the gripper as the model saw it, like the arm.
            observed_gripper = [
                None if positions is None else gripper_value(arm.gripper, positions)
                for arm, positions in zip(
                    config.arms,
                    state.grippers_at(chunk.stamp_ns, int(config.safety.max_chunk_age * 1e9)),
                )
            ]
        targets = joint_targets(
            chunk.matrix(),
            chunk.action_space,
            first,
            config,
            self.kinematics,
            observed,
            measured.q,
            joint_names=chunk.joint_names,
            observed_gripper=observed_gripper,
        )
        check_finite(targets.arm, "joint targets")
        # Where the controller starts the new trajectory: the command being executed (for
        # joints whose controller interpolates from it), else the measured state.
        executing = self._executing(previous, now_ns)
        commanded = executing[0] if executing else None
        arm_start = measured.q
        if commanded is not None and self.from_command.any():
            arm_start = np.where(self.from_command, commanded, measured.q)
            check_tracking(
                measured.q, arm_start, config.safety.max_tracking_error, config.joint_names
            )
        from_measured = arm_start is measured.q
        # An ee_delta chunk may keep only its reachable prefix.
        times = (chunk.step_times_ns()[first : first + len(targets.arm)] - now_ns) * 1e-9
        arm_targets, spliced = targets.arm, 0
        if commanded is not None:
            arm_targets, spliced = self._splice(arm_targets, arm_start, times, previous, now_ns)
        check_jumps(
            arm_start,
            arm_targets,
            config.safety.max_jump,
            config.joint_names,
            start_is="the measured state" if from_measured else "the command being executed",
            commanded=commanded if from_measured else None,
        )
        start_velocity = self._start_velocity(measured, executing)
        arm, clamped = limit_motion(
            arm_start,
            start_velocity,
            times,
            arm_targets,
            self.lower,
            self.upper,
            self.max_velocity,
            self.max_acceleration,
        )
        gripper = gripper_velocity = None
        if targets.gripper is not None:
            gripper, gripper_velocity = [], []
            for a, arm_config in enumerate(config.arms):
                positions = gripper_positions(arm_config.gripper, targets.gripper[:, a])
                positions = np.clip(positions, *gripper_limits(arm_config.gripper))
                start = measured.gripper[a] if measured.gripper[a] is not None else positions[0]
                gripper.append(positions)
                gripper_velocity.append(point_velocities(start, times, positions))
        return Plan(
            chunk_id=chunk.chunk_id,
            chunk_stamp_ns=chunk.stamp_ns,
            planned_ns=now_ns,
            dropped=first,
            times=times,
            start=arm_start,
            start_velocity=start_velocity,
            arm=arm,
            arm_velocity=point_velocities(arm_start, times, arm),
            gripper=gripper,
            gripper_velocity=gripper_velocity,
            clamped=clamped,
            unreachable=targets.unreachable,
            spliced=spliced,
        )

    def _splice(
        self,
        targets: np.ndarray,
        start: np.ndarray,
        times: np.ndarray,
        previous: Plan,
        now_ns: int,
    ) -> tuple[np.ndarray, int]:
        """Where the chunk's first target jumps from `start` (where the controller starts the
        new trajectory), join the chunk where it meets the command being executed instead
        (the policy changed its mind between chunks): steps before k follow what the plan
        commands at their times, and k is the first step (due within that plan) whose target
        lies within `safety.max_jump` of the command at the step before. The targets [N, J]
        (rad) and k (0: joined at once, or nowhere to join: the jump check then refuses the
        chunk). Real-time chunking done by the executor: the chunk is kept, only its start
        waits for where it agrees with the motion under way."""
        max_jump = self.config.safety.max_jump
        if np.abs(targets[0] - start).max() <= max_jump:
            return targets, 0
        due_ns = now_ns + np.round(times * 1e9).astype(np.int64)
        commanded = [previous.sample(int(t))[0] for t in due_ns if t < previous.end_ns]
        for k in range(1, len(commanded)):
            if np.abs(targets[k] - commanded[k - 1]).max() <= max_jump:
                joined = targets.copy()
                joined[:k] = commanded[:k]
                return joined, k
        return targets, 0

    @staticmethod
    def _executing(previous: Plan | None, now_ns: int) -> tuple[np.ndarray, np.ndarray] | None:
        """What the previous plan commands now (arm positions, velocities), or None when it is
        not executing."""
        if previous is not None and previous.planned_ns <= now_ns < previous.end_ns:
            return previous.sample(now_ns)
        return None

    @staticmethod
    def _start_velocity(measured, executing) -> np.ndarray:
        """Velocity the joints have now: what the executing plan commands, else as measured."""
        if executing is not None:
            return executing[1]
        if measured.velocity is not None:
            return measured.velocity
        return np.zeros_like(measured.q)
