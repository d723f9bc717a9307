"""The `xwam` command: one entry point for launching, inspecting and (later) training.

xwam launch <graph> [--robot R] [--cameras C] [--model M] [--duration S] [--allow-missing]
            [--autostart | --no-autostart] [--use-sim-time | --no-use-sim-time] [--namespace NS]
xwam demo [--chunks N] [--output DIR] [--view]   the closed loop on the simulated arm
xwam view [graph] [--bag PATH]   the policy loop and its imagined future, live in a browser
xwam graph <graph>            print the nodes, parameters and remappings of a graph
xwam dataset build BAGS -o D  episode bags -> training dataset (xwam_ros.dataset)
xwam train --dataset D --output O   fine-tune (xwam_model.training; torchrun for more GPUs)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xwam_ros.config import ConfigError
from xwam_ros.graph import GraphDescription, describe_graph
from xwam_ros.graph.description import LaunchOptions
from xwam_ros.graph.process_launcher import ProcessLauncher
from xwam_ros.viewer.cli import add_view_flags, add_view_parser, view_options
from xwam_ros.viewer.ports import ViewerError


def _add_graph_choices(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--robot", help="robot configuration (name in config/robots/ or path)")
    parser.add_argument("--cameras", help="camera setup (name in config/cameras/ or path)")
    parser.add_argument("--model", help="model configuration (name in config/model/ or path)")


def _add_launch_options(parser: argparse.ArgumentParser) -> None:
    """The launch files' arguments beyond the configurations (`LaunchOptions`)."""
    parser.add_argument(
        "--autostart",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the executor runs as soon as the controllers are there (--autostart) or waits, "
        "paused, for ~/start (--no-autostart); default: the graph's (real arm: paused)",
    )
    parser.add_argument(
        "--use-sim-time",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every node but the sim on /clock time, or not; default: the graph's",
    )
    parser.add_argument("--namespace", default="", help="namespace of every node (e.g. /left)")


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    return {k: getattr(args, k) for k in ("robot", "cameras", "model") if getattr(args, k)}


def _options(args: argparse.Namespace) -> LaunchOptions:
    return LaunchOptions(
        autostart=args.autostart, use_sim_time=args.use_sim_time, namespace=args.namespace
    )


def _launch(graph: GraphDescription, duration: float | None, allow_missing: bool) -> int:
    if graph.missing_nodes and not allow_missing:
        missing = ", ".join(f"'{n.name}' ({n.planned_in})" for n in graph.missing_nodes)
        print(
            f"xwam launch: graph '{graph.name}' needs nodes that are not written yet: "
            f"{missing}. Pass --allow-missing to start the others.",
            file=sys.stderr,
        )
        return 2
    if not graph.available_nodes:
        print(f"xwam launch: no node of graph '{graph.name}' can start yet", file=sys.stderr)
        return 2
    return ProcessLauncher(graph, duration=duration).run()


def cmd_launch(args: argparse.Namespace) -> int:
    graph = describe_graph(args.graph, _overrides(args), _options(args))
    return _launch(graph, args.duration, args.allow_missing)


def cmd_demo(args: argparse.Namespace) -> int:
    from xwam_ros.demo.runner import run_demo

    return run_demo(
        chunks=args.chunks,
        timeout=args.timeout,
        output=Path(args.output),
        overrides=_overrides(args),
        view=view_options(args),
    )


def cmd_graph(args: argparse.Namespace) -> int:
    graph = describe_graph(args.graph, _overrides(args), _options(args))
    print(f"graph '{graph.name}' ({graph.source}): {graph.description}")
    for node in graph.nodes:
        state = "" if node.available else f"  [not written yet: {node.planned_in}]"
        print(
            f"- {node.namespace}/{node.name}: {node.executable} ({node.module})"
            f"{'' if node.required else ', optional'}{state}"
        )
        for key, value in node.parameters.items():
            print(f"    {key}: {value!r}")
        for source, target in node.remappings:
            print(f"    remap {source} -> {target}")
    return 0


def cmd_rviz(args: argparse.Namespace) -> int:
    from xwam_ros.config import load
    from xwam_ros.config.cameras import CameraSetup
    from xwam_ros.graph.description import resolve_config
    from xwam_ros.rviz_config import rviz_text

    path = resolve_config("cameras", args.cameras)
    text = rviz_text(load(CameraSetup, path), f"config/cameras/{path.name}")
    if args.output:
        Path(args.output).write_text(text)
        print(f"xwam rviz: wrote {args.output}")
    else:
        print(text, end="")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from xwam_ros.expert.collect import run_collection

    return run_collection(
        episodes=args.episodes,
        seed=args.seed,
        output=Path(args.output),
        task=args.task,
        instruction=args.instruction,
    )


