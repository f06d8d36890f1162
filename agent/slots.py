"""The line in front of the model server: at most as many requests in flight as it has slots.

A request that reached a server whose slots are all busy waits inside the server, and that wait counted
against the request's timeout: under load, a question was lost while it was only waiting its turn. With
``SlotGate`` a request is sent only once slots are free for it, so its timeout counts the server working
on it and nothing else; the wait is in our own line, first come first served, where each waiting caller
is told its place and about how long until its turn.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class QueueStatus:
    """One waiting request's place: ``position`` 1 is next; ``estimate_s`` is None before any call ended."""

    position: int
    waiting: int
    estimate_s: float | None

    def text(self) -> str:
        place = {1: "next", 2: "2nd", 3: "3rd"}.get(self.position, f"{self.position}th")
        line = "next in line" if place == "next" else f"{place} in line"
        about = f", about {self.estimate_s:.0f} s" if self.estimate_s is not None else ""
        return f"Waiting for the model: {line} ({self.waiting} waiting{about})"


Reporter = Callable[[QueueStatus], None]


class SlotGate:
    """FIFO admission of model requests, each taking ``units`` of ``slots`` (a request for n samples
    takes n slots on a llama.cpp server). Thread-safe; one gate per server, shared by every caller."""

    def __init__(self, slots: int, report_every_s: float = 2.0) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.report_every_s = report_every_s
        self._busy = 0
        self._line: deque[object] = deque()
        self._needs: dict[object, int] = {}  # slots each waiting ticket takes
        self._held: dict[object, tuple[float, int]] = {}  # each request in flight: when it began, its slots
        self._cond = threading.Condition()
        self._mean_s: float | None = None  # moving average of a request's time in a slot
        self.waits: deque[float] = deque(maxlen=1000)  # seconds each recent request waited in line (0 if none)

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._line)

    def status(self, ticket: object) -> QueueStatus:
        with self._cond:
            return self._status(ticket)

    def _status(self, ticket: object) -> QueueStatus:
        position = self._line.index(ticket) + 1
        estimate = None
        if self._mean_s is not None:
            estimate = self._start_estimate(position, time.monotonic())
        return QueueStatus(position, len(self._line), estimate)

    def _start_estimate(self, position: int, now: float) -> float:
        """Seconds until the ``position``-th in line starts, if every request holds its slots for the mean
        time: the requests in flight free theirs when that time is up (at once when overdue), and each one
        ahead starts, first come first served, once as many slots as it takes are free."""
        assert self._mean_s is not None
        free_at = [now] * (self.slots - self._busy)
        for began, units in self._held.values():
            free_at += [max(now, began + self._mean_s)] * units
        start = now
        for i in range(position):
            need = self._needs[self._line[i]]
            free_at.sort()
            start = max(start, free_at[need - 1])  # FIFO: no one starts before the one ahead of it
            free_at[:need] = [start + self._mean_s] * need
        return start - now

    @contextmanager
    def slot(self, units: int = 1, report: Reporter | None = None) -> Iterator[None]:
        """Wait for ``units`` free slots (first come, first served), then hold them for the block.
        ``report`` is told the caller's place when it has to wait, and again when the place changes
        or every ``report_every_s``."""
        need = max(1, min(units, self.slots))
        ticket = object()
        arrived = time.monotonic()
        with self._cond:
            self._line.append(ticket)
            self._needs[ticket] = need
            last: QueueStatus | None = None
            last_at = 0.0
            try:
                while self._line[0] is not ticket or self._busy + need > self.slots:
                    status = self._status(ticket)
                    now = time.monotonic()
                    if report is not None and (status != last or now - last_at >= self.report_every_s):
                        last, last_at = status, now
                        report(status)
                    self._cond.wait(self.report_every_s)
            except BaseException:
                self._line.remove(ticket)
                del self._needs[ticket]
                self._cond.notify_all()
                raise
            self._line.popleft()
            del self._needs[ticket]
            self._busy += need
            self._held[ticket] = (time.monotonic(), need)
            self.waits.append(time.monotonic() - arrived)
            self._cond.notify_all()  # the next in line may fit in the slots left
        began = time.monotonic()
        try:
            yield
        finally:
            held = time.monotonic() - began
            with self._cond:
                self._busy -= need
                del self._held[ticket]
                self._mean_s = held if self._mean_s is None else 0.7 * self._mean_s + 0.3 * held
                self._cond.notify_all()
