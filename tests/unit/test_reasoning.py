"""Chain-of-thought plans checked against the schema, and self-consistency by result-set vote."""

from __future__ import annotations

import json

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.nodes.generate import sample
from agent.nodes.vote import choose
from agent.plan import PLAN_SCHEMA, Plan, check_plan, parse_plan
from agent.service import Assistant
from agent.state import Candidate
from agent.testing import ScriptedChatModel
from core.config import Settings, Techniques
from core.db import Database


def plan_reply(sql: str, columns: list[str], tables: list[str], joins: list[str] | None = None) -> str:
    return json.dumps({"columns": columns, "tables": tables, "joins": joins or [], "sql": sql})


def sql_reply(sql: str) -> str:
    return f"```sql\n{sql}\n```"


def test_parse_plan_tolerates_text_around_the_json() -> None:
    plan = parse_plan('Sure: {"columns": ["Artist.Name"], "tables": ["Artist"], "joins": [], "sql": "SELECT 1"} ok')
    assert plan == Plan(columns=("Artist.Name",), tables=("Artist",), joins=(), sql="SELECT 1")
    assert parse_plan("no json here") is None
    assert parse_plan('{"columns": [], "sql": ""}') is None


def test_check_plan_names_what_does_not_exist_with_the_closest_names(settings: Settings) -> None:
    schema = Database.open(settings.db_url).schema()
    plan = Plan(columns=("Customer.Country", "Country.Name", "Track.Nme"), tables=("Customer", "Country"),
                joins=("Customer.Country = Country.Country",), sql="SELECT 1")
    problems = " ".join(check_plan(plan, schema))
    assert "There is no table Country" in problems
    assert "Track has no column Nme" in problems and "Name" in problems
    assert check_plan(Plan(columns=("Artist.Name",), tables=("Artist",), joins=(), sql="SELECT 1"), schema) == []


