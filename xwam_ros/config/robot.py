"""The robot configuration: `config/robots/<arm>.yaml`.

One file describes everything the executor (and the model node's proprio) needs about an
arm or a set of arms: joints and their limits, the URDF and its frames, where each arm's base
sits in the robot frame, the controller topics, the gripper, the action space the policy
speaks, the control period, and the safety and timing bounds of the executor.

Frame conventions (REP 103): the robot frame `frame_id` is x forward, y left, z up. End-effector
poses, ee_delta actions and the proprio vector are expressed in it; each arm's `base_pose`
places its URDF `base_frame` there. Quaternions are ordered w, x, y, z; the sign of the
proprio quaternions is `proprio_quaternion` (see `ProprioQuaternionConfig`).

URDF references: an absolute path; a path relative to the robot YAML's folder;
`example-robot-data://<path under robots/>` (the URDFs installed by the `example-robot-data`
package); or `package://<ros package>/<path>` (through the ament index). Nothing is downloaded.
`load_robot_config` resolves them to absolute paths and refuses a file whose URDF is missing.
"""

from __future__ import annotations

import dataclasses
import math
import os
import site
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from xwam_model import embodiment
from xwam_model.quaternions import QuaternionConvention, QuaternionConventionError
from xwam_ros.config.schema import ConfigError, InvalidFieldError, load, option

