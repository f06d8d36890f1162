"""The shipped example pool: Spider's training pairs, indexed into the store on first use.

The pool file (``knowledge/data/spider_pool.jsonl.gz``, built by ``scripts/build_spider_pool.py``) becomes
examples through the same code as ``sqlsage knowledge import-spider`` (:func:`knowledge.examples.spider_items`),
with ``source="pool"``. Notes on the example collection record which pool file is indexed (its fingerprint)
and whether the pool is enabled, so a restart that finds the pool indexed does no work, and a changed pool
file is indexed again (only the pairs that changed are embedded).

An example the store already holds from elsewhere (the user's own, or an ``import-spider``) keeps its source:
the pool never takes a user's example over.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from core.errors import SqlsageError
from knowledge.background import BackgroundJob
from knowledge.examples import POOL_SOURCE, spider_items
from knowledge.store import Item, KnowledgeStore, MetadataValue

__all__ = [
    "POOL_SOURCE", "PoolError", "PoolIndexer", "PoolReport", "PoolStatus", "bundled_pool_path", "fingerprint",
    "index_pool", "pool_status", "read_pool", "set_pool_enabled",
]

log = logging.getLogger(__name__)

BATCH = 256  # pairs embedded and written at a time: the unit of progress, and where a stop takes effect
_INDEXED, _ENABLED, _COUNT = "pool_fingerprint", "pool_enabled", "pool_examples"

Progress = Callable[[int, int], None]


class PoolError(SqlsageError):
    """The pool file is missing or damaged."""


def bundled_pool_path() -> Path:
    """The pool shipped inside the package."""
    return Path(str(resources.files("knowledge") / "data" / "spider_pool.jsonl.gz"))


def fingerprint(path: Path) -> str:
    """A digest of the pool file's bytes: the version of the pool that the store records."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as err:
        raise PoolError(f"The example pool {path} cannot be read: {err}") from err


def read_pool(path: Path, exclude_db_ids: Iterable[str] = ()) -> list[Item]:
    """The pool's examples (gzip'd JSONL of {question, query, db_id}), without ``exclude_db_ids``.
    Raises :class:`PoolError` for a file that is missing, not gzip, or has a line that is not a pair."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise PoolError(f"The example pool {path} is missing or damaged: {err}") from err
    if not all(isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("question", "query", "db_id"))
               for r in rows):
        raise PoolError(f"The example pool {path} has a line that is not a {{question, query, db_id}} pair.")
    # Spider repeats a few pairs word for word: one example each (the same id), in the file's order.
    return list({i.id: i for i in spider_items(rows, POOL_SOURCE, exclude_db_ids)}.values())


@dataclass(frozen=True)
class PoolStatus:
    indexed: str | None  # fingerprint of the pool file fully indexed, None before the first full run
    enabled: bool
    examples: int  # pool examples in the store


def pool_status(store: KnowledgeStore) -> PoolStatus:
    marks = store.marks("example")
    indexed = marks.get(_INDEXED)
    return PoolStatus(str(indexed) if indexed else None, marks.get(_ENABLED, True) is not False,
                      int(marks.get(_COUNT, 0)))


def set_pool_enabled(store: KnowledgeStore, enabled: bool) -> None:
    """Retrieval skips pool examples while the pool is disabled; kept in the store (survives restarts)."""
    store.mark("example", **{_ENABLED: enabled})


def pool_enabled(store: KnowledgeStore) -> bool:
    return pool_status(store).enabled


def version(path: Path, exclude_db_ids: Iterable[str] = ()) -> str:
    """What the store records as indexed: the file's fingerprint, and the databases left out, if any."""
    excluded = sorted(set(exclude_db_ids))
    if not excluded:
        return fingerprint(path)
    return fingerprint(path) + "-without-" + hashlib.sha256("\0".join(excluded).encode()).hexdigest()[:8]


def is_current(store: KnowledgeStore, path: Path, exclude_db_ids: Iterable[str] = ()) -> bool:
    """Whether the store holds this very pool already (one read of the file and one of the notes)."""
    return pool_status(store).indexed == version(path, exclude_db_ids)


@dataclass(frozen=True)
class PoolReport:
    examples: int
    written: int
    removed: int
    fingerprint: str
    complete: bool  # False when stopped before the end (the next run carries on: done pairs are not redone)


def index_pool(
    store: KnowledgeStore, path: Path, progress: Progress | None = None, stop: threading.Event | None = None,
    exclude_db_ids: Iterable[str] = (),
) -> PoolReport:
    """Index the pool file into ``store`` in batches, calling ``progress(done, total)`` after each; stop
    early (between batches) when ``stop`` is set. Pool examples no longer in the file are removed. The
    fingerprint is recorded only once every pair is in, so an interrupted run is resumed next time."""
    digest = version(path, exclude_db_ids)
    items = read_pool(path, exclude_db_ids)
    total, written = len(items), 0
    if progress is not None:
        progress(0, total)
    for start in range(0, total, BATCH):
        if stop is not None and stop.is_set():
            return PoolReport(total, written, 0, digest, complete=False)
        batch = items[start : start + BATCH]
        held = {i.id: i.metadata.get("source") for i in store.get("example", ids=[i.id for i in batch])}
        written += store.upsert([i for i in batch if held.get(i.id, POOL_SOURCE) == POOL_SOURCE])
        if progress is not None:
            progress(min(start + BATCH, total), total)
    wanted = {i.id for i in items}
    stale = [i.id for i in store.get("example", where={"source": POOL_SOURCE}) if i.id not in wanted]
    removed = store.delete("example", ids=stale) if stale else 0
    kept = len(store.get("example", where={"source": POOL_SOURCE}))
    marks: dict[str, MetadataValue | None] = {_INDEXED: digest, _COUNT: kept}
    store.mark("example", **marks)
    return PoolReport(total, written, removed, digest, complete=True)


class PoolIndexer(BackgroundJob):
    """Index the pool in a background thread, unless the store holds this pool file already.

    A damaged pool file or a store that cannot be written is logged once, and the assistant answers as
    it would without the pool."""

    thread_name = "sqlsage-pool"
    logger = log
    failure = "The example pool is not available (answers go on without it): %s"

    def __init__(self, store: KnowledgeStore, path: Path, exclude_db_ids: Iterable[str] = (),
                 notify: Callable[[str], None] | None = None) -> None:
        super().__init__(notify)  # told the line as indexing starts, at each quarter, and at the end
        self.store, self.path, self.exclude = store, Path(path), frozenset(exclude_db_ids)
        self.done = self.total = 0

    def _progress(self, done: int, total: int) -> None:
        quarter = (lambda n: 4 * n // total) if total else (lambda n: 0)
        crossed = done == 0 or quarter(done) > quarter(self.done)
        self.done, self.total = done, total
        self.state = "indexing"
        if crossed and done < total:
            self._tell()

    def work(self) -> None:
        if is_current(self.store, self.path, self.exclude):
            self.done = self.total = pool_status(self.store).examples
            self.state = "ready"
        else:
            report = index_pool(self.store, self.path, self._progress, self._stop, self.exclude)
            self.state = "ready" if report.complete else "stopped"

    def line(self) -> str:
        if self.state == "ready":
            return f"Example pool: {self.done:,} examples ready."
        if self.state == "indexing":
            return f"Example pool: indexing {self.done:,}/{self.total:,} in the background…"
        if self.state == "stopped":
            return f"Example pool: {self.done:,}/{self.total:,} indexed; the rest next time."
        if self.state == "failed":
            return f"Example pool: not available ({self.error})."
        return "Example pool: checking…"
