"""Warm the local llama.cpp server with the stable prompt prefix, and keep its KV cache on disk.

The SQL step's prompt begins with the same system message (instructions and schema) for every question
on a database. Read once as soon as the database is opened, it is in a slot's cache before the first
question arrives; saved with llama.cpp's slot actions (``POST /slots/{id}?action=save|restore``, files
under the server's ``slot_save_path``), a restart restores it in a second instead of reading it again.

A file's name holds what its keys and values depend on: the model file, the prefix's text (prompt set and
rendered schema) and the schema's fingerprint; a file from another model or prompt version is never looked
up, and goes with the least recently used when the folder is over its cap. A file that the server cannot
restore (stale, damaged) is removed and the prefix read and saved again. A server without slot actions
(404, 501: an external endpoint, or no ``slot_save_path``) is told once and only warmed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

log = logging.getLogger(__name__)

SLOT = 0  # the slot the prefix is read into, saved from and restored into (the first question finds it there)
SUFFIX = ".bin"
_UNSUPPORTED = (404, 405, 501)


def cache_name(model: Path, prefix: str, schema_fingerprint: str) -> str:
    """The slot file's name for this model file, prefix text and schema (a plain file name, as the
    server insists: no directory part)."""
    try:
        stat = model.stat()
        model_id = f"{model.name}\0{stat.st_size}"
    except OSError:
        model_id = model.name
    return f"prefix-{_digest(model_id)}-{_digest(prefix)}-{schema_fingerprint[:12]}{SUFFIX}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SlotFiles:
    """The folder of saved slots (the server's ``slot_save_path``), kept under ``cap_bytes`` by removing
    the least recently used files first (a restore counts as a use)."""

    directory: Path
    cap_bytes: int

    def path(self, name: str) -> Path:
        return self.directory / name

    def has(self, name: str) -> bool:
        return self.path(name).is_file() and self.path(name).stat().st_size > 0

    def used(self, name: str) -> None:
        try:
            os.utime(self.path(name))
        except OSError:
            pass

    def discard(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def evict(self) -> list[str]:
        """Remove the least recently used slot files until the folder is within its cap; their names."""
        try:
            files = sorted((p for p in self.directory.glob(f"*{SUFFIX}") if p.is_file()),
                           key=lambda p: p.stat().st_mtime)
        except OSError:
            return []
        total, removed = sum(p.stat().st_size for p in files), []
        for p in files:
            if total <= self.cap_bytes:
                break
            total -= p.stat().st_size
            p.unlink(missing_ok=True)
            removed.append(p.name)
        return removed


def slot_client(timeout_s: float) -> httpx.Client:
    """The HTTP client the warmer talks to the model server with (the unit tests' guard refuses it here)."""
    return httpx.Client(timeout=httpx.Timeout(timeout_s, connect=10.0))


class SlotActionsUnsupported(Exception):
    """The server has no slot save/restore (an external endpoint, or started without ``slot_save_path``)."""


class PrefixWarmer:
    """In a background thread: restore the prefix's saved slot, or else read the prefix into slot
    ``SLOT`` (a one-token completion) and save it. ``wait()`` lets the first question wait for a prefix
    being read rather than read it a second time in another slot. Nothing raises into the caller."""

    def __init__(self, root_url: str, prefix: str, name: str, files: SlotFiles | None, timeout_s: float,
                 client: httpx.Client | None = None, notify: Callable[[str], None] | None = None) -> None:
        self.root_url, self.prefix, self.name, self.files = root_url.rstrip("/"), prefix, name, files
        self.timeout_s = timeout_s
        self.client = client or slot_client(timeout_s)
        self.notify = notify
        self.state = "idle"  # idle → restoring | reading → saving → ready | failed
        self.how: str | None = None  # "restored" or "read"
        self.seconds = 0.0
        self.error: str | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> PrefixWarmer:
        self.state = "restoring" if self.files is not None and self.files.has(self.name) else "reading"
        self._thread = threading.Thread(target=self._run, name="sqlsage-warm", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        began = time.monotonic()
        try:
            if self.state == "restoring" and self._restore():
                self.how = "restored"
            else:
                self.state = "reading"
                self._read()
                self.how = "read"
                if self.files is not None:
                    self.state = "saving"
                    self._save()
            self.state = "ready"
        except (httpx.HTTPError, OSError, ValueError) as err:  # the answers go on, reading the prefix themselves
            self.state, self.error = "failed", str(err) or type(err).__name__
            log.warning("The model server was not warmed with the schema (the first question reads it): %s",
                        self.error)
        finally:
            self.seconds = time.monotonic() - began
            self._done.set()
        if self.notify is not None:
            self.notify(self.line())

    def _slot_action(self, action: str) -> httpx.Response | None:
        """The server's answer to a slot save or restore; None (logged once, slot files off from then on)
        when the server has no slot actions."""
        response = self.client.post(f"{self.root_url}/slots/{SLOT}", params={"action": action},
                                    json={"filename": self.name})
        if response.status_code in _UNSUPPORTED:
            self._no_slot_actions(SlotActionsUnsupported(f"{response.status_code} {response.text[:200]}"))
            return None
        return response

    def _restore(self) -> bool:
        assert self.files is not None
        response = self._slot_action("restore")
        if response is None:
            return False
        if response.status_code != 200 or not response.json().get("n_restored"):
            log.warning("The saved schema cache %s could not be restored (%s %s): it is removed and rebuilt.",
                        self.name, response.status_code, response.text[:200])
            self.files.discard(self.name)
            return False
        self.files.used(self.name)
        return True

    def _read(self) -> None:
        """A one-token completion of the prefix alone, in slot ``SLOT``: the server keeps its keys and
        values, and a question's prompt, which begins with the same system message, reuses them."""
        response = self.client.post(f"{self.root_url}/v1/chat/completions", json={
            "messages": [{"role": "system", "content": self.prefix}], "max_tokens": 1, "temperature": 0.0,
            "cache_prompt": True, "id_slot": SLOT,
        })
        response.raise_for_status()

    def _save(self) -> None:
        assert self.files is not None
        response = self._slot_action("save")
        if response is None:
            return
        if response.status_code != 200 or not response.json().get("n_saved"):
            log.warning("The schema cache could not be saved (%s %s); the next start reads the schema again.",
                        response.status_code, response.text[:200])
            self.files.discard(self.name)  # an empty slot's file would only be refused on restore
            return
        for removed in self.files.evict():
            log.info("Removed the least recently used schema cache %s (over the cap).", removed)

    def _no_slot_actions(self, err: SlotActionsUnsupported) -> None:
        log.warning("The model server cannot save or restore slots (%s): the schema is read at each start.", err)
        self.files = None

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the prefix to be in a slot (or for the warming to fail); True once it ended."""
        return self._done.wait(timeout_s)

    @property
    def busy(self) -> bool:
        return self.state in ("restoring", "reading", "saving")

    def close(self) -> None:
        self.client.close()

    def line(self) -> str:
        if self.state == "ready":
            how = "restored from disk" if self.how == "restored" else "read"
            return f"Model: schema {how} in {self.seconds:.1f} s; ready for the first question."
        if self.state == "failed":
            return f"Model: not warmed ({self.error}); the first question reads the schema."
        if self.state == "restoring":
            return "Model: restoring the saved schema cache…"
        if self.state == "saving":
            return "Model: saving the schema cache…"
        return "Model: reading the schema in the background…"
