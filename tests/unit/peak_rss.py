"""How much a block of code made this process's memory grow: its peak resident set, from /proc (Linux).

The kernel's high-water mark (VmHWM) is reset before the block (``/proc/self/clear_refs``), so the peak
counts only what the block did; where that reset is not allowed, a thread samples VmRSS every few ms.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")


def _kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
    assert match, f"no {field} in {_STATUS}"
    return int(match.group(1))


@dataclass
class Growth:
    before_kib: int = 0
    peak_kib: int = 0
    how: str = ""

    @property
    def mib(self) -> float:
        return max(0, self.peak_kib - self.before_kib) / 1024

    def __str__(self) -> str:
        return f"peak memory growth {self.mib:.1f} MiB ({self.how})"


@contextmanager
def peak_growth() -> Iterator[Growth]:
    growth = Growth(before_kib=_kib("VmRSS"))
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        growth.how = "VmHWM"
    except OSError:
        growth.how = "VmRSS sampled"
    stop = threading.Event()
    samples = [growth.before_kib]

    def sample() -> None:
        while not stop.wait(0.005):
            samples.append(_kib("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield growth
    finally:
        stop.set()
        sampler.join()
        samples.append(_kib("VmRSS"))
        growth.peak_kib = _kib("VmHWM") if growth.how == "VmHWM" else max(samples)


@dataclass
class Outcome:
    """What a query that may exhaust resources came to: ``capped`` (the row cap), ``N rows``, or the
    QueryError's kind; how long it took and how much memory it grew by."""

    got: str
    seconds: float
    growth: Growth


def run_bounded(db: Any, sql: str) -> Outcome:
    """Run ``sql`` on a ``core.db.Database`` and say how it ended (a QueryError is an outcome, not a failure)."""
    from core.db import QueryError

    began = time.monotonic()
    with peak_growth() as growth:
        try:
            result = db.run(sql)
            got = "capped" if result.truncated and len(result.rows) == db.row_cap else f"{len(result.rows)} rows"
        except QueryError as err:
            got = err.kind
    return Outcome(got, time.monotonic() - began, growth)
