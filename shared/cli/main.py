"""The `vbg` console script: the command table and the last line of error handling.

Each subcommand is a module of `shared/cli/` with a `register(subparsers)` that adds its
parser and sets `func` (taking the parsed args, returning an exit code); add a command by
writing one and listing it in `COMMANDS`.
"""

import argparse
import sys

from shared.cli import budget, cost, jobs, keys, prices, reconcile, run, spend
from shared.cli.errors import EXIT_FAILURE, EXIT_USAGE, CliError

COMMANDS = [run, jobs, spend, budget, cost, prices, keys, reconcile]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vbg", description="Vertex Batch Gateway tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except CliError as exc:
        print(f"vbg {args.command}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of a CLI: say what, not where
        print(f"vbg {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
