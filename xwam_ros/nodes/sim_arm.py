"""Simulated arm node: a robosuite Panda that speaks the interfaces of a ros2_control arm with
cameras.

What a real setup offers, the sim offers under the same names (from the robot and camera
YAML files): `/joint_states` (arm joints and fingers, URDF names), the arm's
joint_trajectory_controller topic (tracked with JTC semantics, see
`xwam_ros.sim.trajectory_tracker`) and, for an arm with `interface: action`, its
FollowJointTrajectory action; the gripper's command topic (a JointTrajectory, or a
Float64MultiArray of finger positions for a forward_command gripper) or its GripperCommand or
ParallelGripperCommand action, as the robot YAML says (see `xwam_ros.sim.action_servers`);
and per camera `image_raw` (rgb8, right way up), `camera_info` (the simulator's intrinsics)
and depth (32FC1, metres). Sim-only extras: `~/reset` (xwam_msgs/ResetEpisode: a new episode
from the request's seed, or the `seed` parameter's when it is -1; the response carries the
seed, the episode number and the objects' poses, and its message the same as JSON),
`~/success` (std_msgs/Bool, every control step) and `~/real_time_factor` (std_msgs/Float64).
As robot_state_publisher does beside a real arm, it also publishes `robot_description` (the
URDF), `/tf_static` (the URDF's fixed joints and the cameras' mounts) and `/tf` (the moving
joints, at most 20 times per simulated second, with the joint state's stamp): see
`xwam_ros.robot_state`.

Time. Simulated time and wall time are kept apart:

- The sim publishes `/clock` (rosgraph_msgs/Clock) with simulated time, once per control step.
  It starts at 0 when the node starts, advances by exactly one control period per step and
  never goes back, unless `rewind_clock_on_reset` is set: then each `~/reset` rewinds it to 0,
  as Gazebo's world reset does, so the nodes' handling of backward time jumps can be run
  (the sim itself drops every trajectory and holds the new episode's pose on a reset). Every
  message the sim publishes is stamped with simulated time, and trajectory start stamps are
  read as simulated time, so the nodes talking to the sim must run with `use_sim_time:=true`.
- Wall time only paces the loop: simulated time may not run ahead of `real_time_factor` x
  wall time (1.0 by default; <= 0 runs as fast as it can). When rendering or a busy CPU makes
  the sim slower, it runs flat out and simulated time falls behind; nothing is skipped. The
  achieved factor is published on `~/real_time_factor` and logged every `report_period` wall
  seconds.

The simulation (robosuite and its OpenGL context) lives in one thread of its own; ROS
callbacks only hand work to it through a queue. The node spins in a multi-threaded executor:
an action goal's execute callback waits for its goal to end, and the reset service for the
reset, without holding up the other callbacks.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray, Header
from trajectory_msgs.msg import JointTrajectory

from xwam_msgs.srv import ResetEpisode
from xwam_ros.config import load
from xwam_ros.config.cameras import CameraSetup, CameraView
from xwam_ros.config.robot import load_robot_config
from xwam_ros.conversions.images import depth_to_image, intrinsics_to_camera_info, rgb_to_image
from xwam_ros.node_support import Param, declare_parameters, run_node
from xwam_ros.paths import config_dir
from xwam_ros.robot_state import RobotStatePublisher, camera_mounts
from xwam_ros.sim.action_servers import SimAccess, make_action_servers
from xwam_ros.sim.controllers import SimControllers
from xwam_ros.sim.environment import PandaSimulation
from xwam_ros.sim.gripper_motion import GripperSettings
from xwam_ros.sim.pacing import RealTimePacer
from xwam_ros.sim.rendering import pose_difference, quaternion_wxyz
from xwam_ros.sim.trajectory_goal import GoalTolerances
from xwam_ros.sim.trajectory_messages import (
    future_start_warning,
    to_time,
    trajectory_from_message,
)
from xwam_ros.sim.trajectory_tracker import InvalidTrajectoryError, Trajectory

PARAMS = (
    Param(
        "robot_config",
        str(config_dir() / "robots" / "panda.yaml"),
        "robot YAML: joint names, joint_states topic, arm and gripper controller topics",
    ),
    Param(
        "cameras_config",
        str(config_dir() / "cameras" / "sim_panda.yaml"),
        "camera setup YAML: each view's topics, optical frame and extrinsics",
    ),
    Param("task", "Lift", "robosuite task: Lift, Stack, Door or PickPlaceCan"),
    Param(
        "camera_map",
        ["agentview:agentview", "sideview:sideview", "wrist:robot0_eye_in_hand"],
        "view:camera pairs mapping each setup view to a robosuite camera",
    ),
    Param(
        "frame_map",
        ["panda_link0:robot0_link0", "panda_hand:robot0_right_hand"],
        "frame:body pairs mapping URDF frames to robosuite bodies (to check the extrinsics)",
    ),
    Param("image_width", 128, "rendered image width (pixels)"),
    Param("image_height", 128, "rendered image height (pixels)"),
    Param(
        "camera_rate",
        10.0,
        "camera frames per simulated second; rendered every round(control_rate / camera_rate) "
        "control steps (rendering dominates the cost)",
    ),
    Param("publish_depth", True, "publish depth for views that name a depth_topic"),
    Param(
        "control_rate",
        100.0,
        "control steps per simulated second (whole Hz): the controller's update rate, the "
        "rate of /clock, /joint_states and ~/success",
    ),
    Param(
        "real_time_factor",
        1.0,
        "cap on simulated seconds per wall second; <= 0: as fast as possible",
    ),
    Param(
        "seed",
        -1,
        "seed of the first episode and of each ~/reset; -1: a fresh seed each time (reported)",
    ),
    Param("kp", 150.0, "stiffness of robosuite's joint position controller (1/s^2)"),
    Param("damping_ratio", 1.0, "damping ratio of robosuite's joint position controller"),
    Param("report_period", 5.0, "wall seconds between real-time factor reports"),
    Param(
        "rewind_clock_on_reset",
        False,
        "each ~/reset rewinds /clock to 0 (like a Gazebo world reset); false: time runs on",
    ),
    Param(
        "trajectory_path_tolerance",
        0.0,
        "FollowJointTrajectory: the controller's default position tolerance (rad) of each arm "
        "joint while moving (the JTC's constraints.<joint>.trajectory); 0: not checked",
    ),
    Param(
        "trajectory_goal_tolerance",
        0.02,
        "FollowJointTrajectory: the controller's default position tolerance (rad) of each arm "
        "joint at the end (constraints.<joint>.goal); 0: not checked",
    ),
    Param(
        "trajectory_goal_time",
        0.5,
        "FollowJointTrajectory: the controller's default time (s) after the last point to get "
        "within the goal tolerance (constraints.goal_time); 0: wait as long as it takes",
    ),
    Param(
        "gripper_speed",
        0.05,
        "gripper actions: speed (m/s) the finger targets move at when a goal gives none "
        "(franka_gripper's default 0.1 m/s of width)",
    ),
    Param(
        "gripper_goal_tolerance",
        0.002,
        "gripper actions: a goal is reached when the first finger is this close (m)",
    ),
    Param(
        "gripper_stall_velocity",
        0.001,
        "gripper actions: the first finger slower than this (m/s) is not moving",
    ),
    Param(
        "gripper_stall_timeout",
        1.0,
        "gripper actions: not moving for this long (s) short of the target is a stall",
    ),
)
EXECUTOR_THREADS = 8  # action goals each hold a thread while they run (preemption: two)
EXTRINSICS_TOLERANCE = (0.01, 1.0)  # metres, degrees
STARTUP_TIMEOUT = 300.0  # seconds: a cold numba cache compiles for a while

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


@dataclass(frozen=True)
class SimView:
    """A camera of the setup bound to a simulator camera."""

    view: CameraView
    camera: str


def pairs(entries: list[str], key: str) -> dict[str, str]:
    """Parse 'a:b' strings of parameter `key` into a mapping a -> b."""
    mapping = {}
    for entry in entries:
        left, sep, right = entry.partition(":")
        if not sep or not left or not right:
            raise ValueError(f"{key}: expected 'name:name' entries, got '{entry}'")
        mapping[left] = right
    return mapping


class SimArm(Node):
    """The simulated Panda with cameras (see the module docstring)."""

    def __init__(self):
        super().__init__("sim_arm")
        self.p = declare_parameters(self, PARAMS)
        self.robot = load_robot_config(self.p["robot_config"])
        self.setup = load(CameraSetup, self.p["cameras_config"])
        self._check_parameters()
        self.controllers = SimControllers(
            self.robot.arms[0],
            self.robot.arms[0].interpolate_from_desired_state,
            self._gripper_settings(),
        )
        self.views = self._bind_views()
        self._subscribe_commands()
        self.period_ns = round(1e9 / self.p["control_rate"])
        self.render_every = max(1, round(self.p["control_rate"] / self.p["camera_rate"]))
        self.sim_time_ns = 0
        self.steps = self.frames = 0
        self.episode = 0
        self.inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self.pacer = RealTimePacer(self.p["real_time_factor"], window=self.p["report_period"])
        self._make_publishers()
        # Its own group: a reset waits for the sim thread, and commands keep arriving meanwhile.
        self.create_service(
            ResetEpisode,
            "~/reset",
            self._on_reset,
            callback_group=MutuallyExclusiveCallbackGroup(),
        )
        self._stop = threading.Event()
        self.action_servers = self._make_action_servers()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sim_arm", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise ValueError(f"the simulator did not start within {STARTUP_TIMEOUT:.0f} s")
        if self._startup_error is not None:
            raise ValueError(f"the simulator did not start: {self._startup_error}")

    # --- configuration ---------------------------------------------------------------------

    def _check_parameters(self) -> None:
        if len(self.robot.arms) != 1:
            raise ValueError(
                f"{self.p['robot_config']}: the sim is one Panda, the robot has "
                f"{len(self.robot.arms)} arms"
            )
        arm = self.robot.arms[0]
        if len(arm.joints) != 7 or len(arm.gripper.joints) != 2:
            raise ValueError(
                f"{self.p['robot_config']}: the sim is a Panda (7 arm joints, 2 finger joints), "
                f"the robot has {len(arm.joints)} and {len(arm.gripper.joints)}"
            )
        for key in ("image_width", "image_height", "camera_rate", "control_rate"):
            if self.p[key] <= 0:
                raise ValueError(f"{key} must be > 0, got {self.p[key]}")
        if self.p["report_period"] <= 0:
            raise ValueError(f"report_period must be > 0, got {self.p['report_period']}")
        for key in (
            "trajectory_path_tolerance",
            "trajectory_goal_tolerance",
            "trajectory_goal_time",
        ):
            if self.p[key] < 0:
                raise ValueError(f"{key} must be >= 0, got {self.p[key]}")

    def _gripper_settings(self) -> GripperSettings:
        """The gripper action controller's settings (ValueError if one is not > 0)."""
        return GripperSettings(
            speed=self.p["gripper_speed"],
            goal_tolerance=self.p["gripper_goal_tolerance"],
            stall_velocity=self.p["gripper_stall_velocity"],
            stall_timeout=self.p["gripper_stall_timeout"],
        )

    def _bind_views(self) -> list[SimView]:
        mapping = pairs(self.p["camera_map"], "camera_map")
        views = []
        for view in self.setup.ordered_views:
            if view.name not in mapping:
                raise ValueError(
                    f"camera_map has no entry for view '{view.name}' of "
                    f"{self.p['cameras_config']} (entries: {sorted(mapping)})"
                )
            views.append(SimView(view, mapping[view.name]))
        return views

    def _subscribe_commands(self) -> None:
        """The controllers' command topics, as the robot YAML names them."""
        for topic in self.controllers.trackers:
            self.create_subscription(
                JointTrajectory, topic, lambda msg, topic=topic: self._on_trajectory(topic, msg), 10
            )
        if self.controllers.finger_topic:
            self.create_subscription(
                Float64MultiArray, self.controllers.finger_topic, self._on_fingers, 10
            )

    def _make_action_servers(self) -> list:
        """The action servers the robot YAML's interfaces call for (see action_servers)."""
        arm = self.robot.arms[0]
        dof = len(arm.joints)
        defaults = GoalTolerances(
            path=np.full(dof, self.p["trajectory_path_tolerance"]),
            goal=np.full(dof, self.p["trajectory_goal_tolerance"]),
            goal_time=self.p["trajectory_goal_time"],
        )
        access = SimAccess(
            inbox=self.inbox,
            now=lambda: self.sim_time_ns * 1e-9,
            measured=self._measured,
            stopped=self._stop,
        )
        return make_action_servers(
            self,
            arm,
            self.controllers,
            defaults,
            lambda newtons: self.sim.set_finger_force_limit(newtons),
            access,
            ReentrantCallbackGroup(),
        )

    def _make_publishers(self) -> None:
        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.joint_pub = self.create_publisher(JointState, self.robot.joint_states_topic, 10)
        self.success_pub = self.create_publisher(Bool, "~/success", 10)
        self.rtf_pub = self.create_publisher(Float64, "~/real_time_factor", LATCHED)
        # What robot_state_publisher gives a real arm, for RViz's RobotModel and TF displays.
        self.robot_state = RobotStatePublisher(self, self.robot, camera_mounts(self.setup))
        self.camera_pubs = {}
        for bound in self.views:
            view = bound.view
            depth = None
            if self.p["publish_depth"] and view.depth_topic:
                depth = self.create_publisher(Image, view.depth_topic, 2)
            self.camera_pubs[view.name] = (
                self.create_publisher(Image, view.image_topic, 2),
                self.create_publisher(CameraInfo, view.camera_info_topic, 2),
                depth,
            )

    # --- callbacks (executor thread): hand the work to the sim thread ------------------------

    def _on_trajectory(self, topic: str, msg: JointTrajectory) -> None:
        try:
            trajectory = trajectory_from_message(msg)
        except InvalidTrajectoryError as exc:
            self.get_logger().error(f"{topic}: trajectory rejected: {exc}")
            return
        self.inbox.put(lambda: self._accept(topic, trajectory))

    def _on_fingers(self, msg: Float64MultiArray) -> None:
        positions = np.array(msg.data, dtype=np.float64)
        self.inbox.put(lambda: self._command_fingers(positions))

    def _on_reset(self, request, response):
        done = threading.Event()
        outcome: dict = {}
        seed = request.seed if request.seed >= 0 else None

        def reset() -> None:
            try:
                outcome["report"] = self._new_episode(seed)
            except Exception as exc:  # reported to the caller, the sim keeps running
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            done.set()

        self.inbox.put(reset)
        if not done.wait(60.0):
            response.success, response.message = False, "the simulator did not reset in 60 s"
        elif "error" in outcome:
            response.success, response.message = False, outcome["error"]
        else:
            report = outcome["report"]
            response.success, response.message = True, json.dumps(report)
            response.seed, response.episode = report["seed"], report["episode"]
            for name, (x, y, z, qw, qx, qy, qz) in report["objects"].items():
                response.object_names.append(name)
                response.object_poses.append(
                    Pose(
                        position=Point(x=x, y=y, z=z),
                        orientation=Quaternion(w=qw, x=qx, y=qy, z=qz),
                    )
                )
        return response

    # --- the simulation thread ---------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.sim = PandaSimulation(
                self.p["task"],
                self.p["control_rate"],
                [bound.camera for bound in self.views],
                (self.p["image_width"], self.p["image_height"]),
                kp=self.p["kp"],
                damping_ratio=self.p["damping_ratio"],
            )
            self._check_extrinsics()
            self.camera_infos = self._camera_infos()
            self._new_episode()
        except Exception as exc:
            self._startup_error = exc
            self._ready.set()
            return
        self.get_logger().info(
            f"{self.p['task']} on robosuite: control {self.p['control_rate']:g} Hz, cameras "
            f"{self.p['control_rate'] / self.render_every:g} Hz of simulated time at "
            f"{self.p['image_width']}x{self.p['image_height']}, real-time factor cap "
            f"{self.p['real_time_factor']:g}"
        )
        self._ready.set()
        try:
            self._loop()
        except Exception as exc:  # after shutdown publishing fails; anything else is a bug
            if not self._stop.is_set() and self.context.ok():
                self.get_logger().fatal(f"simulation stopped: {type(exc).__name__}: {exc}")
                raise
        finally:
            self._stop.set()  # also tells waiting action goals that nothing will end them
            self.sim.close()

    def _loop(self) -> None:
        pacer = self.pacer
        next_report = time.monotonic() + self.p["report_period"]
        while not self._stop.is_set():
            wait = pacer.delay((self.sim_time_ns + self.period_ns) * 1e-9)
            if wait > 0 and self._stop.wait(wait):
                break
            self._handle_inbox()
            self._step()
            pacer.record(self.sim_time_ns * 1e-9)
            if time.monotonic() >= next_report:
                next_report += self.p["report_period"]
                self._report(pacer)

    def _handle_inbox(self) -> None:
        while True:
            try:
                work = self.inbox.get_nowait()
            except queue.Empty:
                return
            work()

    def _accept(self, topic: str, trajectory: Trajectory) -> None:
        now = self.sim_time_ns * 1e-9
        warning = future_start_warning(topic, trajectory, now)
        if warning:
            self.get_logger().warning(warning, throttle_duration_sec=10.0)
        try:
            self.controllers.accept(topic, trajectory, now)
        except InvalidTrajectoryError as exc:
            self.get_logger().error(f"{topic}: trajectory rejected: {exc}")

    def _command_fingers(self, positions: np.ndarray) -> None:
        try:
            self.controllers.command_fingers(positions)
        except ValueError as exc:
            self.get_logger().error(f"{self.controllers.finger_topic}: command refused: {exc}")

    def _measured(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, velocities and efforts of `joint_names` (arm, then fingers)."""
        sim = self.sim
        return (
            np.concatenate([sim.arm_positions, sim.finger_positions]),
            np.concatenate([sim.arm_velocities, sim.finger_velocities]),
            np.concatenate([sim.arm_efforts, sim.finger_efforts]),
        )

    def _step(self) -> None:
        """One control step: sample the controllers, step the sim, publish what it measures."""
        now = self.sim_time_ns * 1e-9
        positions, velocities, efforts = self._measured()
        targets = self.controllers.targets(now, positions, velocities)
        # Every server sees the step (no short cut); one that ended a goal with a hold changed
        # the commands, which then apply from this step on.
        held = [s.update(now, positions, velocities, efforts) for s in self.action_servers]
        if any(held):
            targets = self.controllers.targets(now, positions, velocities)
        arm_dof = self.controllers.arm_dof
        self.sim.step(targets[:arm_dof], targets[arm_dof:])
        self.sim_time_ns += self.period_ns
        self.steps += 1
        stamp = to_time(self.sim_time_ns)
        self.clock_pub.publish(Clock(clock=stamp))
        self._publish_joint_states(stamp)
        self.success_pub.publish(Bool(data=self.sim.success()))
        if self.steps % self.render_every == 0:
            self._publish_cameras(stamp)

    def _publish_joint_states(self, stamp: Time) -> None:
        positions, velocities, efforts = self._measured()
        msg = JointState(name=self.controllers.joint_names)
        msg.header.stamp = stamp
        msg.position, msg.velocity, msg.effort = (
            positions.tolist(),
            velocities.tolist(),
            efforts.tolist(),
        )
        self.joint_pub.publish(msg)
        self.robot_state.publish_joints(msg.name, msg.position, stamp)

    def _publish_cameras(self, stamp: Time) -> None:
        for bound in self.views:
            view = bound.view
            rgb, depth = self.sim.cameras[bound.camera].render()
            header = Header(stamp=stamp, frame_id=view.optical_frame)
            image_pub, info_pub, depth_pub = self.camera_pubs[view.name]
            image_pub.publish(rgb_to_image(rgb, header))
            info = self.camera_infos[view.name]
            info.header = header
            info_pub.publish(info)
            if depth_pub is not None:
                depth_pub.publish(depth_to_image(depth, header))
        self.frames += 1

    def _new_episode(self, seed: int | None = None) -> dict:
        """Reset the simulator with `seed` (default: the `seed` parameter; -1 or none: a fresh
        seed) and hold still."""
        if seed is None:
            seed = self.get_parameter("seed").value
        if seed < 0:
            seed = int(np.random.SeedSequence().entropy % 2**31)
        for server in self.action_servers:
            server.end_all("the simulator started a new episode")
        self.sim.reset(seed)
        self.episode += 1
        if self.get_parameter("rewind_clock_on_reset").value:  # settable while running
            self.sim_time_ns = 0  # /clock goes back; trajectories of the old time are dropped
        positions = self._measured()[0]
        self.controllers.hold(positions)  # the new episode's pose, until commanded
        self.pacer.restart()  # the reset took wall time that is not to be caught up
        report = {
            "episode": self.episode,
            "seed": seed,
            "task": self.p["task"],
            "sim_time": self.sim_time_ns * 1e-9,
            "objects": self.sim.object_poses(),
            "joint_positions": dict(zip(self.controllers.joint_names, positions.tolist())),
        }
        objects = {name: np.round(pose[:3], 3).tolist() for name, pose in report["objects"].items()}
        self.get_logger().info(f"episode {self.episode}: seed {seed}, objects at {objects}")
        return report

    def _report(self, pacer: RealTimePacer) -> None:
        factor = pacer.achieved
        self.rtf_pub.publish(Float64(data=factor))
        self.get_logger().info(
            f"simulated time {self.sim_time_ns * 1e-9:.1f} s: real-time factor {factor:.2f} "
            f"(cap {self.p['real_time_factor']:g}), {self.steps} steps, {self.frames} camera "
            f"frames, fell behind the cap {pacer.falls_behind} times so far"
        )

    def _camera_infos(self) -> dict:
        infos = {}
        for bound in self.views:
            camera = self.sim.cameras[bound.camera]
            infos[bound.view.name] = intrinsics_to_camera_info(
                camera.intrinsics, camera.width, camera.height, Header()
            )
        return infos

    def _check_extrinsics(self) -> None:
        """Warn where the setup's camera poses differ from the simulator's."""
        bodies = pairs(self.p["frame_map"], "frame_map")
        for bound in self.views:
            extrinsics = bound.view.extrinsics
            parent = extrinsics.parent_frame or self.setup.base_frame
            if parent not in bodies:
                self.get_logger().warning(
                    f"view {bound.view.name}: frame '{parent}' is not in frame_map; its "
                    "extrinsics are not checked"
                )
                continue
            actual = self.sim.cameras[bound.camera].optical_pose_in(bodies[parent])
            metres, degrees = pose_difference(extrinsics.matrix(), actual)
            if metres > EXTRINSICS_TOLERANCE[0] or degrees > EXTRINSICS_TOLERANCE[1]:
                self.get_logger().warning(
                    f"view {bound.view.name}: {self.p['cameras_config']} places it "
                    f"{metres:.3f} m and {degrees:.1f} deg away from the simulator's "
                    f"{bound.camera} (in {parent}: translation "
                    f"{np.round(actual[:3, 3], 4).tolist()}, rotation_wxyz "
                    f"{np.round(quaternion_wxyz(actual[:3, :3]), 5).tolist()})"
                )

    def destroy_node(self):
        """Stop the simulation thread (it closes the simulator) before the node goes."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        super().destroy_node()


def main(args=None) -> int:
    """Run the simulated arm until Ctrl-C; the process exit code."""
    return run_node(SimArm, args, threads=EXECUTOR_THREADS)


if __name__ == "__main__":
    raise SystemExit(main())
