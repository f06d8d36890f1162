"""Escalation: the zero-shot SQL is answered when it is good enough, and only the rest pays for the
costly techniques. A scripted model gives each reply a log-probability."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.confidence import sql_confidence
from agent.service import Assistant
from agent.testing import Scored, ScriptedChatModel
from core.config import Settings, Techniques


def sql_reply(sql: str) -> str:
    return f"```sql\n{sql}\n```"


def sure(sql: str) -> Scored:
    return Scored(sql_reply(sql), -0.01)


def unsure(sql: str) -> Scored:
    return Scored(sql_reply(sql), -3.0)


ESCALATE_TO_SC = Techniques.minimal(escalate=True, escalate_min_logprob=-1.0, self_consistency=2, answer=False)


def ask(settings: Settings, techniques: Techniques, *replies: object, question: str = "How many artists?",
        **open_kwargs: object):  # type: ignore[no-untyped-def]
    model = ScriptedChatModel().enqueue(*replies)  # type: ignore[arg-type]
    with Assistant.open(settings, llm=model, **open_kwargs) as assistant:  # type: ignore[arg-type]
        return assistant.ask(question, techniques), model


def nodes(record) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.node for s in record.trace]


def step(record, node: str):  # type: ignore[no-untyped-def]
    return next(s for s in record.trace if s.node == node)


# -- the confidence of a reply's SQL ---------------------------------------------------------------


def test_confidence_counts_only_the_tokens_of_the_sql() -> None:
    text = "Sure!\n```sql\nSELECT name FROM t\n```"
    tokens = [("Sure", -5.0), ("!\n", -4.0), ("```sql\n", -0.1), ("SELECT", -0.01), (" name", -0.7),
              (" FROM", -0.02), (" t", -0.3), ("\n```", -2.0)]
    confidence = sql_confidence(text, tokens, "SELECT name FROM t")
    assert confidence is not None
    assert confidence.min_logprob == -0.7 and confidence.weakest == " name" and confidence.tokens == 4
    assert confidence.mean_logprob == pytest.approx((-0.01 - 0.7 - 0.02 - 0.3) / 4)


def test_confidence_when_a_stop_sequence_cut_the_text() -> None:
    text = "```sql\nSELECT 1;"  # the server stopped at the closing fence and dropped the token holding ";"
    tokens = [("```sql\n", -0.1), ("SELECT", -0.2), (" 1", -0.4)]
    confidence = sql_confidence(text, tokens, "SELECT 1;")
    assert confidence is not None and confidence.min_logprob == -0.4 and confidence.tokens == 2


@pytest.mark.parametrize("tokens, sql", [
    ([], "SELECT 1"),  # the endpoint sent none
    ([("SELECT", -0.1), (" 2", -0.1)], "SELECT 1"),  # tokens of another text
    ([("SELECT", -0.1), (" 1", -0.1)], None),  # no SQL in the reply
])
def test_no_confidence_without_matching_tokens(tokens: list[tuple[str, float]], sql: str | None) -> None:
    assert sql_confidence("SELECT 1", tokens, sql) is None


# -- the graph ---------------------------------------------------------------------------------------


def test_a_sure_zero_shot_answer_costs_one_call(settings: Settings) -> None:
    record, model = ask(settings, ESCALATE_TO_SC, sure("SELECT COUNT(*) FROM Artist"))
    assert record.ok and record.rows == [[275]]
    assert nodes(record) == ["context", "generate", "validate", "fix_qualifiers", "execute", "answer"]
    assert len(model.history) == 1
    assert model.kwargs_history[0].get("logprobs") is True  # the zero-shot try asks how sure the model is
    assert step(record, "generate").output.confidence["min_logprob"] == pytest.approx(-0.01)


def test_an_unsure_answer_escalates_and_its_sql_joins_the_vote(settings: Settings) -> None:
    record, model = ask(settings, ESCALATE_TO_SC, unsure("SELECT COUNT(*) FROM Album"),
                        sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) AS n FROM Artist"))
    assert record.ok and record.rows == [[275]]  # two samples agree against the unsure zero-shot SQL
    assert nodes(record)[:7] == ["context", "generate", "validate", "fix_qualifiers", "execute", "escalate", "sample"]
    escalated = step(record, "escalate")
    assert "unsure" in escalated.output.reason and escalated.output.draft_sql == "SELECT COUNT(*) FROM Album"
    assert step(record, "vote").output.all_sql["0"] == "SELECT COUNT(*) FROM Album"  # the draft voted
    assert len(model.history) == 2 and not model.kwargs_history[1].get("logprobs")


def test_an_empty_result_escalates(settings: Settings) -> None:
    record, _ = ask(settings, ESCALATE_TO_SC, sure("SELECT Name FROM Artist WHERE Name = 'Nobody'"),
                    sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"))
    assert step(record, "escalate").output.reason == "it returned no rows"
    assert record.rows == [[275]]


def test_a_failed_zero_shot_try_escalates_instead_of_being_repaired(settings: Settings) -> None:
    record, _ = ask(settings, ESCALATE_TO_SC, sure("SELECT COUNT(*) FROM Artists"),
                    sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"))
    assert record.ok and record.rows == [[275]]
    assert "repair" not in nodes(record)
    escalated = step(record, "escalate")
    assert escalated.output.reason == "it failed (database)"
    assert escalated.output.draft_sql == "SELECT COUNT(*) FROM Artists"  # it runs: it may still vote


def test_sql_that_does_not_parse_is_no_draft(settings: Settings) -> None:
    record, _ = ask(settings, ESCALATE_TO_SC, sure("SELECT COUNT(* FROM Artist"),
                    sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"))
    assert record.ok and step(record, "escalate").output.draft_sql is None
    assert len(step(record, "vote").output.all_sql) == 2


def test_a_write_stops_at_once(settings: Settings) -> None:
    record, model = ask(settings, ESCALATE_TO_SC, sure("DELETE FROM Artist"))
    assert not record.ok and "Refused" in (record.error or "")
    assert "escalate" not in nodes(record) and len(model.history) == 1


def test_without_log_probabilities_a_query_with_rows_is_answered(settings: Settings) -> None:
    model = ScriptedChatModel(sends_logprobs=False).enqueue(unsure("SELECT COUNT(*) FROM Artist"))
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many artists?", ESCALATE_TO_SC)
    assert record.ok and "escalate" not in nodes(record)
    assert step(record, "generate").output.confidence is None


def test_without_a_floor_no_log_probabilities_are_asked_for(settings: Settings) -> None:
    techniques = ESCALATE_TO_SC.model_copy(update={"escalate_min_logprob": None})
    record, model = ask(settings, techniques, unsure("SELECT COUNT(*) FROM Artist"))
    assert record.ok and "escalate" not in nodes(record)  # it ran and returned rows: kept
    assert not model.kwargs_history[0].get("logprobs")  # an endpoint without them still works
    assert step(record, "generate").output.confidence is None


def test_the_threshold_is_inclusive(settings: Settings) -> None:
    techniques = ESCALATE_TO_SC.model_copy(update={"escalate_min_logprob": -3.0})
    record, _ = ask(settings, techniques, unsure("SELECT COUNT(*) FROM Artist"))
    assert record.ok and "escalate" not in nodes(record)


CHECKED = Techniques.minimal(escalate=True, escalate_check=2, self_consistency=2, answer=False)


def test_samples_that_return_the_same_rows_confirm_the_answer(settings: Settings) -> None:
    record, model = ask(settings, CHECKED, sql_reply("SELECT COUNT(*) FROM Artist"),
                        sql_reply("SELECT COUNT(ArtistId) FROM Artist"), sql_reply("SELECT COUNT(*) AS n FROM Artist"))
    assert record.ok and record.rows == [[275]]
    assert nodes(record) == ["context", "generate", "validate", "fix_qualifiers", "execute", "confirm", "answer"]
    checked = step(record, "confirm")
    assert checked.output.confirmed is True and [s["agrees"] for s in checked.output.samples] == [True, True]
    assert model.kwargs_history[1]["n"] == 2 and model.kwargs_history[1]["temperature"] == CHECKED.sc_temperature
    assert str(model.history[1][-1].content) == str(model.history[0][-1].content)  # the same zero-shot prompt


@pytest.mark.parametrize("other", ["SELECT COUNT(*) FROM Album", "SELECT COUNT(*) FROM Artists", "DELETE FROM Artist"])
def test_a_sample_with_other_rows_or_none_escalates(settings: Settings, other: str) -> None:
    record, model = ask(settings, CHECKED, sql_reply("SELECT COUNT(*) FROM Artist"),
                        sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply(other),
                        sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"))
    assert record.ok and record.rows == [[275]]
    assert nodes(record)[5:8] == ["confirm", "escalate", "sample"]
    assert step(record, "escalate").output.reason == "a zero-shot sample returned other rows"
    assert step(record, "confirm").output.samples[1]["agrees"] is False
    assert len(model.history) == 3


def test_samples_are_compared_with_the_rows_as_the_agent_keeps_them(tmp_path: Path) -> None:
    """A value the agent turns into text (here a BLOB) must compare alike in the answer and the sample."""
    path = tmp_path / "blobs.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (b BLOB)")
        conn.execute("INSERT INTO t VALUES (x'616263')")
    settings = Settings(db_url=f"sqlite:///{path}", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    record, _ = ask(settings, CHECKED, sql_reply("SELECT b FROM t"), sql_reply("SELECT b FROM t"),
                    sql_reply("SELECT t.b FROM t"), question="What is stored?")
    assert record.ok and step(record, "confirm").output.confirmed is True
    assert "escalate" not in nodes(record)


def test_with_nothing_to_escalate_to_the_switch_changes_nothing(settings: Settings) -> None:
    techniques = Techniques(escalate=True, few_shot=2, answer=False)  # one candidate, no knowledge store
    record, model = ask(settings, techniques, unsure("SELECT COUNT(*) FROM Artists"),
                        sql_reply("SELECT COUNT(*) FROM Artist"))
    assert nodes(record) == ["context", "generate", "validate", "fix_qualifiers", "execute", "repair", "validate",
                             "fix_qualifiers", "execute", "answer"]
    assert not model.kwargs_history[0].get("logprobs")


# -- with the knowledge store (the ``knowledge`` fixture of tests/unit/conftest.py) -------------------------


FULL_ESCALATING = Techniques.minimal(escalate=True, escalate_min_logprob=-1.0, few_shot=2, hyde=True, difficulty=True,
                             values=True, self_consistency=2, same_db_examples=False, answer=False)


def test_a_sure_answer_skips_retrieval(settings: Settings, knowledge: object) -> None:
    record, model = ask(settings, FULL_ESCALATING, sure("SELECT COUNT(*) FROM Artist"), knowledge=knowledge)
    assert record.ok and nodes(record) == ["context", "generate", "validate", "fix_qualifiers", "execute", "answer"]
    assert len(model.history) == 1


def test_an_escalated_question_gets_examples_without_a_second_draft(settings: Settings, knowledge: object) -> None:
    record, model = ask(settings, FULL_ESCALATING, unsure("SELECT COUNT(*) FROM Album"),
                        sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"),
                        knowledge=knowledge)
    assert record.ok and record.rows == [[275]]
    assert nodes(record)[5:8] == ["escalate", "retrieve", "sample"]
    retrieve = step(record, "retrieve")
    assert retrieve.model_calls == 0  # the zero-shot try is the HyDE draft: no second greedy call
    assert retrieve.output.predicted_hardness == "easy" and retrieve.output.examples
    assert "singers" in str(model.history[1][-1].content)  # the examples reach the sampled prompt
    assert len(model.history) == 2


def test_a_first_try_with_examples_then_more_of_them_when_escalated(settings: Settings, knowledge: object) -> None:
    techniques = FULL_ESCALATING.model_copy(update={"escalate_min_logprob": None, "first_try_examples": 1})
    record, model = ask(settings, techniques, sql_reply("SELECT COUNT(*) FROM Artists"),
                        sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"),
                        knowledge=knowledge)
    assert record.ok and record.rows == [[275]]
    assert nodes(record)[:8] == ["context", "retrieve", "generate", "validate", "fix_qualifiers", "execute", "escalate",
                                 "retrieve"]
    first, second = (s for s in record.trace if s.node == "retrieve")
    assert len(first.output.examples) == 1 and first.model_calls == 0  # no HyDE draft: the first try is it
    assert len(second.output.examples) == 2 and second.model_calls == 0
    assert model.kwargs_history[0].get("n") is None and model.kwargs_history[1]["n"] == 2  # greedy, then samples
    assert str(model.history[0][-1].content).count("Question:") == 2  # one example, then the question


def test_a_sure_first_try_with_examples_is_answered(settings: Settings, knowledge: object) -> None:
    techniques = FULL_ESCALATING.model_copy(update={"escalate_min_logprob": None, "first_try_examples": 1})
    record, model = ask(settings, techniques, sql_reply("SELECT COUNT(*) FROM Artist"), knowledge=knowledge)
    assert nodes(record) == ["context", "retrieve", "generate", "validate", "fix_qualifiers", "execute", "answer"]
    assert len(model.history) == 1
