"""`xwam dataset build`: the command line of the dataset builder.

xwam dataset build BAG_OR_FOLDER... -o OUTPUT [--robot R] [--cameras C] [--model M]
    [--action-source commanded|measured] [--image-tolerance S] [--joint-max-gap S]
    [--clip-stride N] [--val-fraction F] [--include-partial] [--success-only] [--overwrite]

Heavy imports happen when the command runs, so that `xwam --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from xwam_ros.dataset.options import BuildOptions

_DEFAULTS = BuildOptions()


def add_dataset_parser(sub: argparse._SubParsersAction) -> None:
    """Add `dataset build` to the `xwam` command's subcommands."""
    dataset = sub.add_parser("dataset", help="episode bags -> training data")
    commands = dataset.add_subparsers(dest="dataset_command", required=True)
    build = commands.add_parser(
        "build",
        help="convert episode bags into a training dataset",
        description="Convert recorded episode bags into clips at the model's resolution, "
        "frame rate and action space; bad or partial bags are reported and skipped.",
    )
    build.add_argument("bags", nargs="+", help="bag folders, or folders holding bag folders")
    build.add_argument("-o", "--output", required=True, help="dataset folder to write")
    build.add_argument(
        "--robot", default="panda", help="robot configuration (name in config/robots/ or path)"
    )
    build.add_argument(
        "--cameras", default="sim_panda", help="camera setup (name in config/cameras/ or path)"
    )
    build.add_argument(
        "--model",
        default="small",
        help="model configuration the data is for (name in config/model/ or "
        "path): views, resolution, clip length, actions per frame",
    )
    build.add_argument(
        "--action-source",
        choices=("commanded", "measured"),
        default=_DEFAULTS.action_source,
        help="actions from the recorded commands or the measured joints",
    )
    build.add_argument(
        "--image-tolerance",
        type=float,
        default=_DEFAULTS.image_tolerance,
        help="largest |image stamp - frame time| in seconds (default %(default)s)",
    )
    build.add_argument(
        "--joint-max-gap",
        type=float,
        default=_DEFAULTS.joint_max_gap,
        help="largest spacing of joint states to interpolate across, seconds (default %(default)s)",
    )
    build.add_argument(
        "--clip-stride",
        type=int,
        default=_DEFAULTS.clip_stride,
        help="frames between clip starts (default %(default)s)",
    )
    build.add_argument(
        "--val-fraction",
        type=float,
        default=_DEFAULTS.val_fraction,
        help="share of episodes (the last recorded) for validation (default %(default)s)",
    )
    build.add_argument(
        "--include-partial",
        action="store_true",
        help="also convert bags whose recording was cut short",
    )
    build.add_argument(
        "--success-only", action="store_true", help="only convert episodes marked successful"
    )
    build.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset at the output folder"
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(func=cmd_dataset_build)


def cmd_dataset_build(args: argparse.Namespace) -> int:
    """Run `xwam dataset build`."""
    from xwam_ros.config import load
    from xwam_ros.config.cameras import CameraSetup
    from xwam_ros.config.model import load_model_config
    from xwam_ros.config.robot import load_robot_config
    from xwam_ros.dataset.builder import DatasetBuildError, build_dataset
    from xwam_ros.dataset.spec import SpecError, dataset_spec
    from xwam_ros.graph.description import resolve_config

    try:
        options = BuildOptions(
            action_source=args.action_source,
            image_tolerance=args.image_tolerance,
            joint_max_gap=args.joint_max_gap,
            clip_stride=args.clip_stride,
            val_fraction=args.val_fraction,
            include_partial=args.include_partial,
            success_only=args.success_only,
        )
        robot_path = resolve_config("robot", args.robot)
        robot = load_robot_config(robot_path)
        cameras = load(CameraSetup, resolve_config("cameras", args.cameras))
        model = load_model_config(resolve_config("model", args.model))
        spec, views = dataset_spec(model, robot, cameras, options, robot_name=robot_path.stem)
        print(
            f"xwam dataset build: {len(spec.view_names)} views {list(spec.view_names)} at "
            f"{spec.width}x{spec.height}, clips of {spec.frames_per_clip} frames every "
            f"{spec.frame_period:g} s with {spec.actions_per_clip} {spec.action_space} actions "
            f"({spec.action_source})"
        )
        report = build_dataset(
            args.bags,
            args.output,
            spec,
            views,
            robot,
            options,
            overwrite=args.overwrite,
            progress=not args.quiet,
        )
    except (SpecError, DatasetBuildError, ValueError) as exc:
        print(f"xwam dataset build: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    print(f"xwam dataset build: wrote {args.output}")
    return 0
