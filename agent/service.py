"""The assistant: one database, one model endpoint, a compiled graph per shape of switches; CLI, UI and
evals all use it."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime

from agent.deps import Deps, RunContext
from agent.graph import build_graph
from agent.llm import EndpointStarter, build_chat_model, open_endpoint, slot_dir
from agent.llm_server import LocalServer
from agent.nodes.context import gather_context
from agent.prefix_cache import PrefixWarmer, SlotFiles, cache_name
from agent.prompts import system_message
from agent.shared_state import open_chroma_client, open_postgres_checkpointer, open_sqlite_checkpointer
from agent.slots import QueueStatus
from agent.state import new_turn
from agent.streamed import PromptProgress
from agent.trace import Running, Step, totals
from core.config import Settings, Techniques
from core.db import Database, QueryResult
from core.errors import SqlsageError, UserInputError
from core.guard import check_sql
from core.prompt_sets import prompt_set
from knowledge.embeddings import MiniLMEmbedder
from knowledge.indexing import DatabaseIndexer, schema_fingerprint
from knowledge.pool import PoolIndexer, bundled_pool_path
from knowledge.retrieval import Retriever
from knowledge.store import KnowledgeStore

if TYPE_CHECKING:
    from agent.state import AgentState
    from tools.registry import ToolRegistry

log = logging.getLogger(__name__)
SUBGRAPH_NODES = frozenset({"candidate"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ResultReady:
    """The query's rows, as soon as it ran: before the written answer, which can take a while longer."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


@dataclass(frozen=True)
class AnswerText:
    """The written answer so far, while the model writes it: after ResultReady, before the AnswerRecord."""

    text: str


@dataclass
class AnswerRecord:
    question: str
    sql: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    answer: str | None = None
    error: str | None = None
    error_kind: str | None = None
    trace: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def totals(self) -> dict[str, float]:
        return totals(self.trace)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["trace"] = [s.to_dict() for s in self.trace]
        data["totals"] = self.totals()
        return data


def clean_question(question: str, max_chars: int) -> str:
    text = _CONTROL.sub(" ", question or "").strip()
    if not text:
        raise UserInputError("The question is empty: ask something about the data, e.g. 'How many artists are there?'")
    if len(text) > max_chars:
        raise UserInputError(
            f"The question is {len(text):,} characters long; the limit is {max_chars:,}. Please shorten it."
        )
    return text


