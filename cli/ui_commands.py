"""``sqlsage ui``: the chat UI."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.llm import EndpointStarter
from cli.options import EXIT_OK, add_common, settings_from
from core.db import Database, mask_url
from ui.app import launch
from ui.auth import collect_auth


def cmd_ui(args: argparse.Namespace) -> int:
    # a bad login spec stops here, before the model starts
    auth = collect_auth(args.auth, Path(args.auth_file) if args.auth_file else None)
    settings = settings_from(args).with_overrides(host=args.host, port=args.port)
    print(f"Opening {mask_url(settings.db_url)} and starting the model…", flush=True)
    # the likeliest mistake, first
    Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes).close()
    # The model server loads (seconds) while gradio imports and the knowledge store opens (in ``launch``).
    launch(settings, EndpointStarter(settings), auth=auth)
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ui = sub.add_parser("ui", help="start the chat UI")
    ui.add_argument("--host", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, help="port (default 7860)")
    ui.add_argument("--auth", action="append", metavar="USER:PASS",
                    help="require this login (repeatable); each user sees only their own conversations")
    ui.add_argument("--auth-file", metavar="PATH", help="logins, one user:password a line")
    add_common(ui)
    ui.set_defaults(func=cmd_ui)
