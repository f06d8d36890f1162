"""Export fine-tuning data in OpenAI's chat format, and check a file the way OpenAI's cookbook does.

Each example is ``{"messages": [system, user, assistant]}``: the system and user messages are exactly
the prompt the agent sends for the question (zero-shot: the whole schema with its default sample rows,
no examples, no conversation history), and the assistant message is the SQL in a ```sql fence.

Two sources:

- a finished evaluation run (``--from-run DIR``): the questions some configuration answered
  correctly, with the model's own (execution-correct) SQL as the target -- rejection-sampling
  fine-tuning, so the model learns from what already worked for it;
- Spider's questions (``--data train.json --db-dir DIR``) with their gold SQL, leaving out the
  held-out databases so that they stay unseen.

Token counts are estimated as characters / 4 (plus OpenAI's per-message overhead): ``tiktoken`` is
installed, but its encoding files are downloaded on first use and this machine works offline.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from langchain_core.language_models import BaseChatModel

from agent.deps import Deps, RunContext
from agent.prompts import system_message, user_message
from agent.state import AgentState
from core.config import Techniques
from core.db import Database
from evals.dataset import EvalQuestion, heldout_db_ids, load_questions
from evals.runner import QuestionResult, ResultStore

TOKEN_LIMIT = 16_385  # tokens per training example (gpt-4o-mini / gpt-3.5-turbo fine-tuning)
ROLES = frozenset({"system", "user", "assistant"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "tool_calls", "function_call"})
# OpenAI's cookbook counts 3 tokens of framing per message, 1 per name, and 3 to prime the reply.
TOKENS_PER_MESSAGE, TOKENS_PER_NAME, TOKENS_PRIMING = 3, 1, 3


def estimate_tokens(text: str) -> int:
    """A rough token count for English and SQL: one token per four characters."""
    return math.ceil(len(text) / 4)


# --------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class Example:
    db_id: str
    db_url: str
    question: str
    sql: str


class PromptBuilder:
    """The agent's own zero-shot prompt for a question, per database (schemas reflected once each).

    The messages come from the agent's own helpers (``agent.prompts``), given the state of a
    fresh one-off question: the full schema, no examples, no history. So the export follows any change
    to the prompt files without being told.
    """

    def __init__(self, sample_rows: int | None = None) -> None:
        self.sample_rows = Techniques.minimal().sample_rows if sample_rows is None else sample_rows
        self._dbs: dict[str, tuple[Database, str]] = {}

    def _db_and_schema(self, db_url: str) -> tuple[Database, str]:
        if db_url not in self._dbs:
            db = Database.open(db_url)
            try:
                schema = db.schema().render(sample_rows=self.sample_rows)
            except BaseException:
                db.close()
                raise
            self._dbs[db_url] = (db, schema)
        return self._dbs[db_url]

    def messages(self, example: Example) -> list[dict[str, str]]:
        db, schema = self._db_and_schema(example.db_url)
        # The helpers read only the database (for its dialect) from the context: no model is involved.
        ctx = RunContext(Deps(llm=cast(BaseChatModel, None), db=db), Techniques.minimal())
        state = cast(AgentState, {"question": example.question, "schema_text": schema, "history": []})
        return [
            {"role": "system", "content": str(system_message(state, ctx).content)},
            {"role": "user", "content": str(user_message("generate", state, ctx).content)},
            {"role": "assistant", "content": f"```sql\n{example.sql.strip()}\n```"},
        ]

    def close(self) -> None:
        for db, _ in self._dbs.values():
            db.close()
        self._dbs.clear()


def examples_from_run(run_dir: Path, db_url_of: Callable[[QuestionResult], str] | None = None) -> list[Example]:
    """The correctly answered questions of a run (once each, whichever configuration got it), with
    the predicted SQL. ``db_url_of`` gives a result's database URL (default: the one recorded, whose
    password, if any, is masked)."""
    files = sorted(run_dir.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"No result files (*.jsonl) in {run_dir}: is it the --out folder of an eval run?")
    chosen: dict[str, Example] = {}
    for path in files:
        for result in ResultStore(path).load().values():
            if result.match and result.prediction and result.qid not in chosen:
                url = db_url_of(result) if db_url_of else result.db_url
                chosen[result.qid] = Example(result.db_id, url, result.question, result.prediction)
    return [chosen[qid] for qid in sorted(chosen)]


def examples_from_questions(questions: Iterable[EvalQuestion], include_heldout: bool = False) -> list[Example]:
    """Gold examples, leaving out the held-out databases unless asked."""
    skip = frozenset() if include_heldout else heldout_db_ids()
    return [Example(q.db_id, q.db_url, q.question, q.gold) for q in questions if q.db_id not in skip]


def examples_from_spider(data: Path, db_dir: Path | None, include_heldout: bool = False) -> list[Example]:
    return examples_from_questions(load_questions(data, db_dir), include_heldout)


def write_jsonl(examples: Iterable[Example], out: Path, limit: int | None = None,
                builder: PromptBuilder | None = None) -> int:
    """Write at most ``limit`` examples to ``out``; return how many were written."""
    own = builder is None
    builder = builder or PromptBuilder()
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with out.open("w", encoding="utf-8") as fh:
            for example in examples:
                if limit is not None and written >= limit:
                    break
                fh.write(json.dumps({"messages": builder.messages(example)}, ensure_ascii=False) + "\n")
                written += 1
    finally:
        if own:
            builder.close()
    return written


# --------------------------------------------------------------------------------------------- validate


@dataclass
class FinetuneReport:
    """What :func:`validate_finetune_file` found. ``errors`` counts problems by kind (an example may
    have several); ``error_lines`` lists (line number, kind)."""

    path: Path
    examples: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    error_lines: list[tuple[int, str]] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    token_limit: int = TOKEN_LIMIT

    @property
    def ok(self) -> bool:
        return self.examples > 0 and not self.errors

    @property
    def over_limit(self) -> int:
        return sum(t > self.token_limit for t in self.tokens)

    def summary(self) -> str:
        lines = [f"{self.path}: {self.examples} example(s)"]
        if self.errors:
            lines.append("errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())))
            lines += [f"  line {n}: {kind}" for n, kind in self.error_lines[:10]]
        else:
            lines.append("no format errors")
        if self.tokens:
            lines.append(
                f"tokens per example (estimated as characters/4): min {min(self.tokens):,}, "
                f"median {statistics.median(self.tokens):,.0f}, max {max(self.tokens):,}; "
                f"{self.over_limit} over the {self.token_limit:,}-token limit (they would be truncated)"
            )
            lines.append(f"tokens in all: about {sum(self.tokens):,}")
        return "\n".join(lines)


def _problems(example: Any) -> Iterator[str]:
    """The format errors of one example, named as in OpenAI's fine-tuning data check."""
    if not isinstance(example, dict):
        yield "data_type"
        return
    unknown = set(example) - {"messages", "tools", "parallel_tool_calls", "functions"}
    if unknown:
        yield "unrecognized_example_key"
    messages = example.get("messages")
    if not messages:
        yield "missing_messages_list"
        return
    if not isinstance(messages, list):
        yield "data_type"
        return
    for message in messages:
        if not isinstance(message, dict):
            yield "data_type"
            continue
        if "role" not in message or "content" not in message:
            yield "message_missing_key"
        if set(message) - MESSAGE_KEYS:
            yield "message_unrecognized_key"
        if message.get("role") not in ROLES:
            yield "unrecognized_role"
        content = message.get("content")
        if message.get("role") in ROLES and (not isinstance(content, str) or not content.strip()):
            yield "missing_content"
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        yield "example_missing_assistant_message"


