"""Login specs for ``sqlsage ui --auth user:pass`` and ``--auth-file``."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import build_parser
from core.errors import UserInputError
from ui.auth import collect_auth, parse_auth_spec, read_auth_file


def test_parse_auth_spec() -> None:
    assert parse_auth_spec("alice:s3cret") == ("alice", "s3cret")
    assert parse_auth_spec(" bob:pa:ss ") == ("bob", "pa:ss")  # the password may hold ':'


@pytest.mark.parametrize("spec", ["alice", "alice:", ":secret", "  :x", ""])
def test_bad_specs_are_refused_without_echoing_the_password(spec: str) -> None:
    with pytest.raises(UserInputError, match="expected user:password") as err:
        parse_auth_spec(spec)
    assert "secret" not in str(err.value)


def test_auth_file(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("# team\nalice:one\n\nbob:two\n", encoding="utf-8")
    assert read_auth_file(path) == [("alice", "one"), ("bob", "two")]
    path.write_text("alice:one\nbroken\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="line 2"):
        read_auth_file(path)
    path.write_text("# nobody\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="no user:password"):
        read_auth_file(path)
    with pytest.raises(UserInputError, match="Cannot read"):
        read_auth_file(tmp_path / "missing.txt")


def test_collect_auth_merges_flags_and_file_and_refuses_duplicates(tmp_path: Path) -> None:
    assert collect_auth(None, None) is None
    path = tmp_path / "users.txt"
    path.write_text("bob:two\n", encoding="utf-8")
    assert collect_auth(["alice:one"], path) == [("alice", "one"), ("bob", "two")]
    with pytest.raises(UserInputError, match="more than once: bob"):
        collect_auth(["bob:x"], path)


def test_ui_command_takes_repeatable_auth_and_an_auth_file() -> None:
    args = build_parser().parse_args(["ui", "--auth", "a:1", "--auth", "b:2", "--auth-file", "users.txt",
                                      "--port", "7999"])
    assert args.auth == ["a:1", "b:2"] and args.auth_file == "users.txt" and args.port == 7999
    assert build_parser().parse_args(["ui"]).auth is None


def test_ui_command_with_a_bad_login_stops_before_starting_anything(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["ui", "--auth", "nopassword"]) == 1
    assert "expected user:password" in capsys.readouterr().err
