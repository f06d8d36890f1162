"""``sqlsage ask``, ``sqlsage sql`` and ``sqlsage model``."""

from __future__ import annotations

import argparse
import json
import sys

from agent.model_files import ensure_model_file
from agent.service import Assistant, clean_question, open_knowledge_or_none, start_database_index, start_pool
from cli.options import EXIT_FAILED, EXIT_OK, add_common, format_table, settings_from
from core.db import Database, QueryError
from core.guard import UnsafeSQLError
from tools.registry import ToolRegistry


def cmd_ask(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    clean_question(args.question, settings.max_question_chars)  # before any server starts
    if args.no_answer:
        settings = settings.model_copy(update={"techniques": settings.techniques.model_copy(update={"answer": False})})
    # the likeliest mistake first, before the knowledge store opens and the pool starts indexing
    Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes).close()
    knowledge = open_knowledge_or_none(settings)
    indexer = db_index = None
    try:
        tools = ToolRegistry.default(settings.tool_specs)
        with Assistant.open(settings, knowledge=knowledge, tools=tools) as assistant:
            # In the background, the answer does not wait for them: the pool, the database's own index.
            indexer = start_pool(settings, knowledge)
            db_index = start_database_index(knowledge, assistant.deps.db)
            # The schema prompt goes to the local server now (restored from disk when saved before): the
            # question waits for it only while it is being read, which the question would do anyway.
            warmer = assistant.start_warming()
            record = assistant.ask(args.question)
            if warmer is not None:
                print(warmer.line(), file=sys.stderr)
            if db_index is not None:
                db_index.stop()  # before the database closes; the rest comes next time
    finally:
        for job in (db_index, indexer):
            if job is not None:
                job.stop()  # after the batch in hand; what is done stays done, the rest comes next time
                print(job.line(), file=sys.stderr)
        if knowledge is not None:
            knowledge.close()
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
        print(json.dumps({"sql": args.sql, "columns": result.columns, "rows": result.json_rows(),
                          "truncated": result.truncated}))
    else:
        print(format_table(result.columns, result.rows))
    return EXIT_OK


def cmd_model(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    print(ensure_model_file(settings.local_model, settings.cache_dir))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ask = sub.add_parser("ask", help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--no-answer", action="store_true", help="skip the written answer (one model call less)")
    add_common(ask)
    ask.set_defaults(func=cmd_ask)

    sql = sub.add_parser("sql", help="run SQL through the read-only guard")
    sql.add_argument("sql")
    sql.add_argument("--json", action="store_true")
    add_common(sql)
    sql.set_defaults(func=cmd_sql)

    model = sub.add_parser("model", help="assemble and verify the local model file; print its path")
    add_common(model)
    model.set_defaults(func=cmd_model)
