"""Escalation: answer cheaply when the zero-shot SQL is good enough, spend the costly techniques otherwise.

With ``Techniques.escalate`` on, the first SQL is the baseline's: one greedy call on the cached prompt
(instructions, schema, question), no examples. It is answered as it is when it ran and returned rows
(and, with ``escalate_min_logprob`` set, the model was sure of every token of it). Otherwise the
``escalate`` node records why and the question goes on to the techniques that are on (examples, values,
self-consistency, repair), with the zero-shot SQL as the draft: it is the HyDE draft, and it joins the
vote.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agent.config import Techniques
from agent.deps import RunContext
from agent.nodes.retrieve import wants_retrieval
from agent.state import AgentState
from agent.trace import StepTimer

# Errors after which the zero-shot SQL is no draft worth keeping (nothing to vote with or search by).
_NO_DRAFT = ("no_sql", "syntax", "unsafe")


def cascading(state: AgentState, runtime: Runtime[RunContext]) -> bool:
    """Whether this is the zero-shot first try of an escalating run (and there is something to escalate to)."""
    t = runtime.context.techniques
    return (t.escalate and not state.get("escalated")
            and (wants_retrieval(runtime) or t.self_consistency > 1))


def reason_to_escalate(state: AgentState, t: Techniques) -> str | None:
    """Why the zero-shot answer is not good enough, or None when it is."""
    if state.get("error"):
        return f"it failed ({state.get('error_kind') or 'error'})"
    if not state.get("rows"):
        return "it returned no rows"
    confidence, floor = state.get("confidence"), t.escalate_min_logprob
    if confidence is None or floor is None:  # not asked for, or the endpoint sends no log-probabilities
        return None
    weakest = float(confidence["min_logprob"])
    if weakest < floor:
        return f"the model was unsure of {confidence['weakest']!r} (log-probability {weakest:.2f} < {floor:.2f})"
    return None


def escalate(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    sql, kind = state.get("sql"), state.get("error_kind")
    reason = reason_to_escalate(state, runtime.context.techniques) or "asked to"
    timer = StepTimer("escalate", sql=sql, confidence=state.get("confidence"))
    draft = sql if sql and kind not in _NO_DRAFT else None
    step = timer.finish(reason=reason, draft_sql=draft)
    return {"escalated": True, "draft_sql": draft, "sql": None, "error": None, "error_kind": None, "repairs": 0,
            "columns": [], "rows": [], "truncated": False, "trace": [step]}