ActionSpace = Literal["ee_delta", "joint_position", "joint_delta"]
EXAMPLE_ROBOT_DATA = "example-robot-data://"
ROS_PACKAGE = "package://"
IDENTITY_POSE = (0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class JointConfig:
    """One actuated arm joint and its limits (radians for revolute, metres for prismatic)."""

    name: str = option(doc="joint name as in /joint_states and the controller")
    lower: float = option(doc="lower position limit (rad or m)")
    upper: float = option(doc="upper position limit (rad or m)")
    velocity: float = option(doc="velocity limit (rad/s or m/s), > 0")
    acceleration: float = option(doc="acceleration limit (rad/s^2 or m/s^2), > 0")

    def __post_init__(self):
        if not self.lower < self.upper:
            raise InvalidFieldError("upper", f"a limit above lower ({self.lower})", self.upper)
        if self.velocity <= 0:
            raise InvalidFieldError("velocity", "a velocity limit > 0", self.velocity)
        if self.acceleration <= 0:
            raise InvalidFieldError("acceleration", "an acceleration limit > 0", self.acceleration)


GripperInterface = Literal[
    "joint_trajectory", "forward_command", "gripper_command", "parallel_gripper_command"
]
GRIPPER_ACTIONS = ("gripper_command", "parallel_gripper_command")


@dataclass(frozen=True)
class GripperConfig:
    """A gripper: its joints, the positions that mean open and closed, and how it is commanded.

    The policy's gripper value g in [0, 1] (1 = closed) maps linearly to joint positions
    `open + g * (closed - open)`; the proprio gripper value is the inverse map (joint mean).
    Topic interfaces follow g step by step. Action interfaces (a gripper that opens and closes
    rather than tracks) get one goal each time the policy's decision changes: closed when
    g >= `close_threshold`, else open; the goal's position is the first joint's closed or open
    position (franka_gripper's `gripper_action` reads it as one finger's travel, half the
    width; gripper_action_controller and parallel_gripper_controller as their joint's
    position), with `max_effort`.
    """

    joints: list[str] = option(doc="gripper joint names as in /joint_states, at least one")
    open_positions: list[float] = option(doc="joint positions of the open gripper, one per joint")
    closed_positions: list[float] = option(
        doc="joint positions of the closed gripper, one per joint"
    )
    interface: GripperInterface = option(
        "joint_trajectory",
        doc="joint_trajectory: trajectory_msgs/JointTrajectory to a joint_trajectory_controller "
        "(timed like the arm, one message per chunk); forward_command: std_msgs/Float64MultiArray "
        "of joint positions to a forward_command_controller, sent at each step's time; "
        "gripper_command: control_msgs/action/GripperCommand goals (franka_gripper's "
        "~/gripper_action, gripper_action_controller); parallel_gripper_command: "
        "control_msgs/action/ParallelGripperCommand goals (parallel_gripper_controller)",
    )
    topic: str = option(
        "/gripper_controller/joint_trajectory",
        doc="command topic of the joint_trajectory and forward_command interfaces; a "
        "joint_trajectory gripper sharing its arm's trajectory_topic is commanded in the arm's "
        "message",
    )
    action: str = option(
        "/gripper_controller/gripper_cmd",
        doc="action name of the gripper_command and parallel_gripper_command interfaces "
        "(franka_ros2: /panda_gripper/gripper_action or /fr3_gripper/gripper_action)",
    )
    max_effort: float = option(
        20.0, doc="max_effort of action goals (N): the grasp force the gripper may exert, > 0"
    )
    close_threshold: float = option(
        0.5, doc="action interfaces: a gripper value at or above this closes, below opens"
    )

    def __post_init__(self):
        if not self.joints:
            raise InvalidFieldError("joints", "at least one gripper joint")
        for key in ("open_positions", "closed_positions"):
            values = getattr(self, key)
            if len(values) != len(self.joints):
                raise InvalidFieldError(
                    key, f"{len(self.joints)} values, one per gripper joint", values
                )
        if any(o == c for o, c in zip(self.open_positions, self.closed_positions)):
            raise InvalidFieldError(
                "closed_positions", "positions that differ from open_positions for every joint"
            )
        for key in ("topic", "action"):
            if not getattr(self, key).startswith("/"):
                raise InvalidFieldError(key, "an absolute name starting with /", getattr(self, key))
        if self.max_effort <= 0:
            raise InvalidFieldError("max_effort", "a force > 0 (N)", self.max_effort)
        if not 0.0 < self.close_threshold < 1.0:
            raise InvalidFieldError("close_threshold", "a value in (0, 1)", self.close_threshold)

    @property
    def uses_action(self) -> bool:
        """Whether the gripper is commanded through an action (open/close goals)."""
        return self.interface in GRIPPER_ACTIONS

    @property
    def command_name(self) -> str:
        """The topic or action the gripper's commands go to."""
        return self.action if self.uses_action else self.topic


@dataclass(frozen=True)
class ArmConfig:
    """One arm: its joints, URDF chain, base pose in the robot frame, controller and gripper."""

    name: str = option(doc="short arm name used in logs (e.g. left, right, arm)")
    urdf: str = option(
        doc="URDF: absolute path, path relative to this YAML's folder, "
        "example-robot-data://<path under robots/>, or package://<package>/<path>"
    )
    joints: list[JointConfig] = option(doc="the arm's actuated joints, base to tip")
    base_frame: str = option(doc="URDF frame the arm's kinematic chain starts at")
    ee_frame: str = option(doc="URDF frame of the end effector (the tool centre point)")
    gripper: GripperConfig = option(doc="the arm's gripper")
    joint_prefix: str = option(
        "",
        doc="prefix of the ROS joint names over the URDF's (e.g. left_ for left_panda_joint1 "
        "when the URDF names it panda_joint1); every joint name must start with it",
    )
    base_pose: list[float] = option(
        factory=lambda: list(IDENTITY_POSE),
        doc="pose of base_frame in the robot frame: x, y, z (m), qw, qx, qy, qz",
    )
    trajectory_topic: str = option(
        "/joint_trajectory_controller/joint_trajectory",
        doc="the joint_trajectory_controller topic of this arm (interface topic); arms sharing "
        "a topic share one JointTrajectory message",
    )
    interface: Literal["topic", "action"] = option(
        "topic",
        doc="topic: trajectory_msgs/JointTrajectory on trajectory_topic (nothing reports back); "
        "action: control_msgs/action/FollowJointTrajectory goals to trajectory_action, whose "
        "rejection or abort (e.g. a path tolerance violated) pauses the executor",
    )
    trajectory_action: str = option(
        "",
        doc="the controller's FollowJointTrajectory action (interface action); empty: "
        "<trajectory_topic's namespace>/follow_joint_trajectory, as the JTC names it",
    )
    path_tolerance: float = option(
        0.0,
        doc="interface action: position tolerance (rad or m) of every joint sent with each "
        "goal; the controller aborts a goal that deviates further; 0 keeps the controller's",
    )
    interpolate_from_desired_state: bool = option(
        False,
        doc="whether the arm's joint_trajectory_controller starts each new trajectory from its "
        "last command (its parameter interpolate_from_desired_state, open_loop_control before "
        "Jazzy) rather than from the measured state (its default); must say what the "
        "controller does. Then chunks splice onto the command the arm is following, a jump is "
        "judged from it, and the arm's distance from it is bounded by "
        "safety.max_tracking_error; the embedded sim arm's controller follows this setting",
    )

    def __post_init__(self):
        if not self.joints:
            raise InvalidFieldError("joints", "at least one joint")
        for i, joint in enumerate(self.joints):
            if not joint.name.startswith(self.joint_prefix):
                raise InvalidFieldError(
                    f"joints[{i}].name", f"a name starting with joint_prefix '{self.joint_prefix}'"
                )
        for i, name in enumerate(self.gripper.joints):
            if not name.startswith(self.joint_prefix):
                raise InvalidFieldError(
                    f"gripper.joints[{i}]",
                    f"a name starting with joint_prefix '{self.joint_prefix}'",
                    name,
                )
        if len(self.base_pose) != 7:
            raise InvalidFieldError(
                "base_pose", "7 values: x, y, z, qw, qx, qy, qz", self.base_pose
            )
        norm = math.sqrt(sum(v * v for v in self.base_pose[3:]))
        if abs(norm - 1.0) > 1e-3:
            raise InvalidFieldError(
                "base_pose", "a unit quaternion in the last four values (qw, qx, qy, qz)"
            )
        if not self.trajectory_topic.startswith("/"):
            raise InvalidFieldError(
                "trajectory_topic", "an absolute topic name starting with /", self.trajectory_topic
            )
        if self.trajectory_action and not self.trajectory_action.startswith("/"):
            raise InvalidFieldError(
                "trajectory_action",
                "an absolute action name starting with /",
                self.trajectory_action,
            )
        if self.path_tolerance < 0:
            raise InvalidFieldError("path_tolerance", "a tolerance >= 0", self.path_tolerance)
        if (
            self.interface == "action"
            and self.gripper.interface == "joint_trajectory"
            and (self.gripper.topic == self.trajectory_topic)
        ):
            raise InvalidFieldError(
                "gripper.topic",
                "a topic of the gripper's own when the arm is commanded through its action "
                "(the arm's trajectory_topic is not used then)",
                self.gripper.topic,
            )

    @property
    def action_name(self) -> str:
        """The FollowJointTrajectory action of the arm's controller."""
        if self.trajectory_action:
            return self.trajectory_action
        namespace = self.trajectory_topic.rsplit("/", 1)[0]
        return f"{namespace}/follow_joint_trajectory"

    @property
    def command_name(self) -> str:
        """The topic or action the arm's trajectories go to."""
        return self.action_name if self.interface == "action" else self.trajectory_topic

    @property
    def joint_names(self) -> list[str]:
        """The arm's joint names, base to tip."""
        return [j.name for j in self.joints]

    def urdf_name(self, joint_name: str) -> str:
        """The URDF's name of a joint given by its ROS name (the joint prefix removed)."""
        return joint_name[len(self.joint_prefix) :]


@dataclass(frozen=True)
class ActionSpaceConfig:
    """What the policy's actions mean."""

    type: ActionSpace = option(
        doc="ee_delta: per arm xyz delta, axis-angle delta, gripper (7 values), each relative "
        "to the previous step; joint_position: absolute joint positions; joint_delta: joint "
        "position changes relative to the previous step"
    )
    rotation_delta_frame: embodiment.RotationDeltaFrame = option(
        "base",
        doc="ee_delta rotations: base: R_k = exp(a_k) R_(k-1), the axis in the robot frame; "
        "end_effector: R_k = R_(k-1) exp(a_k), the axis in the end-effector frame",
    )
    gripper: embodiment.GripperSemantics = option(
        "absolute",
        doc="the actions' gripper columns: absolute: the gripper value in [0, 1] (1 closed); "
        "delta: a change added step by step onto the gripper value measured at the "
        "observation time, clipped to [0, 1] (RoboTwin-trained checkpoints)",
    )
    frames: embodiment.FramesName = option(
        "identity",
        doc="the checkpoint's frame convention (xwam_model.embodiment.FRAMES), for the proprio "
        "poses and the ee_delta actions alike: identity: the robot frame and end-effector "
        "frame as they are (the project's checkpoints); robotwin: the X-WAM reference's "
        "RoboTwin client (base rotated by Rz(-90 deg) on positions and orientations, "
        "end-effector axes x'=z, y'=-y, z'=x); robocasa: the reference's RoboCasa client "
        "(end-effector axes rotated +90 deg about z, positions as they are)",
    )


@dataclass(frozen=True)
class IkConfig:
    """Damped least-squares inverse kinematics for ee_delta chunks."""

    max_iterations: int = option(100, doc="iterations per step before giving up")
    damping: float = option(1e-3, doc="damping lambda of (J J^T + lambda^2 I), > 0")
    position_tolerance: float = option(1e-4, doc="converged when the position error (m) is below")
    orientation_tolerance: float = option(
        1e-4, doc="converged when the orientation error (rad) is below"
    )
    max_position_error: float = option(
        0.002, doc="an ee_delta step whose IK residual exceeds this (m) is out of reach"
    )
    max_orientation_error: float = option(
        0.02, doc="an ee_delta step whose IK residual exceeds this (rad) is out of reach"
    )
    min_reachable_steps: int = option(
        2,
        doc="a step out of reach (residual above the bounds) ends an ee_delta chunk there: the "
        "steps before it are executed when there are at least this many (the next chunk is "
        "requested at once), else the chunk is rejected",
    )

    def __post_init__(self):
        if self.max_iterations < 1:
            raise InvalidFieldError("max_iterations", "at least 1", self.max_iterations)
        if self.min_reachable_steps < 1:
            raise InvalidFieldError("min_reachable_steps", "at least 1", self.min_reachable_steps)
        for key in (
            "damping",
            "position_tolerance",
            "orientation_tolerance",
            "max_position_error",
            "max_orientation_error",
        ):
            if getattr(self, key) <= 0:
                raise InvalidFieldError(key, "a value > 0", getattr(self, key))


@dataclass(frozen=True)
class SafetyConfig:
    """Bounds of the executor's safety filter and watchdog."""

    max_jump: float = option(
        0.2,
        doc="largest change of an arm joint (rad or m) from where its controller starts the "
        "trajectory (the measured state, or the executing command for an arm with "
        "interpolate_from_desired_state) to the first point, and between consecutive points; "
        "beyond it the chunk is rejected",
    )
    max_divergence: float = option(
        0.4,
        doc="largest difference of an arm joint (rad or m) between a new chunk's first point "
        "and what the executing trajectory commands at that time: within it the chunk is "
        "blended in from that command (timing.blend_time; the policy changed its mind), "
        "beyond it the chunk is rejected (a policy that does not know where the arm is)",
    )
    max_tracking_error: float = option(
        0.5,
        doc="arms with interpolate_from_desired_state: largest distance of a joint (rad or m) "
        "from the executing command when a chunk arrives; beyond it (an arm blocked, or far "
        "behind its command) the chunk is rejected",
    )
    max_chunk_age: float = option(
        1.0, doc="a chunk whose observation is older than this (s) on arrival is rejected"
    )
    max_clock_skew: float = option(
        0.2, doc="a chunk stamped further than this (s) in the future is rejected"
    )
    joint_state_timeout: float = option(
        0.5, doc="watchdog: joint states older than this (s) stop all sending"
    )
    chunk_timeout: float = option(
        2.0, doc="watchdog: no chunk for this long (s) while running makes the executor idle"
    )
    hold_time: float = option(
        0.1,
        doc="stopping (stop, e-stop, a watchdog trip, a broken chunk while a trajectory runs) "
        "sends each controller one point, zero velocity, this far ahead (s), where the joints "
        "come to rest braking evenly (q + v t / 2); longer when a joint needs more to brake "
        "at its acceleration limit",
    )

    def __post_init__(self):
        for key in (
            "max_jump",
            "max_divergence",
            "max_tracking_error",
            "max_chunk_age",
            "max_clock_skew",
            "joint_state_timeout",
            "chunk_timeout",
            "hold_time",
        ):
            if getattr(self, key) <= 0:
                raise InvalidFieldError(key, "a value > 0", getattr(self, key))


@dataclass(frozen=True)
class TimingConfig:
    """When trajectories start and when the next chunk is requested."""

    min_lead_time: float = option(
        0.05,
        doc="the first trajectory point is at least this far ahead (s); earlier steps of a "
        "chunk are dropped, so the controller never gets a point it cannot reach in time",
    )
    request_margin: float = option(
        0.15,
        doc="the next chunk is requested when the time left is below the decode latency "
        "estimate plus this margin (s); at least min_lead_time + control_period, since a new "
        "chunk's first point lies up to that far after its arrival and must come before the "
        "current chunk ends",
    )
    initial_decode_latency: float = option(
        0.5,
        doc="decode latency (s) planned with before the first chunk reports one, and counted "
        "as one of the measured latencies until latency_window of them are in (the first "
        "decodes, from an idle model, are its fastest)",
    )
    latency_window: int = option(20, doc="number of recent decode latencies in the estimate")
    latency_quantile: float = option(
        0.9, doc="quantile of the recent decode latencies used as the estimate, in (0, 1]"
    )
    idle_request_period: float = option(
        0.5, doc="while no chunk is executing, the next chunk is requested this often (s)"
    )
    blend_time: float = option(
        0.5,
        doc="a new chunk is faded in from the command being executed over its first steps "
        "spanning this time (s): its offset from that command at its first point is taken "
        "off its steps with a weight falling smoothly from 1 to 0 (its own velocities kept), "
        "so a policy that changed its mind between chunks does not make the arm step; "
        "0: switch at once",
    )

    def __post_init__(self):
        for key in ("min_lead_time", "initial_decode_latency", "idle_request_period"):
            if getattr(self, key) <= 0:
                raise InvalidFieldError(key, "a value > 0", getattr(self, key))
        if self.blend_time < 0:
            raise InvalidFieldError("blend_time", "a value >= 0", self.blend_time)
        if self.request_margin < 0:
            raise InvalidFieldError("request_margin", "a value >= 0", self.request_margin)
        if self.latency_window < 1:
            raise InvalidFieldError("latency_window", "at least 1", self.latency_window)
        if not 0 < self.latency_quantile <= 1:
            raise InvalidFieldError("latency_quantile", "a value in (0, 1]", self.latency_quantile)


@dataclass(frozen=True)
class ProprioQuaternionConfig:
    """Which sign (q or -q) of each end-effector quaternion the proprio vector carries.

    Every sign rule jumps from q to -q somewhere; the rule decides where. `scipy_canonical`
    (w > 0; the X-WAM reference's, and the released checkpoints') jumps at w = 0, i.e. at
    rotations by 180 degrees: a Panda's top-down grasp (hand z down) is one, so there a tiny
    wrist tilt flips the proprio quaternion. `hemisphere` keeps the side of the sphere of
    `reference_wxyz` (dot product >= 0) and jumps only 180 degrees away from it: with the arm's
    working orientation as reference, outside the workspace. The dataset builder records the
    convention in dataset.json; a checkpoint trained on it carries it in policy.json, which
    the model node applies at run time (xwam_model.quaternions.QuaternionConvention).
    """

    convention: Literal["scipy_canonical", "hemisphere"] = option(
        "scipy_canonical",
        doc="scipy_canonical: w > 0 (or, at w = 0, the first non-zero of x, y, z positive), as "
        "scipy's as_quat(canonical=True) and the X-WAM reference; hemisphere: the sign whose "
        "dot product with reference_wxyz is >= 0",
    )
    reference_wxyz: list[float] = option(
        factory=list,
        doc="hemisphere only: unit quaternion w, x, y, z of the working end-effector "
        "orientation in the robot frame (the encoding is continuous within 180 degrees of it); "
        "empty for scipy_canonical",
    )

    def __post_init__(self):
        if self.convention == "scipy_canonical" and self.reference_wxyz:
            raise InvalidFieldError(
                "reference_wxyz",
                "no reference with scipy_canonical (only hemisphere takes one)",
                self.reference_wxyz,
            )
        try:  # the reference's rules are the convention's own (xwam_model.quaternions)
            self.to_convention()
        except QuaternionConventionError as exc:
            raise InvalidFieldError(exc.field, exc.expected) from None

    def to_convention(self) -> QuaternionConvention:
        """The convention as stored in dataset.json and policy.json."""
        if self.convention == "scipy_canonical":
            return QuaternionConvention()
        return QuaternionConvention(self.convention, tuple(self.reference_wxyz) or None)


@dataclass(frozen=True)
class RobotConfig:
    """A robot: one or more arms with grippers, driven by joint_trajectory_controllers."""

    name: str = option(doc="robot name, used in logs")
    description: str = option(doc="one line saying which robot this is")
    frame_id: str = option(
        doc="the robot frame (REP 103): end-effector poses, ee_delta actions and the proprio "
        "vector are expressed in it; ee_delta chunks must carry it as header.frame_id"
    )
    control_period: float = option(
        doc="seconds between two action steps, the rate the policy was trained at; chunks "
        "with another step_period are rejected"
    )
    arms: list[ArmConfig] = option(doc="the arms, in the order of the action and proprio blocks")
    action_space: ActionSpaceConfig = option(doc="what the policy's actions mean")
    joint_states_topic: str = option("/joint_states", doc="sensor_msgs/JointState topic")
    ik: IkConfig = option(factory=IkConfig, doc="inverse kinematics settings")
    safety: SafetyConfig = option(factory=SafetyConfig, doc="safety filter and watchdog bounds")
    timing: TimingConfig = option(factory=TimingConfig, doc="trajectory start and chunk requests")
    proprio_quaternion: ProprioQuaternionConfig = option(
        factory=ProprioQuaternionConfig,
        doc="sign convention of the proprio quaternions of datasets built for this robot "
        "(recorded in dataset.json, then in the trained checkpoint's policy.json, which the "
        "model node follows at run time)",
    )

    def __post_init__(self):
        if self.control_period <= 0:
            raise InvalidFieldError("control_period", "a period > 0 seconds", self.control_period)
        if not self.arms:
            raise InvalidFieldError("arms", "at least one arm")
        seen: set[str] = set()
        for a, arm in enumerate(self.arms):
            named = [(f"arms[{a}].joints[{j}].name", n) for j, n in enumerate(arm.joint_names)]
            named += [
                (f"arms[{a}].gripper.joints[{j}]", n) for j, n in enumerate(arm.gripper.joints)
            ]
            for key, joint in named:
                if joint in seen:
                    raise InvalidFieldError(key, "a joint name used once in the robot", joint)
                seen.add(joint)
        overlap = self.timing.min_lead_time + self.control_period
        if self.timing.request_margin < overlap - 1e-9:
            raise InvalidFieldError(
                "timing.request_margin",
                f"at least min_lead_time + control_period = {overlap:.3f} s, so that the next "
                "chunk starts before the current one ends",
                self.timing.request_margin,
            )
        if len({arm.name for arm in self.arms}) != len(self.arms):
            raise InvalidFieldError("arms", "arm names unique in the robot")
        # One topic carries one message type: a forward-command gripper (Float64MultiArray)
        # cannot share a topic with a JointTrajectory.
        trajectory_topics = {arm.trajectory_topic for arm in self.arms} | {
            arm.gripper.topic for arm in self.arms if arm.gripper.interface == "joint_trajectory"
        }
        forward_topics = [
            arm.gripper.topic for arm in self.arms if arm.gripper.interface != "joint_trajectory"
        ]
        for a, arm in enumerate(self.arms):
            if arm.gripper.interface == "forward_command" and (
                arm.gripper.topic in trajectory_topics
                or forward_topics.count(arm.gripper.topic) > 1
            ):
                raise InvalidFieldError(
                    f"arms[{a}].gripper.topic",
                    "a forward_command topic of its own (not shared with a trajectory topic or "
                    "another gripper)",
                    arm.gripper.topic,
                )

    @property
    def joint_names(self) -> list[str]:
        """All arm joints (grippers excluded), arm after arm: the joint action columns."""
        return [name for arm in self.arms for name in arm.joint_names]

    @property
    def ee_delta_dim(self) -> int:
        """Action dimension of an ee_delta chunk (`xwam_model.embodiment.action_dim`)."""
        return embodiment.action_dim(len(self.arms))

    @property
    def action_widths(self) -> tuple[int, ...]:
        """Action dimensions a chunk may have in this robot's action space: `ee_delta_dim`
        for ee_delta; for joint spaces the joints, optionally followed by one gripper column per
        arm (the executor's layout)."""
        if self.action_space.type == "ee_delta":
            return (self.ee_delta_dim,)
        joints = len(self.joint_names)
        return (joints, joints + len(self.arms))

    @property
    def proprio_dim(self) -> int:
        """Size of the proprio vector (`xwam_model.embodiment.proprio_dim`: per arm xyz,
        quaternion wxyz, gripper)."""
        return embodiment.proprio_dim(len(self.arms))


def load_robot_config(path: str | Path) -> RobotConfig:
    """Load a robot YAML and resolve every arm's URDF to an absolute path (refused if missing)."""
    path = Path(path)
    config = load(RobotConfig, path)
    arms = []
    for index, arm in enumerate(config.arms):
        try:
            resolved = resolve_urdf(arm.urdf, path.parent)
        except FileNotFoundError as exc:
            raise ConfigError(str(path), f"arms[{index}].urdf", str(exc), arm.urdf) from None
        arms.append(dataclasses.replace(arm, urdf=str(resolved)))
    return dataclasses.replace(config, arms=arms)


def resolve_urdf(reference: str, relative_to: str | Path = ".") -> Path:
    """The URDF file a reference names; FileNotFoundError saying where it looked otherwise."""
    if reference.startswith(EXAMPLE_ROBOT_DATA):
        relative = reference[len(EXAMPLE_ROBOT_DATA) :]
        roots = example_robot_data_roots()
        for root in roots:
            if (root / relative).is_file():
                return (root / relative).resolve()
        looked = ", ".join(str(r) for r in roots) or "no example-robot-data installation"
        raise FileNotFoundError(
            f"an installed example-robot-data URDF ({relative} not found under: {looked}; "
            "install it with `pip install example-robot-data` or give a path)"
        )
    if reference.startswith(ROS_PACKAGE):
        package, _, relative = reference[len(ROS_PACKAGE) :].partition("/")
        try:
            from ament_index_python.packages import get_package_share_directory

            share = Path(get_package_share_directory(package))
        except (ImportError, LookupError, OSError) as exc:
            raise FileNotFoundError(
                f"a URDF of an installed ROS package (package '{package}' is not in the "
                "ament index; source its install/setup.bash or give a path)"
            ) from exc
        if not (share / relative).is_file():
            raise FileNotFoundError(f"an existing file ({share / relative} does not exist)")
        return (share / relative).resolve()
    candidate = Path(os.path.expanduser(reference))
    if not candidate.is_absolute():
        candidate = Path(relative_to) / candidate
    if not candidate.is_file():
        raise FileNotFoundError(f"an existing URDF file ({candidate} does not exist)")
    return candidate.resolve()


def example_robot_data_roots() -> list[Path]:
    """The `robots/` folders of example-robot-data installations visible to this interpreter.

    The PyPI wheel installs under `<site-packages>/cmeel.prefix/share/`; a ROS or robotpkg
    install under `<prefix>/share/`.
    """
    prefixes = [Path(p) / "cmeel.prefix" for p in [*site.getsitepackages(), *sys.path] if p]
    prefixes += [Path(sys.prefix), Path("/opt/openrobots")]
    prefixes += [Path(p) for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    roots = []
    for prefix in prefixes:
        root = prefix / "share" / "example-robot-data" / "robots"
        if root.is_dir() and root.resolve() not in roots:
            roots.append(root.resolve())
    return roots
