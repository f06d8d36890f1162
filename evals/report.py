"""Figures of a run and the files they go into: report.json, report.md and accuracy.png.

:func:`summarize` turns one configuration's results into its row of the ladder (with the official
evaluator's figure and the failure map); the rest renders.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.db import jsonable
from core.sqlshape import HARDNESS_LEVELS
from evals.failures import CATEGORIES
from evals.retrieval import RetrievalScores, example_scores, mean_scores
from evals.runner import QuestionResult

BASELINE = "baseline"
WORST_FAILURES = 10
# A miss recorded before the failure map, with no SQLite file to re-run it on (see evals.runner.backfill).
UNKNOWN_FAILURE = "unknown"
FAILURE_LABELS: dict[str, str] = {**CATEGORIES, UNKNOWN_FAILURE: "unknown (recorded before the failure map)"}


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), interpolating linearly between ranks; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _mean(values: Sequence[float]) -> float | None:
    return float(statistics.fmean(values)) if values else None


@dataclass
class ConfigSummary:
    """One configuration's row of the ladder. Accuracy is execution accuracy (share of matches)."""

    config: str
    n: int
    correct: int
    accuracy: float | None
    by_hardness: dict[str, dict[str, float | int | None]]  # level -> {"n", "correct", "accuracy"}
    exact_match: float | None
    exec_rate: float | None  # share of predictions that ran without an error
    mean_calls: float | None
    mean_prompt_tokens: float | None
    mean_completion_tokens: float | None
    median_s: float | None
    p95_s: float | None
    retrieval: dict[str, float | None]
    examples: dict[str, float | None]  # how well the few-shot examples fit (evals.retrieval.example_scores)
    gold_errors: int  # gold queries that failed (scored as misses)
    agent_errors: dict[str, int]  # error kind -> count, for the questions the agent gave up on
    techniques: dict[str, Any]
    escalation: dict[str, float | int | None] = field(default_factory=dict)  # with escalate on: see _escalation
    delta_points: float | None = None  # accuracy minus the baseline's, in percentage points
    delta_by_hardness: dict[str, float | None] = field(default_factory=dict)
    # Against the most accurate configuration listed before this one (the ladder's "previous best"):
    prev_best: str | None = None
    delta_prev_best: float | None = None  # in percentage points
    gained: int | None = None  # questions this one gets right and the previous best wrong
    lost: int | None = None  # and the other way round
    # The official test-suite evaluator's figure (evals.accuracy.official_match), over the results that
    # have its verdict (all but lines recorded before it that could not be re-run):
    official_correct: int = 0
    official_scored: int = 0
    official_accuracy: float | None = None
    # The failure map: wrong answers per category (evals.failures.CATEGORIES, in its order, then
    # "unknown"), and the first wrong answer of each category: qid, question, gold, prediction, detail.
    failures: dict[str, int] = field(default_factory=dict)
    failure_examples: dict[str, dict[str, str | None]] = field(default_factory=dict)
    # Seconds until the result (the question's seconds less its written answer's, which a chat shows
    # after the result table) and of the written answer alone; None without the answer step.
    median_result_s: float | None = None
    median_answer_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def answer_seconds(result: QuestionResult) -> float | None:
    """The written answer's seconds (its model call), None when the answer step made no call."""
    steps = [s for s in result.trace if s.get("node") == "answer" and s.get("model_calls")]
    return sum(float(s.get("duration_s") or 0.0) for s in steps) if steps else None


