"""`xwam collect`: record scripted demonstrations on the simulated arm, one bag per episode.

For each episode (seeds `seed`, `seed + 1`, ...): reset the sim from the seed (the objects'
placement and the arm's start follow from it), start the recorder, plan from the cube's pose
the reset returned, send the plan in chunks, stop the recorder with the sim's success. The
bags go to `<output>/bags`; `<output>/collect.json` lists every episode (seed, cube pose,
success, bag) and the totals; the graph's output is in `<output>/launch.log`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from xwam_ros.config.robot import load_robot_config
from xwam_ros.executor.kinematics import RobotKinematics
from xwam_ros.expert.driver import ExpertDriver
from xwam_ros.expert.lift_plan import LiftTiming, PlanningError, plan_lift
from xwam_ros.graph import describe_graph
from xwam_ros.graph.session import GraphStoppedError, running_graph, spinning
from xwam_ros.paths import config_dir

COLLECT_GRAPH = "collect"
TASKS = ("Lift",)
CHUNK_STEPS = 16  # 0.8 s at 20 Hz; half a model chunk
OVERLAP_STEPS = 8
LEAD_S = 0.3


def say(message: str) -> None:
    print(f"[xwam collect] {message}", flush=True)


def _recorder_config(output: Path) -> Path:
    """The default recorder settings writing into `<output>/bags`."""
    settings = yaml.safe_load((config_dir() / "recorder" / "default.yaml").read_text())
    settings.update(
        description="xwam collect: scripted expert episodes",
        output_dir=str((output / "bags").resolve()),
        bag_prefix="expert",
        action_chunks=False,
        model_status=False,
    )
    path = output / "recorder.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def run_collection(
    *,
    episodes: int,
    seed: int,
    output: Path,
    task: str = "Lift",
    instruction: str = "lift the red cube",
    timing: LiftTiming | None = None,
) -> int:
    """Collect `episodes` expert episodes; 0 when every episode was recorded."""
    if task not in TASKS:
        say(f"no scripted expert for task {task}; there is one for {', '.join(TASKS)}")
        return 2
    output.mkdir(parents=True, exist_ok=True)
    graph = describe_graph(COLLECT_GRAPH)
    graph = graph.with_parameters("sim_arm", task=task, seed=seed)
    graph = graph.with_parameters("xwam_recorder", recorder_config=str(_recorder_config(output)))
    robot = load_robot_config(graph.node("sim_arm").parameters["robot_config"])
    if robot.arms[0].gripper.interface != "joint_trajectory" or len(robot.arms) != 1:
        say(f"the expert drives one arm with a joint_trajectory gripper; {robot.name} is not one")
        return 2
    kinematics = RobotKinematics(robot)
    timing = timing or LiftTiming()
    say(f"{episodes} {task} episodes from seed {seed} into {output / 'bags'}")
    rows: list[dict] = []
    started = time.monotonic()
    with running_graph(graph, output / "launch.log") as session:
        driver = ExpertDriver(robot, alive=lambda: session.alive)
        with spinning(driver):
            try:
                for index in range(episodes):
                    rows.append(
                        _episode(driver, kinematics, seed + index, task, instruction, timing)
                    )
                    done = sum(r["success"] for r in rows)
                    say(
                        f"episode {index + 1}/{episodes}: seed {seed + index}, "
                        f"{'success' if rows[-1]['success'] else 'failure'}"
                        f"{' (' + rows[-1]['error'] + ')' if rows[-1].get('error') else ''}; "
                        f"{done}/{len(rows)} successful, {time.monotonic() - started:.0f} s"
                    )
            except GraphStoppedError as exc:
                say(f"stopped: {exc} (see {output / 'launch.log'})")
            except KeyboardInterrupt:
                say("interrupted (Ctrl-C)")
    summary = {
        "task": task,
        "instruction": instruction,
        "episodes": len(rows),
        "successes": sum(r["success"] for r in rows),
        "wall_time_s": round(time.monotonic() - started, 1),
        "timing": asdict(timing),
        "bags": str((output / "bags").resolve()),
        "rows": rows,
    }
    (output / "collect.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(
        f"{summary['successes']}/{summary['episodes']} successful episodes recorded in "
        f"{summary['wall_time_s']:.0f} s; list in {output / 'collect.json'}"
    )
    return 0 if len(rows) == episodes else 1


def _episode(driver, kinematics, seed: int, task: str, instruction: str, timing) -> dict:
    reset = driver.reset(seed)
    names = list(reset.object_names)
    pose = reset.object_poses[0]
    cube = [
        pose.position.x,
        pose.position.y,
        pose.position.z,
        pose.orientation.w,
        pose.orientation.x,
        pose.orientation.y,
        pose.orientation.z,
    ]
    q_start = driver.arm_positions(after_ns=driver.now_ns())
    row = {"seed": seed, "object": names[0], "object_pose": [round(v, 5) for v in cube]}
    timing = timing.jittered(np.random.default_rng(seed))
    try:
        plan = plan_lift(kinematics.arms[0], q_start, cube, driver.robot.control_period, timing)
    except PlanningError as exc:
        return {**row, "success": False, "error": f"not planned: {exc}", "bag": ""}
    bag = driver.start_recording(instruction, ["sim", task, "scripted_expert", f"seed={seed}"])
    driver.execute(plan, CHUNK_STEPS, OVERLAP_STEPS, LEAD_S)
    success = driver.succeeded()
    notes = json.dumps({"seed": seed, "expert": "lift_plan", "object_pose": row["object_pose"]})
    driver.stop_recording(success, notes)
    return {**row, "success": success, "bag": bag, "duration_s": round(plan.duration, 2)}
