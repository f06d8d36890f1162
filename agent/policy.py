"""Which path a question takes: every predicate the graph's routers (and the nodes that depend on the
path) decide by, in one place. Each reads only the state, the switches and which dependencies are there;
none does I/O, so each is one table of cases in tests/unit/test_routers.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.state import AgentState
from core.config import Techniques

# The checks a query goes through after validate and before it runs, in this order: each a node,
# agent/nodes/<name>.py with its ``check(sql, ctx)``, and the switch that puts it in the graph. A check
# passes the SQL on, kept or rewritten, or names a problem, which routes as validate's errors do (repair,
# escalate or stop). A new check is one switch on Techniques, one line here and that one node.
CHECKS: dict[str, Callable[[Techniques], bool]] = {
    "fix_qualifiers": lambda t: t.fix_qualifiers,
}


@dataclass(frozen=True)
class GraphShape:
    """The switches that decide which nodes the graph has (the routers decide, within it, which run):
    hashable, so a compiled graph is cached per shape."""

    tools: bool  # route, react
    retrieves: bool  # retrieve
    drafts: bool  # hyde (before retrieve)
    samples: bool  # sample, candidate, vote
    repairs: bool  # repair
    repairs_each: bool  # repair inside each candidate branch
    escalates: bool  # escalate
    confirms: bool  # confirm
    checks: tuple[str, ...] = ()  # the CHECKS that are on, in order


def shape_of(t: Techniques) -> GraphShape:
    repairs, samples = t.repair and t.max_repairs > 0, t.self_consistency > 1
    return GraphShape(
        tools=t.tools, retrieves=t.retrieves(), drafts=t.hyde or t.difficulty, samples=samples, repairs=repairs,
        repairs_each=repairs and samples and t.sc_repair_each, escalates=t.escalate,
        confirms=t.escalate and t.escalate_check > 0, checks=tuple(name for name, on in CHECKS.items() if on(t)),
    )


def wants_retrieval(runtime: Runtime[RunContext]) -> bool:
    """A retrieval technique is on, and there is a knowledge store to draw from."""
    return runtime.context.deps.knowledge is not None and runtime.context.techniques.retrieves()


def cascading(state: AgentState, runtime: Runtime[RunContext]) -> bool:
    """Whether this is the first try of an escalating run (and there is something to escalate to)."""
    t = runtime.context.techniques
    return (t.escalate and not state.get("escalated")
            and (wants_retrieval(runtime) or t.self_consistency > 1))


def drafts(state: AgentState, runtime: Runtime[RunContext]) -> bool:
    """Whether retrieval needs a HyDE draft first (``hyde`` or ``difficulty``): not for an escalated
    question (its first try is the draft), nor for the first try of an escalating run (it is the draft)."""
    t = runtime.context.techniques
    return (t.hyde or t.difficulty) and not state.get("escalated") and not cascading(state, runtime)


def can_repair(state: AgentState, runtime: Runtime[RunContext]) -> bool:
    """Repair is on, this error may be repaired (refused SQL never is), and repairs are left."""
    t = runtime.context.techniques
    return (t.repair and state.get("may_repair", True) and state.get("error_kind") != "unsafe"
            and state.get("repairs", 0) < t.max_repairs)


def reason_to_escalate(state: AgentState, t: Techniques) -> str | None:
    """Why the first try is not good enough, or None when it is (so far: ``confirm`` may follow)."""
    if state.get("error"):
        return f"it failed ({state.get('error_kind') or 'error'})"
    if not state.get("rows"):
        return "it returned no rows"
    if state.get("confirmed") is False:
        return "a zero-shot sample returned other rows"
    confidence, floor = state.get("confidence"), t.escalate_min_logprob
    if confidence is None or floor is None:  # not asked for, or the endpoint sends no log-probabilities
        return None
    weakest = float(confidence["min_logprob"])
    if weakest < floor:
        return f"the model was unsure of {confidence['weakest']!r} (log-probability {weakest:.2f} < {floor:.2f})"
    return None


def after_zero_shot(state: AgentState, t: Techniques) -> Literal["answer", "confirm", "escalate"]:
    """After the first try ran: escalate it, check it with samples, or answer with it."""
    if reason_to_escalate(state, t):
        return "escalate"
    return "confirm" if t.escalate_check and state.get("confirmed") is None else "answer"