def summarize(config: str, results: Sequence[QuestionResult]) -> ConfigSummary:
    n = len(results)

    def share(flags: Sequence[bool]) -> float | None:
        return sum(flags) / len(flags) if flags else None

    by_hardness: dict[str, dict[str, float | int | None]] = {}
    for level in HARDNESS_LEVELS:
        subset = [r for r in results if r.hardness == level]
        by_hardness[level] = {"n": len(subset), "correct": sum(r.match for r in subset),
                              "accuracy": share([r.match for r in subset])}
    seconds = [r.seconds for r in results]
    retrieval = [RetrievalScores(**r.retrieval) if r.retrieval else None for r in results]
    official = [r.official_match for r in results if r.official_match is not None]
    failures, failure_examples = failure_map(results)
    answers = [answer_seconds(r) for r in results]
    written = [a for a in answers if a is not None]
    to_result = [r.seconds - (a or 0.0) for r, a in zip(results, answers, strict=True)]
    return ConfigSummary(
        config=config, n=n, correct=sum(r.match for r in results), accuracy=share([r.match for r in results]),
        by_hardness=by_hardness, exact_match=share([r.exact_match for r in results]),
        exec_rate=share([r.executed for r in results]),
        mean_calls=_mean([r.model_calls for r in results]),
        mean_prompt_tokens=_mean([r.prompt_tokens for r in results]),
        mean_completion_tokens=_mean([r.completion_tokens for r in results]),
        median_s=float(statistics.median(seconds)) if seconds else None, p95_s=percentile(seconds, 95),
        retrieval=mean_scores(retrieval), examples=_example_means(results),
        gold_errors=sum(r.gold_error is not None for r in results),
        agent_errors=dict(Counter(r.error_kind or "error" for r in results if r.error)),
        techniques=results[0].techniques if results else {},
        escalation=_escalation(results),
        official_correct=sum(official), official_scored=len(official), official_accuracy=share(official),
        failures=failures, failure_examples=failure_examples,
        median_result_s=float(statistics.median(to_result)) if written else None,
        median_answer_s=float(statistics.median(written)) if written else None,
    )


def failure_map(results: Sequence[QuestionResult]) -> tuple[dict[str, int], dict[str, dict[str, str | None]]]:
    """The wrong answers counted by failure category, in the categories' priority order, and the first
    wrong answer of each category."""
    counts: Counter[str] = Counter()
    examples: dict[str, dict[str, str | None]] = {}
    for r in results:
        if r.match:
            continue
        key = r.failure or UNKNOWN_FAILURE
        counts[key] += 1
        examples.setdefault(key, {"qid": r.qid, "question": r.question, "gold": r.gold, "prediction": r.prediction,
                                  "detail": r.failure_detail})
    order = [k for k in FAILURE_LABELS if k in counts] + sorted(counts.keys() - FAILURE_LABELS.keys())
    return {k: counts[k] for k in order}, {k: examples[k] for k in order}


