"""Errors sorted by whose they are.

``SqlsageError`` and its subclasses stop the run and are told to the user as they are: a clear message,
never a traceback. Errors the model can fix (bad SQL, a reply with no SQL in it) are not exceptions
here: the nodes record them on the state and the graph routes to repair.
"""

from __future__ import annotations


class SqlsageError(Exception):
    """Stop and tell the user. ``str(err)`` is the whole message."""


class UserInputError(SqlsageError):
    """The question itself cannot be used (empty, too long)."""


class DatabaseUnavailable(SqlsageError):
    """The database is missing, locked, unreachable, or its URL is wrong."""


class LLMUnavailable(SqlsageError):
    """The model server is down, slow beyond the timeout, or could not be started."""


class ModelFileError(SqlsageError):
    """The local model's file is missing or corrupt."""


class UnsafeRequest(SqlsageError):
    """The model wrote SQL that could change data; it was refused and not run."""
