"""The ``sqlsage`` command line: every command module registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import agent_commands, eval_commands, knowledge_commands, ui_commands
from cli.options import EXIT_FAILED
from core.errors import SqlsageError

# In the order ``sqlsage --help`` lists them.
COMMANDS = (agent_commands, ui_commands, knowledge_commands, eval_commands)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqlsage", description="Ask a SQL database questions in plain English.")
    sub = parser.add_subparsers(dest="command", required=True)
    for commands in COMMANDS:
        commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except SqlsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
