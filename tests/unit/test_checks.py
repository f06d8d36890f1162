"""Checks between validate and execute (agent.policy.CHECKS): fix_qualifiers as a node of its own, and a new
check added the way the house asks, by one switch, one line in CHECKS and one node module."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

from agent import policy
from agent.deps import RunContext
from agent.nodes.checks import apply_checks, check_function
from agent.service import Assistant
from agent.testing import ScriptedChatModel
from agent.trace import CheckOutput, Step
from core.config import Settings, Techniques
from ui.render import step_label

WRONG_ALIAS = "SELECT T2.Name FROM Artist AS T1 JOIN Album AS T2 ON T1.ArtistId = T2.ArtistId"


def sql_reply(sql: str) -> str:
    return f"```sql\n{sql}\n```"


def ask(settings: Settings, techniques: Techniques, *replies: str) -> tuple[object, ScriptedChatModel]:
    model = ScriptedChatModel().enqueue(*replies)
    with Assistant.open(settings, llm=model) as assistant:
        return assistant.ask("Which artists have albums?", techniques), model


def test_fix_qualifiers_is_its_own_step_and_rewrites_the_query(settings: Settings) -> None:
    record, _ = ask(settings, Techniques(answer=False), sql_reply(WRONG_ALIAS))
    assert record.ok, record.error  # type: ignore[attr-defined]
    steps = {s.node: s for s in record.trace}  # type: ignore[attr-defined]
    assert list(steps) == ["context", "generate", "validate", "fix_qualifiers", "execute", "answer"]
    out = steps["fix_qualifiers"].output
    assert isinstance(out, CheckOutput) and out.sql is not None and "T1.Name" in out.sql and out.notes
    assert record.sql == out.sql  # type: ignore[attr-defined]
    again = Step.from_dict(steps["fix_qualifiers"].to_dict()).output  # read back typed, by the record's name
    assert again == out


def test_with_the_switch_off_there_is_no_check_and_the_query_runs_as_written(settings: Settings) -> None:
    record, _ = ask(settings, Techniques(answer=False, fix_qualifiers=False, repair=False), sql_reply(WRONG_ALIAS))
    assert [s.node for s in record.trace] == ["context", "generate", "validate", "execute"]  # type: ignore[attr-defined]
    assert "no such column" in (record.trace[-1].error or "")  # type: ignore[attr-defined]


# -- a new technique, added as the house asks: a switch, a line in CHECKS, a node module -----------------

class WithNoStar(Techniques):
    no_star: bool = False  # the switch


def no_star(sql: str, ctx: RunContext) -> CheckOutput:  # the node: agent/nodes/no_star.py's ``check``
    if "*" in sql.split("FROM")[0]:
        return CheckOutput(sql, problem="Name the columns the question asks for instead of SELECT *.")
    return CheckOutput(sql)


@pytest.fixture
def no_star_check(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    module = types.ModuleType("agent.nodes.no_star")
    module.check = no_star  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "agent.nodes.no_star", module)
    monkeypatch.setitem(policy.CHECKS, "no_star", lambda t: getattr(t, "no_star", False))  # the policy line
    yield
    check_function.cache_clear()


def test_a_new_check_runs_after_validate_and_its_problem_is_repaired(settings: Settings, no_star_check: None) -> None:
    techniques = WithNoStar(answer=False, no_star=True)
    record, model = ask(settings, techniques, sql_reply("SELECT * FROM Artist"), sql_reply("SELECT Name FROM Artist"))
    assert record.ok, record.error  # type: ignore[attr-defined]
    assert [s.node for s in record.trace] == [  # type: ignore[attr-defined]
        "context", "generate", "validate", "fix_qualifiers", "no_star", "repair", "validate", "fix_qualifiers",
        "no_star", "execute", "answer"]
    first = record.trace[4]  # type: ignore[attr-defined]
    assert isinstance(first.output, CheckOutput) and first.error == first.output.problem
    assert "instead of SELECT *" in str(model.history[1][-1].content)  # the repair prompt says what to fix
    assert record.sql == "SELECT Name FROM Artist"  # type: ignore[attr-defined]
    assert step_label("no_star") == "Checking the SQL (no star)…"


def test_a_new_check_is_off_until_its_switch_is_on(settings: Settings, no_star_check: None) -> None:
    record, _ = ask(settings, WithNoStar(answer=False), sql_reply("SELECT * FROM Artist"))
    assert record.ok and "no_star" not in [s.node for s in record.trace]  # type: ignore[attr-defined]


def test_apply_checks_runs_them_in_order_and_stops_at_a_problem(settings: Settings, no_star_check: None) -> None:
    with Assistant.open(settings, llm=ScriptedChatModel()) as assistant:
        ctx = RunContext(assistant.deps, WithNoStar(no_star=True))  # type: ignore[attr-defined]
        fixed, problem = apply_checks(WRONG_ALIAS, ctx, ("fix_qualifiers", "no_star"))
        assert "T1.Name" in fixed and problem is None
        _, problem = apply_checks("SELECT * FROM Artist", ctx, ("fix_qualifiers", "no_star"))
        assert problem is not None and "SELECT *" in problem


def test_a_name_that_is_not_a_check_is_refused() -> None:
    with pytest.raises(KeyError, match="not a check"):
        check_function("generate")


def test_a_check_that_raises_is_skipped_and_the_question_is_answered(
    settings: Settings, no_star_check: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(sql: str, ctx: RunContext) -> CheckOutput:
        raise RuntimeError("boom")

    monkeypatch.setattr(sys.modules["agent.nodes.no_star"], "check", broken)
    check_function.cache_clear()
    record, _ = ask(settings, WithNoStar(answer=False, no_star=True), sql_reply("SELECT COUNT(*) FROM Artist"))
    assert record.ok and record.rows == [[275]]  # type: ignore[attr-defined]
    (step,) = [s for s in record.trace if s.node == "no_star"]  # type: ignore[attr-defined]
    assert step.error is not None and "failed and was skipped: boom" in step.error
