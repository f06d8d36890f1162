"""``sqlsage knowledge add|list|remove|rebuild|import-spider|import-pool|pool list|disable|enable``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from agent.service import open_knowledge
from cli.options import add_common, settings_from
from core.config import Settings
from core.db import Database, db_key
from core.errors import UserInputError
from evals.dataset import heldout_db_ids
from knowledge.docs import description_items, markdown_chunks
from knowledge.examples import read_spider
from knowledge.indexing import index_database, mark_indexed
from knowledge.pool import bundled_pool_path, index_pool, is_current, pool_status, set_pool_enabled
from knowledge.retrieval import Retriever
from knowledge.store import KINDS


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser("knowledge", help="manage the knowledge store (examples, docs, schema, values)")
    actions = parser.add_subparsers(dest="action", required=True)

    add = actions.add_parser("add", help="add an example (question + SQL), a Markdown doc or a descriptions YAML")
    add.add_argument("--question")
    add.add_argument("--sql")
    add.add_argument("--doc", type=Path, help="a Markdown file to add as documentation chunks")
    add.add_argument("--descriptions", type=Path, help="a YAML file of table/column descriptions and terms")
    add_common(add)
    add.set_defaults(func=cmd_add)

    ls = actions.add_parser("list", help="list stored items")
    ls.add_argument("--kind", choices=KINDS, default="example")
    ls.add_argument("--all-dbs", action="store_true", help="not only the current database's items")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    add_common(ls)
    ls.set_defaults(func=cmd_list)

    rm = actions.add_parser("remove", help="remove items by id")
    rm.add_argument("ids", nargs="+")
    rm.add_argument("--kind", choices=KINDS, default="example")
    add_common(rm)
    rm.set_defaults(func=cmd_remove)

    rebuild = actions.add_parser("rebuild", help="(re)index the database's schema and values; only changes move")
    rebuild.add_argument("--no-values", action="store_true")
    add_common(rebuild)
    rebuild.set_defaults(func=cmd_rebuild)

    imp = actions.add_parser("import-spider", help="import a Spider-format file as an example pool")
    imp.add_argument("path", type=Path)
    imp.add_argument("--exclude-heldout", action="store_true", help="leave out the evaluation's held-out databases")
    add_common(imp)
    imp.set_defaults(func=cmd_import_spider)

    imp_pool = actions.add_parser("import-pool", help="index the shipped example pool now, in the foreground "
                                  "(the UI and `sqlsage ask` otherwise do it in the background on first use)")
    imp_pool.add_argument("--exclude-heldout", action="store_true",
                          help="leave out the evaluation's held-out databases")
    add_common(imp_pool)
    imp_pool.set_defaults(func=cmd_import_pool)

    pool = actions.add_parser("pool", help="the shipped example pool (Spider's training pairs)")
    pool_actions = pool.add_subparsers(dest="pool_action", required=True)
    for name, func, text in (("list", cmd_pool_list, "whether the pool is indexed and enabled, and its size"),
                             ("disable", cmd_pool_disable, "retrieval skips pool examples (kept in the store)"),
                             ("enable", cmd_pool_enable, "retrieval uses pool examples again")):
        action = pool_actions.add_parser(name, help=text)
        add_common(action)
        action.set_defaults(func=func)


def _open(args: argparse.Namespace) -> tuple[Settings, Retriever]:
    settings = settings_from(args)
    return settings, open_knowledge(settings)


def cmd_add(args: argparse.Namespace) -> int:
    settings, retriever = _open(args)
    db = Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes)
    try:
        if args.doc:
            print(f"added {retriever.store.upsert(markdown_chunks(args.doc, db.key))} doc chunk(s)")
        if args.descriptions:
            print(f"added {retriever.store.upsert(description_items(args.descriptions, db.key))} description(s)")
        if args.question or args.sql:
            if not (args.question and args.sql):
                raise UserInputError("An example needs both --question and --sql.")
            db.run(args.sql)  # it must run, read-only
            print(retriever.remember(args.question, args.sql, db.key, "cli", db.dialect))
        if not (args.doc or args.descriptions or args.question):
            raise UserInputError("Nothing to add: give --question and --sql, --doc, or --descriptions.")
    finally:
        db.close()
        retriever.close()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    settings, retriever = _open(args)
    where = None if args.all_dbs else {"db_id": db_key(settings.db_url)}
    items = retriever.store.get(args.kind, where=where, limit=args.limit)
    retriever.close()
    if args.json:
        print(json.dumps([{"id": i.id, "text": i.text, **i.metadata} for i in items], ensure_ascii=False))
        return 0
    for item in items:
        sql = item.metadata.get("sql")
        print(f"{item.id}\t{item.text}" + (f"\n\t{sql}" if sql else ""))
    print(f"({len(items)} {args.kind} item(s))")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    _, retriever = _open(args)
    removed = retriever.store.delete(args.kind, ids=args.ids)
    retriever.close()
    print(f"removed {removed}")
    return 0 if removed else 1


def cmd_rebuild(args: argparse.Namespace) -> int:
    settings, retriever = _open(args)
    db = Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes)
    began = time.monotonic()
    report = index_database(retriever.store, db, values=not args.no_values)
    if not args.no_values:  # the next start of the UI or `ask` finds it indexed
        mark_indexed(retriever.store, db)
    db.close()
    retriever.close()
    print(f"{report.db}: {report.tables} tables, {report.values} values; {report.changed} changed, "
          f"{report.removed} removed in {time.monotonic() - began:.1f}s")
    return 0


def cmd_import_spider(args: argparse.Namespace) -> int:
    _, retriever = _open(args)
    exclude: frozenset[str] = frozenset()
    if args.exclude_heldout:
        exclude = heldout_db_ids()
    began = time.monotonic()
    items = list(read_spider(args.path, exclude))
    changed = retriever.store.upsert(items)
    retriever.close()
    print(f"{len(items)} examples ({changed} new or changed) in {time.monotonic() - began:.1f}s")
    return 0


def _pool_file(settings: Settings) -> Path:
    return settings.pool_file or bundled_pool_path()


def cmd_import_pool(args: argparse.Namespace) -> int:
    settings, retriever = _open(args)
    exclude = heldout_db_ids() if args.exclude_heldout else frozenset()
    began = time.monotonic()

    def progress(done: int, total: int) -> None:
        print(f"\rexample pool: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)

    try:
        report = index_pool(retriever.store, _pool_file(settings), progress, exclude_db_ids=exclude)
    finally:
        retriever.close()
    print(file=sys.stderr)
    print(f"{report.examples} pool examples ({report.written} new or changed, {report.removed} removed) "
          f"in {time.monotonic() - began:.1f}s")
    return 0


def cmd_pool_list(args: argparse.Namespace) -> int:
    settings, retriever = _open(args)
    try:
        status = pool_status(retriever.store)
        path = _pool_file(settings)
        indexed = "no"
        if is_current(retriever.store, path):
            indexed = "yes"
        elif is_current(retriever.store, path, heldout_db_ids()):
            indexed = "yes, without the held-out databases (the UI and `ask` add them on next use)"
        elif status.indexed:
            indexed = "an older version (re-indexed on next use)"
    finally:
        retriever.close()
    print(f"pool file: {path}")
    print(f"indexed:   {indexed}")
    print(f"enabled:   {'yes' if status.enabled else 'no (retrieval skips it)'}")
    print(f"examples:  {status.examples:,}")
    return 0


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    _, retriever = _open(args)
    try:
        set_pool_enabled(retriever.store, enabled)
    finally:
        retriever.close()
    print("example pool " + ("enabled" if enabled else "disabled: retrieval skips its examples"))
    return 0


def cmd_pool_disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, False)


def cmd_pool_enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, True)
