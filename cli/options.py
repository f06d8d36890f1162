"""What every command shares: the database and model options, the Settings they make, a text table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from pydantic import SecretStr

from core.config import LOCAL_MODELS, Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_common(parser: argparse.ArgumentParser) -> None:
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
