"""The command line's bad-input paths: one clear message, a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


@pytest.mark.parametrize(
    "args, message",
    [
        (["ask", ""], "question is empty"),
        (["ask", "x" * 10_000], "10,000 characters"),
        (["ask", "How many?", "--db", "sqlite:////no/such/file.db"], "does not exist"),
        (["ask", "How many?", "--db", "nosuchdriver://user@host/db"], "Unknown database driver"),
        (["ask", "How many?", "--db", "not a url"], "Not a database URL"),
        (["sql", "DELETE FROM Artist"], "refused"),
        (["sql", "SELECT 1; DROP TABLE Artist"], "refused"),
        (["sql", "SELECT nope FROM Artist"], "no such column"),
    ],
)
def test_bad_input_exits_non_zero_with_one_clear_message(args: list[str], message: str) -> None:
    proc = run(*args)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sql_runs_read_only_select(chinook_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "SELECT COUNT(*) AS n FROM Artist", "--db", f"sqlite:///{chinook_copy}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == [[275]]


def test_sql_refusal_leaves_the_database_unchanged(chinook_copy: Path) -> None:
    assert main(["sql", "DROP TABLE Artist", "--db", f"sqlite:///{chinook_copy}"]) == 1
    with sqlite3.connect(chinook_copy) as conn:
        assert conn.execute("SELECT COUNT(*) FROM Artist").fetchone() == (275,)


def test_usage_error_exits_2() -> None:
    assert run("ask").returncode == 2
