"""Evaluation questions: loaded from Spider's format or from a small file of the user's own.

Two formats are read:

- **Spider** (``train.json`` / ``dev.json``): a JSON list of ``{"db_id", "question", "query", ...}``; the
  database of each question is ``<db_dir>/<db_id>/<db_id>.sqlite``.
- **User file** (YAML or JSON): a list of ``{"question", "sql"}`` (or ``{"question", "gold"}``), all asked
  of one database given by URL (``--db``).

Every question gets a stable id (``qid``), its position in the file, so that a run can be resumed.
The held-out databases (:data:`HELDOUT_DBS`) are the Spider training databases kept aside for
development measurements: few-shot examples must never be drawn from them.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from core.db import db_key
from core.errors import SqlsageError

# The held-out Spider training databases. Chosen for variety, not at random:
# - domains: health (allergy_1, hospital_1), tourism (cre_Theme_park), retail (department_store),
#   housing (dorm_1), aviation (flight_4), insurance (insurance_policies), banking (loan_1),
#   research (scientist_1), shipping (ship_1), weather (storm_record), food and drink (wine_1);
# - schema sizes from 2 tables (ship_1) to 15-16 (hospital_1, cre_Theme_park), so that schema linking
#   has big schemas to narrow and the small ones measure SQL writing alone;
# - none of the databases whose gold queries are known to fail (assets_maintenance,
#   document_management), and not chinook_1 (the bundled demo database is Chinook);
# - together 902 questions (>= 250), enough to sample 100 with every hardness level well represented,
#   while the other 126 databases (about 6,000 questions) stay available as the few-shot pool.
HELDOUT_DBS: tuple[str, ...] = (
    "allergy_1",
    "cre_Theme_park",
    "department_store",
    "dorm_1",
    "flight_4",
    "hospital_1",
    "insurance_policies",
    "loan_1",
    "scientist_1",
    "ship_1",
    "storm_record",
    "wine_1",
)

# 'pool': only the other databases (those few-shot examples come from), to tune a switch's value
# without looking at the held-out questions.
Split = Literal["all", "heldout", "pool"]
SPLITS: tuple[str, ...] = ("all", "heldout", "pool")


def heldout_db_ids() -> frozenset[str]:
    """The held-out databases: evaluate on them, never draw few-shot examples from them."""
    return frozenset(HELDOUT_DBS)


class DatasetError(SqlsageError):
    """The questions file cannot be read or does not have the expected shape."""


@dataclass(frozen=True)
class EvalQuestion:
    """One question with its gold SQL and where its database is.

    ``db_path`` is the SQLite file when there is one (Spider, or a ``sqlite:///`` URL): gold and
    prediction are then compared with Spider's execution match on that file.
    """

    qid: str
    db_id: str
    question: str
    gold: str
    db_url: str
    db_path: Path | None = None


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL, or None for any other database (or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def _read_structured(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DatasetError(f"Cannot read the questions file {path}: {err}") from err
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise DatasetError(f"The questions file {path} does not parse: {err}") from err


def is_spider_format(items: Any) -> bool:
    return (
        isinstance(items, list)
        and bool(items)
        and all(isinstance(x, dict) and {"db_id", "question", "query"} <= x.keys() for x in items)
    )


def spider_questions(items: Sequence[dict[str, Any]], db_dir: Path) -> list[EvalQuestion]:
    questions = []
    for i, item in enumerate(items):
        db_id = str(item["db_id"])
        path = db_dir / db_id / f"{db_id}.sqlite"
        questions.append(
            EvalQuestion(
                qid=f"{db_id}/{i}", db_id=db_id, question=str(item["question"]), gold=str(item["query"]),
                db_url=f"sqlite:///{path}", db_path=path,
            )
        )
    missing = sorted({q.db_id for q in questions if q.db_path is not None and not q.db_path.is_file()})
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise DatasetError(f"{len(missing)} database(s) are missing under {db_dir} (e.g. {shown}); pass --db-dir.")
    return questions


def user_questions(items: Any, db_url: str, source: Path) -> list[EvalQuestion]:
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{source}: expected a non-empty list of {{question, sql}} items.")
    path = sqlite_path(db_url)
    db_id = db_key(db_url)
    questions = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "question" not in item or not ({"sql", "gold"} & item.keys()):
            raise DatasetError(f"{source}: item {i + 1} needs a 'question' and an 'sql' (or 'gold'): {item!r:.120}")
        unknown = set(item) - {"question", "sql", "gold", "id"}
        if unknown:
            raise DatasetError(f"{source}: item {i + 1} has unknown key(s) {sorted(unknown)}.")
        gold = item.get("sql", item.get("gold"))
        questions.append(
            EvalQuestion(
                qid=str(item.get("id", f"{db_id}/{i}")), db_id=db_id, question=str(item["question"]),
                gold=str(gold), db_url=db_url, db_path=path,
            )
        )
    ids = [q.qid for q in questions]
    if len(set(ids)) != len(ids):
        raise DatasetError(f"{source}: question ids are not unique.")
    return questions


def load_questions(path: Path, db_dir: Path | None = None, db_url: str | None = None) -> list[EvalQuestion]:
    """Read a questions file in either format. Spider's databases are looked for in ``db_dir``
    (default: the ``database`` folder beside the file); a user file needs ``db_url``."""
    items = _read_structured(path)
    if is_spider_format(items):
        return spider_questions(items, db_dir or path.parent / "database")
    if db_url is None:
        raise DatasetError(
            f"{path} is not in Spider's format (a list of db_id/question/query), so it is read as your own "
            "list of {question, sql}: give its database with --db URL."
        )
    return user_questions(items, db_url, path)


def select(
    questions: Sequence[EvalQuestion], split: Split = "all", limit: int | None = None, seed: int | None = None,
    by_database: bool = False, databases: int | None = None, per_database: int | None = None,
) -> list[EvalQuestion]:
    """The questions of ``split``, shuffled with ``seed`` (kept in file order without one), the first
    ``limit`` of them. Deterministic; a larger limit extends a smaller one (so a run can be resumed
    with more questions).

    ``databases`` keeps only the questions of the first N databases in that order (before ``limit``):
    many questions of a few databases, as one user asks them, where each new schema costs the model a
    long first read. ``per_database`` keeps at most that many of each database's questions.

    ``by_database`` asks the same chosen questions database by database (databases in order of their
    first question, each one's questions in the chosen order), as a user asks: the model server's
    cached schema prefix then serves every question after a database's first."""
    if split not in SPLITS:
        raise DatasetError(f"Unknown split {split!r}; known: {', '.join(SPLITS)}.")
    chosen = list(questions)
    if split == "heldout":
        keep = heldout_db_ids()
        chosen = [q for q in chosen if q.db_id in keep]
        if not chosen:
            raise DatasetError("No question is on a held-out database: --split heldout needs Spider's training data.")
    elif split == "pool":
        chosen = [q for q in chosen if q.db_id not in heldout_db_ids()]
    if seed is not None:
        random.Random(seed).shuffle(chosen)
    if databases is not None:
        if databases < 1:
            raise DatasetError("--databases must be at least 1.")
        kept = list(dict.fromkeys(q.db_id for q in chosen))[:databases]
        chosen = [q for q in chosen if q.db_id in set(kept)]
    if per_database is not None:
        if per_database < 1:
            raise DatasetError("--per-database must be at least 1.")
        taken: Counter[str] = Counter()
        kept_questions = []
        for q in chosen:
            taken[q.db_id] += 1
            if taken[q.db_id] <= per_database:
                kept_questions.append(q)
        chosen = kept_questions
    if limit is not None:
        if limit < 1:
            raise DatasetError("--limit must be at least 1.")
        chosen = chosen[:limit]
    if by_database:
        first = {q.db_id: i for i, q in reversed(list(enumerate(chosen)))}
        chosen.sort(key=lambda q: first[q.db_id])  # stable: each database keeps its questions' order
    return chosen
