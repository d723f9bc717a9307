"""The safety filter: checks that refuse a chunk, and the clamps applied to an accepted one.

A refusal is a `Rejection` (a category and a human-readable reason). The checks raise
`ChunkRejectedError` so that a chain of them reads straight; the planner turns it into the
returned `Rejection`. Nothing here sends or commands anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xwam_model.embodiment import ACTION_PER_ARM
from xwam_ros.config.robot import RobotConfig
from xwam_ros.executor.chunk import Chunk

ACTION_SPACES = ("ee_delta", "joint_position", "joint_delta")


# Refusals that say the policy's output is broken (malformed, non-finite): the trajectory
# running was planned from the same policy, so the arm is stopped too. A jump or a target out
# of reach says only that this chunk does not fit where the arm is; the trajectory already
# running was checked and stays valid, and stopping it would freeze the loop (the next chunks
# are planned as if the arm had moved on while they were decoded, so they would jump too).
BROKEN_OUTPUT_CATEGORIES = frozenset(
    {"action_space", "step_period", "size", "joint_names", "frame", "non_finite"}
)
# Refusals after which the arm is held: a broken output, or an arm further from the command it
# follows than safety.max_tracking_error (blocked, or far behind), where a
# joint_trajectory_controller would abort its goal for a path tolerance.
HOLDING_CATEGORIES = BROKEN_OUTPUT_CATEGORIES | {"tracking"}


@dataclass(frozen=True)
class Rejection:
    """Why a chunk was not executed: a short category (for counting) and a reason (for people)."""

    category: str
    reason: str

    @property
    def broken_output(self) -> bool:
        """Whether the chunk was refused as malformed or non-finite output (the executor then
        also stops the trajectory that is running)."""
        return self.category in BROKEN_OUTPUT_CATEGORIES

    @property
    def holds(self) -> bool:
        """Whether the executor stops the running trajectory too (`HOLDING_CATEGORIES`)."""
        return self.category in HOLDING_CATEGORIES

    def __str__(self) -> str:
        return f"{self.category}: {self.reason}"


class ChunkRejectedError(Exception):
    """Raised by a check that refuses a chunk."""

    def __init__(self, category: str, reason: str):
        super().__init__(f"{category}: {reason}")
        self.rejection = Rejection(category, reason)


def check_structure(chunk: Chunk, config: RobotConfig) -> None:
    """Action space, step period, sizes, joint names, frame and finiteness of a chunk."""
    if chunk.action_space not in ACTION_SPACES:
        raise ChunkRejectedError(
            "action_space",
            f"unknown action space '{chunk.action_space}', not one of {ACTION_SPACES}",
        )
    period = chunk.step_period_ns * 1e-9
    if abs(period - config.control_period) > 1e-3 * config.control_period:
        raise ChunkRejectedError(
            "step_period",
            f"step period {period:.4f} s differs from the robot's control period "
            f"{config.control_period:.4f} s",
        )
    if chunk.num_steps < 1:
        raise ChunkRejectedError("size", "the chunk has no steps")
    if chunk.actions.size != chunk.num_steps * chunk.action_dim:
        raise ChunkRejectedError(
            "size",
            f"{chunk.actions.size} action values, expected num_steps x action_dim = "
            f"{chunk.num_steps} x {chunk.action_dim}",
        )
    if chunk.action_space == "ee_delta":
        _check_ee_delta_layout(chunk, config)
    else:
        _check_joint_layout(chunk, config)
    if not np.isfinite(chunk.actions).all():
        bad = int(np.flatnonzero(~np.isfinite(chunk.actions))[0])
        raise ChunkRejectedError(
            "non_finite",
            f"action {chunk.actions[bad]} at step {bad // chunk.action_dim}, "
            f"column {bad % chunk.action_dim}",
        )


def _check_ee_delta_layout(chunk: Chunk, config: RobotConfig) -> None:
    if chunk.action_dim != config.ee_delta_dim:
        raise ChunkRejectedError(
            "size",
            f"ee_delta action_dim {chunk.action_dim}, expected {config.ee_delta_dim} "
            f"({ACTION_PER_ARM} per arm, {len(config.arms)} arm(s))",
        )
    if chunk.frame_id and chunk.frame_id != config.frame_id:
        raise ChunkRejectedError(
            "frame",
            f"ee_delta chunk in frame '{chunk.frame_id}', the robot's is '{config.frame_id}'",
        )


def _check_joint_layout(chunk: Chunk, config: RobotConfig) -> None:
    joint_columns(chunk.joint_names, chunk.action_dim, config, chunk.action_space)


def joint_columns(
    joint_names: Sequence[str],
    action_dim: int,
    config: RobotConfig,
    action_space: str = "joint_position",
) -> np.ndarray:
    """The column order putting a joint-space chunk's actions in the robot's joint order.

    Joints are matched by name, as ros2_control's joint_trajectory_controller does:
    `joint_names` (a chunk's) names its joint columns, in column order, and must be a
    permutation of the robot's arm joints. `action_dim` is either the number of joints, or that
    plus one gripper column per arm; then the columns are per-arm blocks
    [that arm's joints..., gripper] in the robot's arm order, and each block must hold exactly
    its arm's joints (in any order). `actions[:, joint_columns(...)]` has the same layout with
    the joints in the order of `config.joint_names`, the gripper columns where they were.
    Refuses ("joint_names", naming the joints or the arm; "size") any other layout.
    """
    expected = config.joint_names
    names = list(joint_names)
    unknown = list(dict.fromkeys(n for n in names if n not in expected))
    repeated = list(dict.fromkeys(n for n in names if names.count(n) > 1))
    missing = [n for n in expected if n not in names]
    if unknown or repeated or missing:
        problems = [
            f"{what} {joints}"
            for what, joints in (("unknown", unknown), ("repeated", repeated), ("missing", missing))
            if joints
        ]
        raise ChunkRejectedError(
            "joint_names",
            f"{action_space} chunk joints: {', '.join(problems)}; expected the robot's arm "
            f"joints {expected} in any order",
        )
    allowed = (len(expected), len(expected) + len(config.arms))
    if action_dim not in allowed:
        raise ChunkRejectedError(
            "size",
            f"{action_space} action_dim {action_dim}, expected {allowed[0]} "
            f"(joints) or {allowed[1]} (joints and a gripper per arm)",
        )
    if action_dim == len(expected):
        index = {name: k for k, name in enumerate(names)}
        return np.array([index[name] for name in expected], dtype=np.intp)
    order, column, named = [], 0, 0
    for arm in config.arms:
        count = len(arm.joint_names)
        block = names[named : named + count]
        if set(block) != set(arm.joint_names):
            foreign = [n for n in block if n not in arm.joint_names]
            absent = [n for n in arm.joint_names if n not in block]
            raise ChunkRejectedError(
                "joint_names",
                f"{action_space} chunk with gripper columns: arm '{arm.name}' block (columns "
                f"{column}..{column + count}, gripper last) holds {foreign} of another arm and "
                f"lacks {absent}; each block holds exactly its arm's joints (any order), then "
                "its gripper",
            )
        order += [column + block.index(name) for name in arm.joint_names]
        order.append(column + count)
        column, named = column + count + 1, named + count
    return np.array(order, dtype=np.intp)


def first_kept_step(chunk: Chunk, now_ns: int, config: RobotConfig) -> int:
    """Index of the first step still far enough ahead; refuses a chunk past its deadline."""
    age = (now_ns - chunk.stamp_ns) * 1e-9
    if age > config.safety.max_chunk_age:
        raise ChunkRejectedError(
            "deadline",
            f"observation {age:.3f} s old on arrival, limit {config.safety.max_chunk_age:.3f} s",
        )
    if -age > config.safety.max_clock_skew:
        raise ChunkRejectedError(
            "clock",
            f"chunk stamped {-age:.3f} s in the future (clocks not synchronised?), limit "
            f"{config.safety.max_clock_skew:.3f} s",
        )
    lead_ns = int(config.timing.min_lead_time * 1e9)
    ahead = np.flatnonzero(chunk.step_times_ns() - now_ns >= lead_ns)
    if ahead.size == 0:
        raise ChunkRejectedError(
            "deadline",
            f"all {chunk.num_steps} steps are due within {config.timing.min_lead_time:.3f} s "
            f"(observation {age:.3f} s old)",
        )
    return int(ahead[0])


def check_finite(positions: np.ndarray, what: str) -> None:
    """Refuse targets holding NaN or Inf (an IK or a conversion gone wrong)."""
    if not np.isfinite(positions).all():
        raise ChunkRejectedError("non_finite", f"{what} hold a non-finite value")


def check_jumps(
    start: np.ndarray,
    positions: np.ndarray,
    max_jump: float,
    joint_names: list[str],
    *,
    start_is: str = "the measured state",
    commanded: np.ndarray | None = None,
) -> None:
    """Refuse targets whose first point, or any step, moves a joint further than `max_jump`.

    The first point is judged from `start` [J] (rad), where the controller starts the new
    trajectory: the measured joints by default (ros2_control's joint_trajectory_controller),
    the executing command for a controller that interpolates from its desired state;
    `start_is` names it in the reason. `commanded` [J], where the executing trajectory holds
    the joints now, only adds to the reason of a first-point jump from the measured state how
    much of it is the arm lagging its command (a soft or slow position loop) rather than a
    chunk that does not continue the motion. Raises ChunkRejectedError ("jump").
    """
    path = np.vstack([start[None, :], positions])
    steps = np.abs(np.diff(path, axis=0))
    if steps.max() <= max_jump:
        return
    point, joint = np.unravel_index(int(np.argmax(steps)), steps.shape)
    where = f"from {start_is} to the first point" if point == 0 else f"at point {point}"
    reason = f"{joint_names[joint]} moves {steps[point, joint]:.3f} {where}, bound {max_jump:.3f}"
    if point == 0 and commanded is not None:
        lag = abs(commanded[joint] - start[joint])
        gap = abs(positions[0, joint] - commanded[joint])
        reason += (
            f" (the executing trajectory commands it {gap:.3f} from the first point; the arm "
            f"lags its command by {lag:.3f})"
        )
    raise ChunkRejectedError("jump", reason)


def check_divergence(
    first: np.ndarray, commanded: np.ndarray, max_divergence: float, joint_names: list[str]
) -> None:
    """Refuse a chunk whose first point `first` [J] (rad) is further than `max_divergence`
    from what the executing trajectory commands at its time, `commanded` [J]: within it the
    chunk is blended in from the command (the policy changed its mind between chunks), beyond
    it the policy does not continue the motion under way at all (it does not know where the
    arm is, or its output is not this robot's). Raises ChunkRejectedError ("jump")."""
    gaps = np.abs(first - commanded)
    joint = int(np.argmax(gaps))
    if gaps[joint] > max_divergence:
        raise ChunkRejectedError(
            "jump",
            f"{joint_names[joint]}: the chunk's first point is {gaps[joint]:.3f} from what the "
            f"executing trajectory commands then, bound {max_divergence:.3f} "
            "(safety.max_divergence)",
        )


def check_tracking(
    measured: np.ndarray, commanded: np.ndarray, max_error: float, joint_names: list[str]
) -> None:
    """Refuse a chunk while a joint is further than `max_error` (rad) from the command it
    follows (`measured`, `commanded` [J]; joints not to check passed equal): spliced onto the
    command, the chunk would not see an arm that is blocked or far behind it. Raises
    ChunkRejectedError ("tracking")."""
    errors = np.abs(measured - commanded)
    joint = int(np.argmax(errors))
    if errors[joint] > max_error:
        raise ChunkRejectedError(
            "tracking",
            f"{joint_names[joint]} is {errors[joint]:.3f} from its command, bound {max_error:.3f}",
        )


def limit_motion(
    start: np.ndarray,
    start_velocity: np.ndarray,
    times: np.ndarray,
    positions: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    max_velocity: np.ndarray,
    max_acceleration: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Clamp targets to the velocity, acceleration and position limits, point after point.

    `times` are seconds from now (where the joints are at `start`, moving at
    `start_velocity`). Each segment's mean velocity is limited, and its change from the
    previous segment's; a joint heading for a position limit is slowed in time to stop there
    without exceeding its acceleration; positions are clamped to the limits last.
    Returns the limited positions and the number of points that were changed.
    """
    limited = np.empty_like(positions)
    previous, velocity, t_previous = start.astype(np.float64), start_velocity.astype(float), 0.0
    for k, t in enumerate(times):
        dt = t - t_previous
        wanted = (positions[k] - previous) / dt
        allowed = np.clip(
            wanted, velocity - max_acceleration * dt, velocity + max_acceleration * dt
        )
        allowed = np.clip(
            allowed,
            -_braking_velocity(previous - lower, max_acceleration, dt),
            _braking_velocity(upper - previous, max_acceleration, dt),
        )
        velocity = np.clip(allowed, -max_velocity, max_velocity)
        # Joints within their limits keep the exact target (no rounding through velocity).
        moved = np.where(velocity == wanted, positions[k], previous + velocity * dt)
        limited[k] = np.clip(moved, lower, upper)
        previous, t_previous = limited[k], t
    changed = int((limited != positions).any(axis=1).sum())
    return limited, changed


def _braking_velocity(distance: np.ndarray, max_acceleration: np.ndarray, dt: float) -> np.ndarray:
    """Fastest velocity towards a limit `distance` away that can still stop before it.

    Braking by a*dt per step from m*a*dt covers a*dt^2 * m(m+1)/2; m is the largest whole
    number of steps that fits, so the velocity falls by exactly a*dt per step to zero.
    """
    unit = max_acceleration * dt * dt
    steps = np.floor((np.sqrt(1.0 + 8.0 * np.maximum(distance, 0.0) / unit) - 1.0) / 2.0)
    return steps * max_acceleration * dt
