"""The data flywheel on the simulated arm, every process real: record two short episodes with
the recorder node while this test drives the sim, build the dataset with `xwam dataset build`,
fine-tune the tiny preset with `python -m xwam_model.training` (the loss falls), and load the
result in the model node, which publishes an action chunk from the sim's cameras."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Duration
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from xwam_testing.ros import Peer, RosTestContext

from xwam_msgs.msg import ActionChunk
from xwam_msgs.srv import StartEpisode, StopEpisode
from xwam_ros.config.robot import load_robot_config
from xwam_ros.paths import config_dir

pytestmark = pytest.mark.ros

ROBOT = load_robot_config(config_dir() / "robots" / "panda.yaml")
ARM = ROBOT.arms[0]
SIM_SETUP = yaml.safe_load((config_dir() / "cameras" / "sim_panda.yaml").read_text())
VIEWS = ["agentview", "wrist"]  # the tiny preset takes two views
EPISODE_SECONDS = 2.5


def write_configs(folder):
    """A two-view camera setup of the sim, a recorder and a tiny model at 32x32, a training."""
    setup = dict(
        SIM_SETUP,
        description="sim: agentview + wrist",
        views=[
            dict(v, slot=i)
            for i, v in enumerate(v for v in SIM_SETUP["views"] if v["name"] in VIEWS)
        ],
    )
    (folder / "cameras.yaml").write_text(yaml.safe_dump(setup))
    (folder / "recorder.yaml").write_text(
        yaml.safe_dump(
            {
                "description": "end-to-end test",
                "output_dir": str(folder / "bags"),
                "split_period": 1.0,
                "discovery_period": 0.2,
            }
        )
    )
    (folder / "model.yaml").write_text(
        yaml.safe_dump(
            {
                "description": "tiny at 32x32",
                "preset": "tiny",
                "policy": {
                    "height": 32,
                    "width": 32,
                    "view_names": VIEWS,
                    "latent_frames": 3,
                    "video_steps": 4,
                    "action_steps": 2,
                    "depth_ranges": [{"near": 0.05, "far": 2.5}],
                },
            }
        )
    )
    (folder / "training.yaml").write_text(
        yaml.safe_dump(
            {
                "dataset": str(folder / "dataset"),
                "output_dir": str(folder / "run"),
                "preset": "tiny",
                "steps": 30,
                "batch_size": 2,
                "lr": 2e-3,
                "warmup_steps": 2,
                "num_workers": 0,
                "log_every": 10,
                "val_every": 30,
                "val_clips": 2,
                "checkpoint_every": 1000,
                "policy": {"video_steps": 4, "action_steps": 2},
            }
        )
    )


class Driver:
    """Drives the sim's arm (small sinusoidal joint motion) and calls the recorder."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.node = ctx.node("flywheel_driver")
        self.joints: JointState | None = None
        self.node.create_subscription(
            JointState, "/joint_states", self._on_joints, qos_profile_sensor_data
        )
        self.arm = self.node.create_publisher(JointTrajectory, ARM.trajectory_topic, 10)
        self.start = self.node.create_client(StartEpisode, "/xwam_recorder/start_episode")
        self.stop = self.node.create_client(StopEpisode, "/xwam_recorder/stop_episode")
        self.home = None
        self.sent = 0

    def _on_joints(self, msg):
        self.joints = msg
        if self.home is None:
            self.home = np.array(msg.position[:7])

    def send(self):
        """A trajectory from now: eight points 0.1 s apart along a slow sinusoid."""
        self.sent += 1
        msg = JointTrajectory(joint_names=ARM.joint_names)
        for k in range(1, 9):
            phase = 0.4 * self.sent + 0.1 * k
            offset = 0.15 * np.sin(phase) * np.array([1, 0.5, -1, 0.6, 1, -0.5, 1])
            point = JointTrajectoryPoint(positions=(self.home + offset).tolist())
            point.time_from_start = Duration(sec=0, nanosec=100_000_000 * k)
            msg.points.append(point)
        self.arm.publish(msg)

    def call(self, client, request):
        assert client.wait_for_service(timeout_sec=60.0), f"{client.srv_name} is not up"
        future = client.call_async(request)
        assert self.ctx.spin_until(future.done, 30.0)
        return future.result()

    def episode(self, instruction: str, tags: list[str]) -> str:
        started = self.call(self.start, StartEpisode.Request(instruction=instruction, tags=tags))
        assert started.success, started.message
        end = time.monotonic() + EPISODE_SECONDS
        while time.monotonic() < end:
            self.send()
            self.ctx.spin_for(0.4)
        stopped = self.call(self.stop, StopEpisode.Request(success_flag=True, notes="test"))
        assert stopped.success and stopped.message_count > 0, stopped.message
        return stopped.bag_path


