"""Self-consistency: fan out the candidates, group them by their result set, pick the largest group.

The candidates are N samples of one prompt (one request; see ``generate.sample``) plus the greedy
draft when retrieval made one. The rule, in order: candidates that failed do not vote; a group with
rows beats one without (an empty result is more often a wrong filter than the answer); then the
larger group; then the group whose
members' plans validated; then the group holding the greedy (temperature 0) candidate. Within the
winning group: a validated plan first, then the greedy candidate, then the shortest SQL.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send

from agent.deps import RunContext
from agent.results import result_key
from agent.state import AgentState, Candidate
from agent.trace import StepTimer, VoteOutput

# What each candidate branch starts from: the shared context, nothing of the other branches.
SHARED_KEYS = ("question", "history", "schema_text", "examples_text", "escalated")


def fan_out(state: AgentState, runtime: Runtime[RunContext]) -> list[Send]:
    """One branch per sampled candidate; each validates and runs its own SQL. A failed candidate is
    repaired in its branch only with ``sc_repair_each``: N repairs at once cost far more than the vote
    gains, so by default only the chosen candidate is repaired, and only when none of them ran."""
    shared = {k: state[k] for k in SHARED_KEYS if k in state}  # type: ignore[literal-required]
    each = runtime.context.techniques.sc_repair_each
    return [
        Send("candidate", {**shared, **s, "candidate_index": i, "repairs": 0, "may_repair": each,
                           "tried_sql": s.get("tried_sql", [])})
        for i, s in enumerate(state.get("samples", []))
    ]


def collect(state: AgentState) -> dict[str, Any]:
    """The last node of a candidate branch: package what it reached."""
    candidate: Candidate = {
        "index": state.get("candidate_index", 0), "temperature": state.get("temperature", 0.0),
        "sql": state.get("sql"), "plan_ok": state.get("plan_ok"), "columns": state.get("columns", []),
        "rows": state.get("rows", []), "truncated": state.get("truncated", False), "error": state.get("error"),
        "error_kind": state.get("error_kind"),
    }
    return {"candidates": [candidate]}


def _rank_member(c: Candidate) -> tuple[bool, bool, int]:
    return (c["plan_ok"] is not False, c["index"] == 0, -len(c["sql"] or ""))


def choose(candidates: list[Candidate]) -> tuple[Candidate, list[list[Candidate]]]:
    """The winner and the groups (best first). With no working candidate, the greedy one 'wins'."""
    ordered = sorted(candidates, key=lambda c: c["index"])
    groups: dict[Any, list[Candidate]] = {}
    for c in ordered:
        if c["error"] is None:
            groups.setdefault(result_key(c["columns"], c["rows"]), []).append(c)
    if not groups:
        return ordered[0], []

    def rank(members: list[Candidate]) -> tuple[bool, int, int, bool]:
        return (bool(members[0]["rows"]), len(members), sum(m["plan_ok"] is True for m in members),
                any(m["index"] == 0 for m in members))

    ranked = sorted(groups.values(), key=rank, reverse=True)
    return max(ranked[0], key=_rank_member), ranked


def vote(state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    candidates = state.get("candidates", [])
    timer = StepTimer("vote", candidates=len(candidates))
    winner, groups = choose(candidates)
    summary = [
        {"candidates": [m["index"] for m in g], "size": len(g), "rows": len(g[0]["rows"]),
         "preview": g[0]["rows"][:3]}
        for g in groups
    ]
    failed = [{"candidate": c["index"], "sql": c["sql"], "error": c["error"]} for c in candidates if c["error"]]
    output = VoteOutput(winner=winner["index"], sql=winner["sql"], groups=summary, failed=failed,
                        all_sql={str(c["index"]): c["sql"] for c in candidates})
    step = timer.finish(output, error=winner["error"])
    return {
        "sql": winner["sql"], "columns": winner["columns"], "rows": winner["rows"],
        "truncated": winner["truncated"], "plan_ok": winner["plan_ok"], "error": winner["error"],
        "error_kind": (winner.get("error_kind") or "database") if winner["error"] else None,
        "tried_sql": [c["sql"] for c in candidates if c["sql"]], "trace": [step],
    }