def cmd_eval(args: argparse.Namespace) -> int:
    from xwam_ros.evaluation.runner import run_evaluation

    return run_evaluation(
        model=args.model,
        episodes=args.episodes,
        seed=args.seed,
        max_chunks=args.max_chunks,
        output=Path(args.output),
        episode_timeout=args.episode_timeout,
        baseline=Path(args.baseline) if args.baseline else None,
        view=view_options(args),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xwam", description="X-WAM on ROS 2 robot arms")
    sub = parser.add_subparsers(dest="command", required=True)

    launch = sub.add_parser("launch", help="start a node graph as processes (no ros2 needed)")
    launch.add_argument("graph", help="a name in config/graphs/ or a path to a graph YAML")
    _add_graph_choices(launch)
    _add_launch_options(launch)
    launch.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop the graph after this many seconds (default: run until Ctrl-C)",
    )
    launch.add_argument(
        "--allow-missing",
        action="store_true",
        help="start the nodes that exist when some are not written yet",
    )
    launch.set_defaults(func=cmd_launch)

    demo = sub.add_parser("demo", help="the closed loop on the simulated arm (make demo)")
    _add_graph_choices(demo)
    demo.add_argument("--chunks", type=int, default=8, help="action chunks to run")
    demo.add_argument("--timeout", type=float, default=600.0, help="wall seconds at most")
    demo.add_argument("--output", default="runs/demo", help="folder of the report and reel")
    add_view_flags(demo)
    demo.set_defaults(func=cmd_demo)

    graph = sub.add_parser("graph", help="print a graph's nodes, parameters and remappings")
    graph.add_argument("graph", help="a name in config/graphs/ or a path to a graph YAML")
    _add_graph_choices(graph)
    _add_launch_options(graph)
    graph.set_defaults(func=cmd_graph)

    rviz = sub.add_parser("rviz", help="write the RViz configuration for a camera setup")
    rviz.add_argument("cameras", help="camera setup: a name in config/cameras/ or a path")
    rviz.add_argument("-o", "--output", help="file to write (default: standard output)")
    rviz.set_defaults(func=cmd_rviz)

    collect = sub.add_parser(
        "collect", help="record scripted expert episodes on the simulated arm (bags)"
    )
    collect.add_argument("--episodes", type=int, default=20, help="episodes to record")
    collect.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    collect.add_argument("--task", default="Lift", help="simulated task: Lift or Stack")
    collect.add_argument(
        "--instruction",
        default="",
        help="instruction stored with each episode (default: the task's)",
    )
    collect.add_argument("--output", default="runs/collect", help="folder of the bags and list")
    collect.set_defaults(func=cmd_collect)

    evaluate = sub.add_parser(
        "eval", help="closed-loop evaluation in the sim: success rate, latency, 4D quality"
    )
    evaluate.add_argument(
        "--model", default="sim_panda_lift", help="model configuration (name or path)"
    )
    evaluate.add_argument("--episodes", type=int, default=20, help="episodes to run")
    evaluate.add_argument(
        "--seed", type=int, default=1000, help="seed of the first episode (held out from 0..999)"
    )
    evaluate.add_argument("--max-chunks", type=int, default=10, help="chunks per episode at most")
    evaluate.add_argument(
        "--episode-timeout", type=float, default=180.0, help="wall seconds per episode at most"
    )
    evaluate.add_argument("--baseline", help="another evaluation's eval.json to compare with")
    evaluate.add_argument("--output", default="runs/eval", help="folder of eval.json / eval.png")
    add_view_flags(evaluate)
    evaluate.set_defaults(func=cmd_eval)

    add_view_parser(sub)

    from xwam_ros.dataset.cli import add_dataset_parser

    add_dataset_parser(sub)
    # `xwam train` has its own parser in xwam_model (ROS-free; torch loads only when used).
    sub.add_parser("train", help="fine-tune X-WAM on a dataset (torchrun for more GPUs)")
    sub.add_parser("train-vae", help="train the small video VAE on a dataset's views (CPU models)")
    sub.add_parser("convert-release", help="write a released X-WAM experiment as a project folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        from xwam_model.training.cli import main as train_main

        return train_main(argv[1:], prog="xwam train")
    if argv[:1] == ["train-vae"]:
        from xwam_model.training.autoencoder import main as vae_main

        return vae_main(argv[1:], prog="xwam train-vae")
    if argv[:1] == ["convert-release"]:
        from xwam_model.release.cli import main as convert_main

        return convert_main(argv[1:], prog="xwam convert-release")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"xwam: configuration refused: {exc}", file=sys.stderr)
        return 2
    except ViewerError as exc:
        print(f"xwam: the viewer did not start: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
