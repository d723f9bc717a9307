"""`python -m xwam_ros.viewer [graph] ...`: `xwam view` (the process that `--view` starts)."""

import argparse
import sys

from xwam_ros.config import ConfigError
from xwam_ros.viewer.cli import add_view_parser


def main(argv: list[str] | None = None) -> int:
    """Parse `xwam view`'s arguments and run it; the exit code."""
    parser = argparse.ArgumentParser(prog="xwam view")
    add_view_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["view", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"xwam view: configuration refused: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