class Assistant:
    def __init__(
        self, settings: Settings, deps: Deps, server: LocalServer | None = None, checkpointer: Any = None
    ) -> None:
        self.settings = settings
        self.deps = deps
        self.server = server
        self.checkpointer = checkpointer
        self.warmer: PrefixWarmer | None = None

    def _thread_config(self, thread_id: str | None) -> RunnableConfig:
        if thread_id is None:  # a one-off question: no memory
            return {}
        if self.checkpointer is None:
            raise SqlsageError("Conversations need a checkpointer: open the Assistant with conversations=True.")
        return {"configurable": {"thread_id": thread_id}}

    @classmethod
    def open(
        cls, settings: Settings, llm: BaseChatModel | None = None, conversations: bool = False,
        knowledge: Retriever | None = None, tools: ToolRegistry | None = None,
        starting: EndpointStarter | None = None,
    ) -> Assistant:
        """Open the database first (cheap, and the likeliest user mistake), then the model endpoint
        (``starting``'s, when it was set off in the background beforehand). With ``conversations``,
        threads are kept in SQLite under the data folder and survive restarts.
        ``knowledge`` (see ``open_knowledge``) enables the retrieval techniques and remembering examples;
        ``tools`` (``tools.registry.ToolRegistry.default()``) the tools the agent may route a question to."""
        db = Database.open(settings.db_url, settings.query_timeout_s, settings.row_cap, settings.max_result_bytes)
        server = None
        try:
            checkpointer = open_checkpointer(settings) if conversations else None
            if llm is None:
                endpoint, server = starting.result() if starting else open_endpoint(settings)
                llm = build_chat_model(settings, endpoint)
        except BaseException:
            db.close()
            if starting is not None:
                starting.close()
            raise
        return cls(settings, Deps(llm=llm, db=db, knowledge=knowledge, tools=tools), server, checkpointer)

    @property
    def graph(self) -> CompiledStateGraph[AgentState, RunContext, AgentState, AgentState]:
        """The graph of the default switches (each question runs the graph of its own switches; all of
        them share the checkpointer, so any of them reads a conversation's state)."""
        return build_graph(self.settings.techniques, self.checkpointer)

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def stable_prefix(self, techniques: Techniques | None = None) -> str:
        """The system message the SQL step begins with on this database (instructions and schema), built
        by the very node that builds it for a question."""
        ctx = RunContext(self.deps, techniques or self.settings.techniques)
        state = cast("AgentState", new_turn(""))
        state["schema_text"] = gather_context(state, Runtime(context=ctx))["schema_text"]
        return str(system_message(state, ctx).content)

    def start_warming(self, notify: Callable[[str], None] | None = None) -> PrefixWarmer | None:
        """With the local server: put the stable prefix in one of its slots in the background (restored
        from disk when saved before, else read and saved), so the first question pays only for its own
        tokens. None with another endpoint (nothing to warm that we know of)."""
        if self.server is None or not self.server.base_url:
            return None
        prefix = self.stable_prefix()
        directory = slot_dir(self.settings)
        files = SlotFiles(directory, self.settings.slot_cache_mib * 2**20) if directory is not None else None
        name = cache_name(self.server.options.model_path, prefix, schema_fingerprint(self.deps.db.schema()))
        root = self.server.base_url.removesuffix("/v1")
        self.warmer = PrefixWarmer(root, prefix, name, files, self.settings.request_max_s, notify=notify).start()
        return self.warmer

    def close(self) -> None:
        if self.warmer is not None:
            self.warmer.close()
        self.deps.db.close()
        if self.checkpointer is not None:
            self.checkpointer.conn.close()
        if self.server is not None:
            self.server.stop()

    def stream(
        self, question: str, techniques: Techniques | None = None, thread_id: str | None = None
    ) -> Iterator[Step | Running | QueueStatus | PromptProgress | ResultReady | AnswerText | AnswerRecord]:
        """Yield each Step as its node finishes, then the AnswerRecord (errors included, never raised
        for the user's or the backend's fault). Questions with the same ``thread_id`` form one
        conversation: a follow-up is resolved against the earlier questions and their SQL. Each time a
        node starts or ends, ``Running`` says which are running now; while a model call waits for a free
        slot of the server, its QueueStatus (place in line, estimate) comes too, and while the server
        reads a long prompt, its PromptProgress (tokens read of the prompt's); once the query has run
        (before the answer is written), ResultReady carries its rows, and AnswerText the written answer
        so far while the model writes it."""
        record = AnswerRecord(question=question)
        try:
            record.question = clean_question(question, self.settings.max_question_chars)
        except UserInputError as err:
            record.error, record.error_kind = str(err), "input"
            yield record
            return
        if self.warmer is not None and self.warmer.busy:
            # The prefix is being read into a slot: waiting for it costs less than reading it twice.
            self.warmer.wait(self.settings.request_max_s)
        context = RunContext(self.deps, techniques or self.settings.techniques)
        prompts = prompt_set(context.techniques.prompts).label
        state: dict[str, Any] = {}
        stopped: SqlsageError | None = None
        running: dict[str, str] = {}  # task id -> node, in the order they started
        written = ""  # the answer's text so far, as the model writes it
        began = time.monotonic()
        try:
            turn = cast("AgentState", new_turn(record.question))  # its None lists are the reducers' resets
            parts = build_graph(context.techniques, self.checkpointer).stream(
                turn, config=self._thread_config(thread_id),
                context=context, stream_mode=["updates", "values", "custom", "tasks", "messages"], subgraphs=True,
            )
            # With subgraphs and several modes, LangGraph yields (namespace, mode, chunk) triples.
            for namespace, mode, chunk in cast("Iterator[tuple[tuple[str, ...], str, Any]]", parts):
                if mode == "tasks":  # a task's start carries its input, its end its result
                    if chunk["name"] in SUBGRAPH_NODES:
                        continue  # its own nodes are the ones shown
                    if "input" in chunk:
                        running[chunk["id"]] = chunk["name"]
                    else:
                        running.pop(chunk["id"], None)
                    yield Running(tuple(running.values()))
                    continue
                if mode == "messages":  # a model call's text as it comes: only the answer's is shown
                    message, meta = chunk
                    if not namespace and meta.get("langgraph_node") == "answer" and isinstance(message, AIMessage) \
                            and isinstance(message.content, str) and message.content:
                        # pieces of a streamed reply add up; a whole reply (or the streamed one's end) is all of it
                        text = written + message.content if isinstance(message, AIMessageChunk) else message.content
                        if text != written:
                            written = text
                            yield AnswerText(written)
                    continue
                if mode == "custom":
                    if isinstance(chunk, dict) and isinstance(chunk.get("queue"), QueueStatus):
                        yield chunk["queue"]
                    if isinstance(chunk, dict) and isinstance(chunk.get("prompt"), PromptProgress):
                        yield chunk["prompt"]
                    continue
                if mode == "values":
                    if not namespace:
                        if chunk.get("columns") and not chunk.get("error") and (
                                chunk.get("columns"), chunk.get("rows")) != (state.get("columns"), state.get("rows")):
                            yield ResultReady(chunk.get("sql") or "", list(chunk["columns"]),
                                              list(chunk.get("rows") or []), bool(chunk.get("truncated")))
                        state = chunk
                    continue
                for node, update in chunk.items():
                    if not namespace and node in SUBGRAPH_NODES:
                        continue  # its steps were streamed from inside the subgraph already
                    for step in (update or {}).get("trace", []):
                        step = replace(step, prompts=prompts)
                        record.trace.append(step)
                        yield step
        except SqlsageError as err:
            step = Step("error", time.time(), time.monotonic() - began, error=str(err), prompts=prompts)
            record.trace.append(step)
            yield step
            stopped = err
        yield _finish(record, state, stopped)

    def ask(self, question: str, techniques: Techniques | None = None, thread_id: str | None = None) -> AnswerRecord:
        *_, record = self.stream(question, techniques, thread_id)
        assert isinstance(record, AnswerRecord)
        return record

    def remember_example(self, question: str, sql: str, source: str) -> str:
        """Save a confirmed question → SQL pair as an example, usable at once. Returns its id."""
        if self.deps.knowledge is None:
            raise SqlsageError("No knowledge store is open, so the example cannot be saved.")
        self.deps.db.run(sql)  # it must run, through the read-only guard
        statement = check_sql(sql, self.deps.db.dialect)
        return self.deps.knowledge.remember(question, statement, self.deps.db.key, source, self.deps.db.dialect)

    def run_sql(self, sql: str) -> QueryResult:
        """Run user-written SQL through the same guard and executor as the agent's."""
        return self.deps.db.run(sql)


