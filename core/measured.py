"""What the technique ladder measured, per rung: the figures shipped with the release, and the user's own.

The shipped figures are data (``core/data/measured.json``, copied from ``benchmarks/results``; a unit
test keeps the two equal). ``sqlsage eval`` on one database writes its own summary beside the data
(``<data_dir>/measured/<database>.json``, see :func:`write_own`), and a reader prefers that one: the
accuracy and median seconds on the user's questions. The evaluation writes, the UI reads; both through
this module, which knows nothing of either.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from core.db import db_key

OWN_LABEL = "measured by your `sqlsage eval` on this database"


@dataclass(frozen=True)
class Figures:
    """One rung's result: ``correct`` of ``n`` questions, and the median seconds a question took."""

    n: int
    correct: int
    median_s: float
    note: str = ""  # how the measured set differs from what a preset runs, when it does
    techniques: dict[str, Any] = field(default_factory=dict)  # the switches measured (own runs only)

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0


@dataclass(frozen=True)
class Measured:
    """The figures of each measured rung, and where they come from (a line the user reads)."""

    label: str
    rungs: dict[str, Figures]
    when: str = ""


def _figures(data: Mapping[str, Any]) -> Figures:
    return Figures(int(data["n"]), int(data["correct"]), float(data["median_s"]), str(data.get("note") or ""),
                   dict(data.get("techniques") or {}))


def shipped() -> Measured:
    """The figures measured for this release (``core/data/measured.json``)."""
    data = json.loads((resources.files("core") / "data" / "measured.json").read_text(encoding="utf-8"))
    return Measured(str(data["label"]), {name: _figures(f) for name, f in data["rungs"].items()})


def own_path(data_dir: Path, db_url: str) -> Path:
    """Where the summary of the user's own evaluation of ``db_url`` is kept."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", db_key(db_url)).strip("_") or "database"
    return data_dir / "measured" / f"{name}.json"


def write_own(data_dir: Path, db_url: str, rungs: Mapping[str, Figures]) -> Path:
    """Keep the figures of an evaluation of ``db_url`` (the latest replaces the one before)."""
    path = own_path(data_dir, db_url)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"db": db_key(db_url), "when": time.strftime("%Y-%m-%d %H:%M"),
            "rungs": {name: asdict(f) for name, f in rungs.items()}}
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return path


def own(data_dir: Path, db_url: str) -> Measured | None:
    """The user's own figures for ``db_url``, or None when it was not evaluated (or the file is unreadable:
    then the shipped figures are shown, which say where they come from)."""
    path = own_path(data_dir, db_url)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rungs = {name: _figures(f) for name, f in data["rungs"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    when = str(data.get("when") or "")
    return Measured(OWN_LABEL + (f" ({when})" if when else ""), rungs, when) if rungs else None


def figures_for(data_dir: Path, db_url: str) -> Measured:
    """The user's own figures for ``db_url`` when there are any, else the shipped ones."""
    return own(data_dir, db_url) or shipped()
