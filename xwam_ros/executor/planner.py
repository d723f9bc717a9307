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
    check_divergence,
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
        arm_targets, blended, offset = targets.arm, 0, np.zeros(len(targets.arm[0]))
        if commanded is not None:
            # Past its end the executing plan holds its last point (as the controller does).
            then = previous.sample(now_ns + int(round(times[0] * 1e9)))[0]
            check_divergence(targets.arm[0], then, config.safety.max_divergence, config.joint_names)
            offset = targets.arm[0] - then
            arm_targets, blended = self._blend(arm_targets, offset)
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
            blended=blended,
            blend_offset=float(np.abs(offset).max()),
        )

    def _blend(self, targets: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, int]:
        """The chunk's targets [N, J] (rad) faded in from the command being executed.

        The offset d = a_0 - c_0 [J] is how far the chunk's first target a_0 is from what the
        executing plan commands at its time, c_0. The K first steps (`timing.blend_time` of
        steps; all but the last at most) command a_k - (1 - w_k) d, with
        w_k = smoothstep((k+1) / (K+1)) rising from near 0 to near 1 with zero slope at both
        ends; the later steps are the chunk's. Returns the targets and K. How large d may be
        is `safety.max_divergence` (checked before).

        The executor's half of smooth chunk switching (the model's half is prefix-conditioned
        decoding, `continue_chunks`): a policy that changed its mind between chunks has its
        chunk start where the command is and reach its own path within `blend_time`, instead
        of being refused for its first point or stepping there; the chunk's own motion (its
        velocities) is kept, so a chunk that continues the command is left as it is. The jump
        check then judges the faded path like any other."""
        # The last step stays the chunk's own, however short the chunk.
        steps = min(
            int(round(self.config.timing.blend_time / self.config.control_period)),
            len(targets) - 1,
        )
        if steps <= 0:
            return targets, 0
        s = np.arange(1, steps + 1) / (steps + 1)
        weights = (s * s * (3.0 - 2.0 * s))[:, None]
        faded = targets.copy()
        faded[:steps] -= (1.0 - weights) * offset
        return faded, steps

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
