"""Login for the chat UI: ``--auth user:pass`` (repeatable) and ``--auth-file`` (one ``user:pass`` a line)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from core.errors import UserInputError

Credentials = list[tuple[str, str]]


def parse_auth_spec(spec: str) -> tuple[str, str]:
    """``user:pass`` (the password may itself contain ':'); both parts must be non-empty."""
    user, sep, password = spec.strip().partition(":")
    if not sep or not user.strip() or not password:
        raise UserInputError(f"Bad login {_redact(spec)!r}: expected user:password")
    return user.strip(), password


def _redact(spec: str) -> str:
    user, sep, _ = spec.partition(":")
    return f"{user}:***" if sep else spec[:20]


def read_auth_file(path: Path) -> Credentials:
    """One ``user:password`` per line; blank lines and lines starting with '#' are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise UserInputError(f"Cannot read the auth file {path}: {err.strerror or err}") from err
    out: Credentials = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            out.append(parse_auth_spec(line))
        except UserInputError as err:
            raise UserInputError(f"{path}, line {number}: {err}") from err
    if not out:
        raise UserInputError(f"The auth file {path} holds no user:password line")
    return out


def collect_auth(specs: Iterable[str] | None = None, file: Path | None = None) -> Credentials | None:
    """All logins from the flags and the file (None: no login required). A user named twice is an error."""
    creds = [parse_auth_spec(s) for s in specs or ()]
    if file is not None:
        creds += read_auth_file(file)
    users = [u for u, _ in creds]
    duplicates = sorted({u for u in users if users.count(u) > 1})
    if duplicates:
        raise UserInputError(f"User(s) given more than once: {', '.join(duplicates)}")
    return creds or None