def open_knowledge(settings: Settings) -> Retriever:
    """The knowledge store: on the Chroma server at ``settings.chroma_url`` when set (shared by several
    workers), else Chroma files under the data folder. Embeddings are computed here, offline, either way."""
    if settings.chroma_url:
        client = open_chroma_client(settings.chroma_url)
        return Retriever(KnowledgeStore(None, MiniLMEmbedder(settings.cache_dir / "embeddings"), client=client))
    return Retriever.open(settings.data_dir, settings.cache_dir)


def open_knowledge_or_none(settings: Settings) -> Retriever | None:
    """The knowledge store, or None (logged) when it cannot be opened: ``sqlsage ask`` then answers as it
    would without one, with no retrieval techniques and no example pool."""
    try:
        return open_knowledge(settings)
    except Exception as err:  # chromadb's and the file system's errors alike: the store is an extra here
        log.warning("The knowledge store cannot be opened (answering without it): %s", err)
        return None


def start_pool(
    settings: Settings, knowledge: Retriever | None, notify: Callable[[str], None] | None = None
) -> PoolIndexer | None:
    """Index the example pool in the background unless the store holds it already (the UI and ``sqlsage
    ask`` call this; the first answer never waits for it). The evaluation does not: it must not see its
    held-out databases through the pool. Stop it with ``indexer.stop()`` before closing the store."""
    if knowledge is None or not settings.pool:
        return None
    return PoolIndexer(knowledge.store, settings.pool_file or bundled_pool_path(), notify=notify).start()


def start_database_index(
    knowledge: Retriever | None, db: Database, notify: Callable[[str], None] | None = None
) -> DatabaseIndexer | None:
    """Index the database's tables and text values in the background unless its schema (fingerprint) is
    indexed already (the UI and ``sqlsage ask`` call this on connecting; the answer never waits for it).
    Stop it with ``indexer.stop()`` before closing the store."""
    if knowledge is None:
        return None
    return DatabaseIndexer(knowledge.store, db, notify=notify, on_done=lambda: knowledge.forget_values(db.key)).start()


class Background(Protocol):
    def line(self) -> str: ...

    @property
    def busy(self) -> bool: ...


def background_status(jobs: Sequence[Background | None]) -> tuple[str, bool]:
    """The work going on behind the answers (the example pool, the database's index, the model's warm-up)
    as one status line, and whether any of it is still going."""
    running = [j for j in jobs if j is not None]
    return " · ".join(j.line() for j in running), any(j.busy for j in running)


def open_checkpointer(where: Settings | Path) -> BaseCheckpointSaver[Any]:
    """LangGraph's checkpointer, allowed to restore our own trace records: PostgreSQL when
    ``settings.conversations_url`` is set (shared by several workers), else SQLite under the data folder
    (or at the path given). Close it with ``saver.conn.close()``."""
    if isinstance(where, Path):
        return open_sqlite_checkpointer(where)
    if where.conversations_url is not None:
        return open_postgres_checkpointer(where.conversations_url.get_secret_value())
    return open_sqlite_checkpointer(where.data_dir / "conversations.sqlite")


def _finish(record: AnswerRecord, state: dict[str, Any], stopped: SqlsageError | None) -> AnswerRecord:
    record.sql = state.get("sql") or record.sql
    record.columns = list(state.get("columns") or [])
    record.rows = list(state.get("rows") or [])
    record.truncated = bool(state.get("truncated"))
    record.answer = state.get("answer")
    if stopped is not None:  # the backend or the database failed: say so as it is
        record.error, record.error_kind = str(stopped), type(stopped).__name__
    elif state.get("error"):  # the model could not fix its SQL, or wrote SQL that was refused
        record.error_kind = state.get("error_kind")
        unsafe = record.error_kind == "unsafe"
        record.error = state["error"] if unsafe else f"Could not get a working query. Last problem: {state['error']}"
    if record.error:
        record.answer = None
    return record