def _escalation(results: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    """With ``escalate`` on: how many questions the first try answered (kept) and how many escalated,
    the accuracy and median seconds of each part. Empty for a configuration without it."""
    if not results or not results[0].techniques.get("escalate"):
        return {}
    escalated = [r for r in results if any(s.get("node") == "escalate" for s in r.trace)]
    kept = [r for r in results if r not in escalated]

    def part(name: str, subset: Sequence[QuestionResult]) -> dict[str, float | int | None]:
        seconds = [r.seconds for r in subset]
        return {name: len(subset), f"{name}_accuracy": sum(r.match for r in subset) / len(subset) if subset else None,
                f"{name}_median_s": float(statistics.median(seconds)) if seconds else None}

    return {**part("kept", kept), **part("escalated", escalated), "escalated_share": len(escalated) / len(results)}


def _example_means(results: Sequence[QuestionResult]) -> dict[str, float | None]:
    scored = [example_scores(r.trace, r.gold) for r in results]
    shown = [x for x in scored if x is not None]
    keys = ("example_skeleton_precision", "example_skeleton_hit", "example_hardness_precision")
    return {k: (sum(x[k] for x in shown) / len(shown) if shown else None) for k in keys}


def _points(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else 100 * (a - b)


def summarize_ladder(runs: Mapping[str, Sequence[QuestionResult]]) -> list[ConfigSummary]:
    """One summary per configuration, with its difference to the baseline (``baseline`` if it ran,
    else the first configuration)."""
    summaries = [summarize(name, results) for name, results in runs.items()]
    if not summaries:
        return summaries
    base = next((s for s in summaries if s.config == BASELINE), summaries[0])
    best: ConfigSummary | None = None
    for s in summaries:
        s.delta_points = _points(s.accuracy, base.accuracy)
        s.delta_by_hardness = {
            level: _points(s.by_hardness[level]["accuracy"], base.by_hardness[level]["accuracy"])  # type: ignore[arg-type]
            for level in HARDNESS_LEVELS
        }
        if best is not None:
            s.prev_best, s.delta_prev_best = best.config, _points(s.accuracy, best.accuracy)
            s.gained, s.lost = paired(runs[s.config], runs[best.config])
        if s.accuracy is not None and (best is None or best.accuracy is None or s.accuracy > best.accuracy):
            best = s
    return summaries


def paired(results: Sequence[QuestionResult], other: Sequence[QuestionResult]) -> tuple[int, int]:
    """On the questions both answered: how many only ``results`` got right, and how many only ``other``."""
    theirs = {r.qid: r.match for r in other}
    shared = [r for r in results if r.qid in theirs]
    return (sum(r.match and not theirs[r.qid] for r in shared), sum(theirs[r.qid] and not r.match for r in shared))


# --------------------------------------------------------------------------------------------- text


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _delta(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def ladder_table(summaries: Sequence[ConfigSummary]) -> str:
    """The ladder: one row per configuration (markdown)."""
    header = ["config", "n", "EX", "EX (official)", "Δ pts", "Δ best before", *HARDNESS_LEVELS, "exact", "executed",
              "table P/R",
              "column P/R", "example skeleton P / hit", "calls", "prompt tok", "compl. tok", "median s", "p95 s",
              "median s to result"]
    rows = []
    for s in summaries:
        r = s.retrieval
        before = "–" if s.prev_best is None else f"{_delta(s.delta_prev_best)} vs {s.prev_best} (+{s.gained}/−{s.lost})"
        rows.append([
            s.config, str(s.n), _pct(s.accuracy), _official_cell(s), _delta(s.delta_points), before,
            *(_pct(s.by_hardness[level]["accuracy"]) for level in HARDNESS_LEVELS),  # type: ignore[arg-type]
            _pct(s.exact_match), _pct(s.exec_rate),
            f"{_pct(r['table_precision'])} / {_pct(r['table_recall'])}",
            f"{_pct(r['column_precision'])} / {_pct(r['column_recall'])}",
            "–" if s.examples.get("example_skeleton_precision") is None else
            f"{_pct(s.examples['example_skeleton_precision'])} / {_pct(s.examples['example_skeleton_hit'])}",
            _num(s.mean_calls, 2), _num(s.mean_prompt_tokens, 0), _num(s.mean_completion_tokens, 0),
            _num(s.median_s), _num(s.p95_s),
            _num(s.median_s if s.median_result_s is None else s.median_result_s),
        ])
    return _table(header, rows)


def _official_cell(s: ConfigSummary) -> str:
    if s.official_scored == s.n:
        return _pct(s.official_accuracy)
    return f"{_pct(s.official_accuracy)} (of {s.official_scored})"


def failure_table(summaries: Sequence[ConfigSummary]) -> str:
    """The failure map: wrong answers by category (rows, in priority order) and configuration (columns)."""
    present = {k for s in summaries for k in s.failures}
    keys = [k for k in FAILURE_LABELS if k in present] + sorted(present - FAILURE_LABELS.keys())
    rows = [[FAILURE_LABELS.get(k, k), *(str(s.failures.get(k, 0)) for s in summaries)] for k in keys]
    rows.append(["**wrong answers**", *(f"**{s.n - s.correct}**" for s in summaries)])
    return _table(["failure", *(s.config for s in summaries)], rows)


def failure_examples_text(summaries: Sequence[ConfigSummary]) -> str:
    """One example of each category, in the table's order: from the first configuration that has it."""
    first: dict[str, tuple[str, dict[str, str | None]]] = {}
    for s in summaries:
        for key, example in s.failure_examples.items():
            first.setdefault(key, (s.config, example))
    keys = [k for k in FAILURE_LABELS if k in first] + sorted(first.keys() - FAILURE_LABELS.keys())
    lines = []
    for key in keys:
        config, ex = first[key]
        lines.append(f"- **{FAILURE_LABELS.get(key, key)}** — {config}, {ex['qid']}: {ex['question']}  \n"
                     f"  gold `{_one_line(ex['gold'])}`  \n  predicted `{_one_line(ex['prediction'])}`"
                     + (f"  \n  {ex['detail']}" if ex.get("detail") else ""))
    return "\n".join(lines)


def _one_line(sql: str | None) -> str:
    return " ".join((sql or "(no SQL)").split()).replace("`", "'")


def hardness_table(summaries: Sequence[ConfigSummary]) -> str:
    """Accuracy by hardness: correct/n and the share, with the difference to the baseline (markdown)."""
    header = ["config", *(f"{level}" for level in HARDNESS_LEVELS), "all"]
    rows = []
    for s in summaries:
        cells = []
        for level in HARDNESS_LEVELS:
            h = s.by_hardness[level]
            delta = s.delta_by_hardness.get(level)
            extra = f" ({_delta(delta)})" if delta is not None and s.config != summaries[0].config else ""
            cells.append(f"{h['correct']}/{h['n']} = {_pct(h['accuracy'])}{extra}")  # type: ignore[arg-type]
        cells.append(f"{s.correct}/{s.n} = {_pct(s.accuracy)}")
        rows.append([s.config, *cells])
    return _table(header, rows)


def worst_failures(results: Sequence[QuestionResult], limit: int = WORST_FAILURES) -> list[QuestionResult]:
    """The misses most worth reading first: the easiest questions first, and among them the predictions
    that did not even run (no SQL, an error) before those that ran and returned the wrong rows."""
    misses = [r for r in results if not r.match and r.gold_error is None]
    rank: dict[str, int] = {level: i for i, level in enumerate(HARDNESS_LEVELS)}
    return sorted(misses, key=lambda r: (rank.get(r.hardness, len(rank)), r.executed, r.qid))[:limit]


def _fence(sql: str | None) -> str:
    return "```sql\n" + (sql or "-- (no SQL)").strip() + "\n```"


def failures_text(config: str, results: Sequence[QuestionResult], limit: int = WORST_FAILURES) -> str:
    worst = worst_failures(results, limit)
    if not worst:
        return f"### {config}\n\nNo failures."
    parts = [f"### {config}"]
    for r in worst:
        problem = r.error or r.exec_error or "ran, but returned other rows than the gold query"
        failure = FAILURE_LABELS.get(r.failure or UNKNOWN_FAILURE, r.failure)
        parts.append(
            f"**{r.qid}** ({r.hardness}) — {r.question}\n\n"
            f"gold:\n{_fence(r.gold)}\npredicted:\n{_fence(r.prediction)}\nproblem: {problem}  \n"
            f"failure: {failure}" + (f" — {r.failure_detail}" if r.failure_detail else "")
        )
    return "\n\n".join(parts)


def escalation_table(summaries: Sequence[ConfigSummary]) -> str:
    """For the configurations with escalation: the questions answered by the first try and the rest."""
    header = ["config", "kept (first try)", "EX kept", "median s kept", "escalated", "EX escalated",
              "median s escalated"]
    rows = [[s.config, str(e["kept"]), _pct(e["kept_accuracy"]), _num(e["kept_median_s"]),
             f"{e['escalated']} ({_pct(e['escalated_share'])})", _pct(e["escalated_accuracy"]),
             _num(e["escalated_median_s"])]
            for s in summaries if (e := s.escalation)]
    return _table(header, rows)


def ragas_table(ragas: Mapping[str, Any]) -> str:
    header = ["config", "metric", "mean", "scored", "judge errors", "not applicable", "errors by kind"]
    rows = []
    for config, result in ragas.items():
        for metric, m in result["metrics"].items():
            kinds = ", ".join(f"{k}: {v}" for k, v in m["errors_by_kind"].items()) or "–"
            rows.append([config, metric, _num(m["mean"], 3), str(m["scored"]), str(m["errors"]),
                         str(m["skipped"]), kinds])
    return _table(header, rows)


def markdown_report(summaries: Sequence[ConfigSummary], runs: Mapping[str, Sequence[QuestionResult]],
                    info: Mapping[str, Any], ragas: Mapping[str, Any] | None = None) -> str:
    lines = ["# Evaluation report", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += [
        "", "## Ladder", "",
        "EX is execution accuracy (Spider semantics, the headline figure); EX (official) the figure of the official "
        "test-suite evaluator's default rules, which are more lenient: DISTINCT removed from both queries, two empty "
        "results equal whatever their columns, row order compared whenever 'order by' appears in the gold text "
        "(\"of k\" when only k results have its verdict); Δ pts the difference to the baseline in percentage points; "
        "Δ best before the difference to the most accurate configuration listed above it (the previous best), "
        "with the questions only this one gets right / only that one gets right; "
        "exact is normalised exact string match; executed the share of predictions that ran; table/column P/R "
        "the share of the schema in the prompt that the gold query uses / of what it uses that was in the prompt; "
        "example skeleton P / hit the share of the few-shot examples shown with the gold query's SQL skeleton / "
        "the share of questions where at least one had it; "
        "calls and tokens are means per question; seconds are wall clock per question.", "",
        ladder_table(summaries), "", "## Accuracy by hardness", "", hardness_table(summaries), "",
        "## Failure map", "",
        "Every wrong answer under one category, computed from the predicted and gold SQL (sqlglot) and their "
        "results, no model: the first check that holds, in the order of the rows (evals/failures.py).", "",
        failure_table(summaries), "", failure_examples_text(summaries), "",
    ]
    if any(s.escalation for s in summaries):
        lines += ["## Escalation", "",
                  "With escalate on, the first try (one greedy call: zero-shot, or with first_try_examples) is kept "
                  "when it ran and returned rows (and, when the configuration checks it, zero-shot samples returned "
                  "the same rows, or its tokens were likely enough); the other questions escalate to the "
                  "configuration's other techniques.", "",
                  escalation_table(summaries), ""]
    gold_broken = max((s.gold_errors for s in summaries), default=0)
    if gold_broken:
        lines += [f"{gold_broken} gold quer(y/ies) failed to run and count as misses.", ""]
    if ragas:
        lines += [
            "## RAGAS (LLM-judged)", "",
            "Judged by the model under test, a small local model: read these as rough signals. A judge call that "
            "failed or returned output that does not parse is not a score (it is counted under judge errors).",
            "", ragas_table(ragas), "",
        ]
    lines += ["## Worst failures", ""]
    lines += [failures_text(name, results) + "\n" for name, results in runs.items()]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------------------------- chart


def plot_accuracy(summaries: Sequence[ConfigSummary], path: Path) -> Path:
    """A grouped bar chart: accuracy per configuration, by hardness and overall."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [*HARDNESS_LEVELS, "all"]
    width = 0.8 / max(1, len(summaries))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) + 0.4 * len(summaries)), 4.2))
    for i, s in enumerate(summaries):
        values = [s.by_hardness[g]["accuracy"] for g in HARDNESS_LEVELS] + [s.accuracy]
        xs = [g + (i - (len(summaries) - 1) / 2) * width for g in range(len(groups))]
        heights = [100 * (v or 0.0) for v in values]  # type: ignore[operator]
        bars = ax.bar(xs, heights, width, label=s.config)
        ax.bar_label(bars, labels=[f"{h:.0f}" if v is not None else "" for h, v in zip(heights, values, strict=True)],
                     fontsize=7, padding=1)
    counts = [summaries[0].by_hardness[g]["n"] for g in HARDNESS_LEVELS] + [summaries[0].n] if summaries else []
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={c})" for g, c in zip(groups, counts, strict=False)])
    ax.set_ylabel("execution accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Execution accuracy by hardness")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class ReportFiles:
    json: Path
    markdown: Path
    chart: Path


def write_reports(out_dir: Path, runs: Mapping[str, Sequence[QuestionResult]], info: Mapping[str, Any],
                  ragas: Mapping[str, Any] | None = None) -> tuple[list[ConfigSummary], ReportFiles]:
    """Write report.json, report.md and accuracy.png into ``out_dir``; return the summaries and paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = summarize_ladder(runs)
    data = {
        "info": dict(info),
        "summary": [s.to_dict() for s in summaries],
        "failure_categories": FAILURE_LABELS,
        "ragas": dict(ragas) if ragas else None,
        "questions": {name: [r.to_dict() for r in results] for name, results in runs.items()},
    }
    files = ReportFiles(out_dir / "report.json", out_dir / "report.md", out_dir / "accuracy.png")
    files.json.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=jsonable), encoding="utf-8")
    files.markdown.write_text(markdown_report(summaries, runs, info, ragas), encoding="utf-8")
    plot_accuracy(summaries, files.chart)
    return summaries, files
