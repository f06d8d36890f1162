"""A job that fills the knowledge store on a thread of its own, never in the way of an answer.

The example pool and the user's database are both indexed this way: started at launch, at a lower
priority than the model's threads, stoppable after the current batch, and never raising into the caller
(a damaged file or a store that cannot be written is logged once; the assistant answers as it would
without what the job would have added). ``line()`` is the job's state as one line for the CLI and the UI.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Self

log = logging.getLogger(__name__)


class BackgroundJob:
    """``work()`` runs on the thread and sets ``state`` to ``ready`` or ``stopped`` (``_stop`` is set when
    the caller asked it to stop); a subclass also says what it is in ``line()`` and ``failure``."""

    thread_name = "sqlsage-background"
    logger = log  # a subclass logs under its own module's name
    failure = "A background job failed (answers go on without it): %s"  # logged with the error

    def __init__(self, notify: Callable[[str], None] | None = None) -> None:
        self.notify = notify
        self.state = "idle"  # idle → checking → indexing → ready | stopped | failed
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self.state = "checking"
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def work(self) -> None:
        raise NotImplementedError

    def line(self) -> str:
        raise NotImplementedError

    def _run(self) -> None:
        try:  # the first answer matters more: this thread gives way to the model's (Linux: per thread)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except (AttributeError, OSError):
            pass
        try:
            self.work()
        except Exception as err:  # whatever fails here, the product answers as it did without the job
            self.state, self.error = "failed", str(err) or type(err).__name__
            self.logger.warning(self.failure, self.error)
            return
        self._tell()

    def _tell(self) -> None:
        if self.notify is not None:
            self.notify(self.line())

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread; True once it ended."""
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to stop after its current batch, and wait for that (bounded)."""
        self._stop.set()
        self.wait(timeout_s)

    @property
    def busy(self) -> bool:
        return self.state in ("checking", "indexing")
