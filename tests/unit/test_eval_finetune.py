"""Fine-tuning export: the agent's own prompt, only correct answers from a run, and the format check."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from agent.service import Assistant
from agent.testing import ScriptedChatModel
from cli.eval_commands import register as add_commands
from core.config import Settings, Techniques
from evals import finetune
from evals.runner import QuestionResult, ResultStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "eval"
SPIDER = FIXTURES / "spider" / "questions.json"
TINY = FIXTURES / "spider" / "database" / "tiny" / "tiny.sqlite"
URL = f"sqlite:///{TINY}"


def result(qid: str, question: str, prediction: str | None, match: bool, config: str = "baseline") -> QuestionResult:
    return QuestionResult(
        config=config, qid=qid, db_id="tiny", db_url=URL, question=question, gold="SELECT 1", hardness="easy",
        prediction=prediction, match=match, exact_match=False, executed=prediction is not None, error=None,
        error_kind=None, exec_error=None, gold_error=None, seconds=1.0, model_calls=1, prompt_tokens=10,
        completion_tokens=5, retrieval=None, answer=None, columns=[], rows=[], techniques={},
    )


def make_run(run_dir: Path) -> None:
    base = ResultStore(run_dir / "baseline.jsonl")
    base.append(result("tiny/0", "How many singers are there?", "SELECT COUNT(*) FROM singer", True))
    base.append(result("tiny/1", "Singers from France?", "SELECT name FROM singer WHERE country = 'Spain'", False))
    base.append(result("tiny/2", "Oldest singer?", None, False))
    repair = ResultStore(run_dir / "+repair.jsonl")
    repair.append(result("tiny/0", "How many singers are there?", "SELECT count(*) FROM singer", True, "+repair"))
    repair.append(result("tiny/2", "Oldest singer?", "SELECT name FROM singer ORDER BY age DESC LIMIT 1", True,
                         "+repair"))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sqlsage")
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def test_the_prompt_is_exactly_the_agents_own(tmp_path: Path) -> None:
    model = ScriptedChatModel().enqueue("```sql\nSELECT COUNT(*) FROM singer\n```")
    settings = Settings(db_url=URL, data_dir=tmp_path, cache_dir=tmp_path)
    with Assistant.open(settings, llm=model) as assistant:
        assistant.ask("How many singers are there?", Techniques(repair=False, answer=False))
    sent = [str(m.content) for m in model.history[0]]
    example = finetune.Example("tiny", URL, "How many singers are there?", "SELECT COUNT(*) FROM singer")
    messages = finetune.PromptBuilder().messages(example)
    assert [m["content"] for m in messages[:2]] == sent
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[2]["content"] == "```sql\nSELECT COUNT(*) FROM singer\n```"


def test_export_from_a_run_keeps_only_correct_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    make_run(run_dir)
    out = tmp_path / "ft.jsonl"
    args = parser().parse_args(["export-finetune", "--from-run", str(run_dir), "--out", str(out)])
    assert args.func(args) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    # tiny/0 once (right in both configurations), tiny/2 from +repair; the wrong tiny/1 left out
    assert [m["messages"][1]["content"].rsplit("Question: ", 1)[1] for m in lines] == [
        "How many singers are there?", "Oldest singer?"]
    assert "ORDER BY age DESC LIMIT 1" in lines[1]["messages"][2]["content"]
    printed = capsys.readouterr().out
    assert "wrote 2 example(s)" in printed and "no format errors" in printed and "characters/4" in printed
    report = finetune.validate_finetune_file(out)
    assert report.ok and report.examples == 2 and report.over_limit == 0


def test_export_from_spider_data_with_gold_sql_and_a_limit(tmp_path: Path) -> None:
    out = tmp_path / "ft.jsonl"
    args = parser().parse_args(["export-finetune", "--data", str(SPIDER), "--out", str(out), "--limit", "4"])
    assert args.func(args) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 4
    assert "SELECT count(*) FROM singer" in json.loads(lines[0])["messages"][2]["content"]


def test_heldout_databases_are_left_out_of_spider_exports() -> None:
    from evals.dataset import EvalQuestion

    questions = [EvalQuestion("a/0", "allergy_1", "q", "SELECT 1", URL),
                 EvalQuestion("b/0", "other", "q", "SELECT 1", URL)]
    assert [e.db_id for e in finetune.examples_from_questions(questions)] == ["other"]
    assert len(finetune.examples_from_questions(questions, include_heldout=True)) == 2


def test_the_validator_catches_broken_examples(tmp_path: Path) -> None:
    good = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                         {"role": "assistant", "content": "a"}]}
    bad = [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": ""},
                      {"role": "assistant", "content": "a"}]},  # empty content
        {"messages": [{"role": "robot", "content": "s"}, {"role": "assistant", "content": "a"}]},  # bad role
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},  # no assistant
        {"messages": [{"role": "user", "content": "u", "mood": "x"}, {"role": "assistant", "content": "a"}]},
        {"prompt": "old format"},
    ]
    path = tmp_path / "ft.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in [good, *bad]) + "\n{not json\n")
    report = finetune.validate_finetune_file(path)
    assert not report.ok
    assert report.examples == 7
    assert dict(report.errors) == {
        "missing_content": 1, "unrecognized_role": 1, "example_missing_assistant_message": 1,
        "message_unrecognized_key": 1, "unrecognized_example_key": 1, "missing_messages_list": 1,
        "json_parse_error": 1,
    }
    assert (3, "unrecognized_role") in report.error_lines
    assert len(report.tokens) == 1  # only the good example is counted
    assert "json_parse_error: 1" in report.summary()


def test_token_counts_and_the_limit(tmp_path: Path) -> None:
    long = {"messages": [{"role": "user", "content": "x" * 70_000}, {"role": "assistant", "content": "y" * 8}]}
    path = tmp_path / "ft.jsonl"
    path.write_text(json.dumps(long) + "\n")
    report = finetune.validate_finetune_file(path)
    assert report.ok and report.over_limit == 1
    assert report.tokens == [3 + (3 + 17_500 + 1) + (3 + 2 + 3)]  # priming + per message (content + role)
