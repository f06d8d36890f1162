"""The ``sqlsage`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from agent.config import LOCAL_MODELS, Settings
from agent.errors import SqlsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("database and model (also SQLSAGE_* environment variables)")
    g.add_argument("--db", dest="db_url", help="SQLAlchemy URL of the database (default: bundled Chinook)")
    g.add_argument("--base-url", help="OpenAI-compatible endpoint; without it the local model is started")
    g.add_argument("--model", help="model name at the endpoint")
    g.add_argument("--api-key", help="API key for the endpoint (prefer SQLSAGE_API_KEY)")
    g.add_argument("--local-model", choices=LOCAL_MODELS, help="which embedded model to serve")
    g.add_argument("--threads", type=int, help="threads for the local model (default: usable cores)")
    g.add_argument("--tools", dest="tool_specs", action="append", metavar="MODULE:FUNCTION",
                   help="a tool of your own for the agent (repeatable); installed plugins load by themselves")


def settings_from(args: argparse.Namespace) -> Settings:
    keys = ("db_url", "base_url", "model", "local_model", "threads", "tool_specs")
    overrides = {k: getattr(args, k, None) for k in keys}
    if getattr(args, "api_key", None):
        from pydantic import SecretStr

        overrides["api_key"] = SecretStr(args.api_key)
    return Settings().with_overrides(**overrides)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], limit: int = 50) -> str:
    if not columns:
        return "(no columns)"
    shown = [["NULL" if v is None else str(v) for v in r] for r in rows[:limit]]
    widths = [min(40, max([len(c)] + [len(r[i]) for r in shown])) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(c[:w].ljust(w) for c, w in zip(cells, widths, strict=False)).rstrip()

    out = [line(columns), "-+-".join("-" * w for w in widths), *(line(r) for r in shown)]
    if len(rows) > limit:
        out.append(f"... {len(rows) - limit} more row(s)")
    return "\n".join(out)


def cmd_ask(args: argparse.Namespace) -> int:
    from agent.service import Assistant, clean_question

    settings = settings_from(args)
    clean_question(args.question, settings.max_question_chars)  # before any server starts
    if args.no_answer:
        settings = settings.model_copy(update={"techniques": settings.techniques.model_copy(update={"answer": False})})
    from tools.registry import ToolRegistry

    with Assistant.open(settings, tools=ToolRegistry.default(settings.tool_specs)) as assistant:
        record = assistant.ask(args.question)
    if args.json:
        print(json.dumps(record.to_dict(), ensure_ascii=False, default=str))
    else:
        if record.sql:
            print(f"SQL:\n{record.sql}\n")
        if record.ok:
            print(format_table(record.columns, record.rows))
            print(f"\n{record.answer}")
        else:
            print(f"error: {record.error}", file=sys.stderr)
    return EXIT_OK if record.ok else EXIT_FAILED


def cmd_sql(args: argparse.Namespace) -> int:
    from agent.db import Database, QueryError, jsonable
    from agent.guard import UnsafeSQLError

    settings = settings_from(args)
    db = Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes)
    try:
        result = db.run(args.sql)
    except UnsafeSQLError as err:
        print(f"refused: {err.reason}", file=sys.stderr)
        return EXIT_FAILED
    except QueryError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        db.close()
    if args.json:
        rows = [[jsonable(v) for v in r] for r in result.rows]
        print(json.dumps({"sql": args.sql, "columns": result.columns, "rows": rows, "truncated": result.truncated}))
    else:
        print(format_table(result.columns, result.rows))
    return EXIT_OK


def cmd_ui(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.db import Database, mask_url
    from agent.llm import EndpointStarter
    from ui.auth import collect_auth

    # a bad login spec stops here, before the model starts
    auth = collect_auth(args.auth, Path(args.auth_file) if args.auth_file else None)
    settings = settings_from(args).with_overrides(host=args.host, port=args.port)
    print(f"Opening {mask_url(settings.db_url)} and starting the model…", flush=True)
    # the likeliest mistake, first
    Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes).close()
    # The model server loads (seconds) while the UI's libraries import and the knowledge store opens.
    starting = EndpointStarter(settings)
    try:
        from ui.app import launch
    except BaseException:
        starting.close()
        raise
    launch(settings, starting, auth=auth)
    return EXIT_OK


def cmd_model(args: argparse.Namespace) -> int:
    from agent.model_files import ensure_model_file

    settings = settings_from(args)
    print(ensure_model_file(settings.local_model, settings.cache_dir))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqlsage", description="Ask a SQL database questions in plain English.")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--no-answer", action="store_true", help="skip the written answer (one model call less)")
    _common(ask)
    ask.set_defaults(func=cmd_ask)

    sql = sub.add_parser("sql", help="run SQL through the read-only guard")
    sql.add_argument("sql")
    sql.add_argument("--json", action="store_true")
    _common(sql)
    sql.set_defaults(func=cmd_sql)

    ui = sub.add_parser("ui", help="start the chat UI")
    ui.add_argument("--host", help="address to bind (default 127.0.0.1)")
    ui.add_argument("--port", type=int, help="port (default 7860)")
    ui.add_argument("--auth", action="append", metavar="USER:PASS",
                    help="require this login (repeatable); each user sees only their own conversations")
    ui.add_argument("--auth-file", metavar="PATH", help="logins, one user:password a line")
    _common(ui)
    ui.set_defaults(func=cmd_ui)

    model = sub.add_parser("model", help="assemble and verify the local model file; print its path")
    _common(model)
    model.set_defaults(func=cmd_model)

    from evals.cli import add_commands as add_eval_commands
    from knowledge.cli import add_commands as add_knowledge_commands

    add_knowledge_commands(sub)
    add_eval_commands(sub)
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