def count_tokens(messages: list[dict[str, Any]], estimate: Callable[[str], int] = estimate_tokens) -> int:
    total = TOKENS_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if isinstance(value, str):
                total += estimate(value)
            if key == "name":
                total += TOKENS_PER_NAME
    return total


def validate_finetune_file(path: Path, token_limit: int = TOKEN_LIMIT) -> FinetuneReport:
    """Check every line of a chat fine-tuning JSONL file: it parses, has ``messages`` whose roles are
    system/user/assistant with non-empty content and no unknown keys, and at least one assistant
    message; and count its tokens (estimated)."""
    report = FinetuneReport(path=path, token_limit=token_limit)
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            report.examples += 1
            try:
                example = json.loads(line)
            except json.JSONDecodeError:
                kinds = ["json_parse_error"]
            else:
                kinds = list(dict.fromkeys(_problems(example)))
            for kind in kinds:
                report.errors[kind] += 1
                report.error_lines.append((number, kind))
            if not kinds:
                report.tokens.append(count_tokens(example["messages"]))
    return report


def heldout_note(examples: Iterable[Example]) -> str | None:
    """A warning when examples come from held-out databases (training on them spoils their measurements)."""
    held = sorted({e.db_id for e in examples} & heldout_db_ids())
    if not held:
        return None
    return (f"note: {len(held)} held-out database(s) among the examples ({', '.join(held)}); training on them "
            "makes later measurements on them optimistic.")