def ros_args(**parameters) -> list[str]:
    """`--ros-args -p name:=value ...` for a node process."""
    args = ["--ros-args"]
    for name, value in parameters.items():
        args += ["-p", f"{name}:={value}"]
    return args


def run(*command, timeout=240):
    result = subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def test_record_build_train_and_deploy(tmp_path):
    write_configs(tmp_path)
    robot = str(config_dir() / "robots" / "panda.yaml")
    cameras = str(tmp_path / "cameras.yaml")
    sim = Peer(
        *ros_args(cameras_config=cameras, image_width=64, image_height=48, seed=5),
        module="xwam_ros.nodes.sim_arm",
    )
    recorder = Peer(
        *ros_args(
            recorder_config=tmp_path / "recorder.yaml",
            robot_config=robot,
            cameras_config=cameras,
            use_sim_time="true",
        ),
        module="xwam_ros.nodes.recorder",
    )
    model_node = None
    try:
        with RosTestContext() as ctx:
            driver = Driver(ctx)
            assert ctx.spin_until(lambda: driver.joints is not None, 120.0), "no sim"
            ctx.spin_for(1.0)  # the recorder discovers the sim's topics
            bags = [driver.episode("lift the cube", ["sim", f"take {i}"]) for i in range(2)]

            # Bags -> dataset (the CLI), both episodes converted.
            options = (
                f"--robot {robot} --cameras {cameras} --model {tmp_path / 'model.yaml'} "
                f"-o {tmp_path / 'dataset'} --val-fraction 0 --quiet"
            )
            report = run("-m", "xwam_ros.cli", "dataset", "build", *bags, *options.split())
            print(report)
            assert "2 episodes converted, 0 skipped" in report, report
            index = json.loads((tmp_path / "dataset" / "dataset.json").read_text())
            assert index["clips"]["train"] >= 10, index["clips"]

            # Dataset -> fine-tuned tiny checkpoint (ROS-free entry point).
            run("-m", "xwam_model.training", "--config", str(tmp_path / "training.yaml"), "--quiet")
            log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").open()]
            losses = [r["loss"] for r in log if "loss" in r]
            print("training losses", losses)
            assert len(losses) == 3 and losses[-1] < losses[0], losses

            # The checkpoint in the model node, on the sim's cameras.
            model_node = Peer(
                *ros_args(
                    robot_config=robot,
                    cameras_config=cameras,
                    model_config=tmp_path / "run" / "model.yaml",
                    decode_period=0.5,
                    use_sim_time="true",
                ),
                module="xwam_ros.nodes.model_node",
            )
            chunks = []
            driver.node.create_subscription(
                ActionChunk, "/xwam_model/action_chunk", chunks.append, 10
            )
            assert ctx.spin_until(lambda: chunks, 120.0), "the model node sent no chunk"
            chunk = chunks[0]
            assert chunk.model_id == str(tmp_path / "run" / "final")
            assert (chunk.action_space, chunk.num_steps, chunk.action_dim) == ("ee_delta", 16, 7)
            assert np.isfinite(np.asarray(chunk.actions)).all()
    finally:
        outputs = {}
        for name, peer in (("model_node", model_node), ("recorder", recorder), ("sim", sim)):
            if peer is not None:
                outputs[name] = peer.stop()
        for name, (code, output) in outputs.items():
            print(f"--- {name} (exit {code})\n{output[-3000:]}")
    assert outputs["recorder"][0] == 0, "the recorder did not shut down cleanly"