def test_cot_plan_is_in_the_trace_and_uses_a_json_schema(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(plan_reply("SELECT COUNT(*) FROM Artist", ["Artist.ArtistId"], ["Artist"]))
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many artists?", Techniques(cot=True, answer=False))
    assert record.ok and record.rows == [[275]]
    generate = next(s for s in record.trace if s.node == "generate")
    assert generate.output.plan["tables"] == ["Artist"]
    assert model.kwargs_history[0]["response_format"]["type"] == "json_schema"


def test_a_plan_with_unknown_names_goes_to_repair_with_the_real_names(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(
        plan_reply("SELECT COUNT(*) FROM Customer JOIN Country ON 1", ["Customer.Country"], ["Customer", "Country"]),
        sql_reply("SELECT COUNT(*) FROM Customer WHERE Country = 'Brazil'"),
    )
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many customers live in Brazil?", Techniques(cot=True, answer=False))
    assert record.ok and record.rows == [[5]]
    assert "There is no table Country" in str(model.history[1][-1].content)


def test_without_repair_a_bad_plan_is_noted_and_its_sql_still_runs(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(plan_reply("SELECT COUNT(*) FROM Artist", ["Artist.Nope"], ["Artist"]))
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("x", Techniques(cot=True, repair=False, answer=False))
    assert record.ok and record.rows == [[275]]


def test_self_consistency_votes_by_result_not_by_sql_text(settings: Settings) -> None:
    # Two differently written queries with the same result outvote a third.
    model = ScriptedChatModel().enqueue(
        sql_reply("SELECT COUNT(*) FROM Artist"),
        sql_reply("SELECT COUNT(ArtistId) FROM Artist"),
        sql_reply("SELECT COUNT(*) FROM Album"),
    )
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many artists?", Techniques(self_consistency=3, answer=False))
    assert record.ok and record.rows == [[275]]
    nodes = [s.node for s in record.trace]
    assert nodes.count("sample") == 1 and nodes.count("execute") == 3 and nodes[-2:] == ["vote", "answer"]
    vote = record.trace[-2]
    assert vote.output.groups[0]["size"] == 2
    # one request for all candidates: the server reads the prompt once
    assert len(model.history) == 1 and model.kwargs_history[0]["n"] == 3
    assert model.kwargs_history[0]["temperature"] > 0


def test_with_sc_repair_each_candidates_repair_themselves_and_failures_do_not_vote(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(
        sql_reply("SELECT COUNT(*) FROM Artists"), "no sql here",  # the two samples
        sql_reply("SELECT COUNT(*) FROM Artist"), sql_reply("SELECT COUNT(*) FROM Artist"),  # their repairs
    )
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many artists?", Techniques(self_consistency=2, max_repairs=1, answer=False,
                                                               sc_repair_each=True))
    assert record.ok and record.rows == [[275]]
    assert [s.node for s in record.trace].count("repair") == 2


def test_failed_candidates_are_not_repaired_while_another_one_ran(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(sql_reply("SELECT COUNT(*) FROM Artists"),  # fails, and just loses
                                        sql_reply("SELECT COUNT(*) FROM Artist"))
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many artists?", Techniques(self_consistency=2, answer=False))
    assert record.ok and record.rows == [[275]]
    nodes = [s.node for s in record.trace]
    assert "repair" not in nodes and nodes[-2:] == ["vote", "answer"] and len(model.history) == 1
    assert record.trace[-2].output.failed[0]["sql"] == "SELECT COUNT(*) FROM Artists"


def test_when_no_candidate_ran_the_chosen_one_is_repaired_once(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(
        sql_reply("SELECT COUNT(*) FROM Artists"), sql_reply("SELECT COUNT(*) FROM Singers"),  # both fail
        sql_reply("SELECT COUNT(*) FROM Artist"),  # the one repair, of the chosen (first) candidate
    )
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("How many artists?", Techniques(self_consistency=2, answer=False))
    assert record.ok and record.rows == [[275]]
    nodes = [s.node for s in record.trace]
    assert nodes.count("repair") == 1 and nodes[nodes.index("vote") + 1] == "repair"
    repair_prompt = str(model.history[1][-1].content)
    assert "FROM Artists" in repair_prompt and "no such table" in repair_prompt.lower()
    assert record.sql == "SELECT COUNT(*) FROM Artist"


def test_the_greedy_draft_joins_the_vote(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(sql_reply("SELECT 2"), sql_reply("SELECT 3"))
    with Assistant.open(settings, llm=model) as assistant:
        runtime = Runtime(context=RunContext(assistant.deps, Techniques(self_consistency=2)))
        update = sample({"question": "q", "schema_text": "", "draft_sql": "SELECT 1"}, runtime)
    assert [s["sql"] for s in update["samples"]] == ["SELECT 1", "SELECT 2", "SELECT 3"]
    assert update["samples"][0]["temperature"] == 0.0


def test_all_candidates_failing_is_a_clear_error(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue(sql_reply("SELECT nope FROM Artist"), sql_reply("SELECT nada FROM Artist"))
    with Assistant.open(settings, llm=model) as assistant:
        record = assistant.ask("x", Techniques(self_consistency=2, repair=False, answer=False))
    assert not record.ok and "no such column" in (record.error or "")


def cand(index: int, rows: list[list[object]], sql: str = "SELECT x", error: str | None = None,
         plan_ok: bool | None = None) -> Candidate:
    return {"index": index, "temperature": 0.0 if index == 0 else 0.8, "sql": sql, "plan_ok": plan_ok,
            "columns": ["c"] if rows or not error else [], "rows": rows, "truncated": False, "error": error}


def test_vote_rules() -> None:
    # the larger group wins, whatever the SQL text
    winner, groups = choose([cand(0, [[1]]), cand(1, [[2]]), cand(2, [[2.0]])])
    assert winner["index"] in (1, 2) and len(groups[0]) == 2
    # rows beat an empty result even when the empty group is larger
    winner, _ = choose([cand(0, []), cand(1, []), cand(2, [[7]])])
    assert winner["index"] == 2
    # a tie goes to the group with the greedy candidate
    winner, _ = choose([cand(1, [[1]]), cand(0, [[2]])])
    assert winner["index"] == 0
    # within a group a validated plan beats the greedy candidate
    winner, _ = choose([cand(0, [[1]], plan_ok=False), cand(1, [[1]], plan_ok=True)])
    assert winner["index"] == 1
    # failures do not vote; with none working, the greedy candidate's error is reported
    winner, groups = choose([cand(0, [], error="boom"), cand(1, [], error="bang")])
    assert winner["index"] == 0 and groups == []


def test_the_plan_schema_is_the_one_the_server_constrains_replies_to() -> None:
    """Generated from the pydantic model: properties in the order the model writes them, all required,
    nothing else allowed, and no generated titles."""
    assert PLAN_SCHEMA == {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}, "description": "Table.column needed"},
            "tables": {"type": "array", "items": {"type": "string"}},
            "joins": {"type": "array", "items": {"type": "string"}, "description": "Table.key = Table.key"},
            "sql": {"type": "string"},
        },
        "required": ["columns", "tables", "joins", "sql"],
        "additionalProperties": False,
    }
    assert list(PLAN_SCHEMA["properties"]) == ["columns", "tables", "joins", "sql"]
