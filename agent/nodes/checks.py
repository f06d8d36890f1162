"""The checks a query goes through between validate and execute (``agent.policy.CHECKS``).

A check is a module ``agent.nodes.<name>`` with a function ``check(sql, ctx) -> CheckOutput``: the SQL
it passes on (rewritten or as it came), a note per change, and a problem the model can fix, or None.
``CheckNode`` makes one a graph node; ``apply_checks`` runs those that are on over a query that does not
go through the graph's loop (the samples that confirm a first try).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from typing import Any

from langgraph.runtime import Runtime

from agent.deps import RunContext
from agent.policy import CHECKS
from agent.state import AgentState
from agent.trace import CheckOutput, StepTimer

Check = Callable[[str, RunContext], CheckOutput]
log = logging.getLogger(__name__)


@functools.cache
def check_function(name: str) -> Check:
    """The ``check`` of ``agent.nodes.<name>`` (named by its line in ``CHECKS``, so a new check needs no
    import added here or in the graph)."""
    if name not in CHECKS:
        raise KeyError(f"{name!r} is not a check; the checks are {', '.join(CHECKS) or 'none'} (agent.policy.CHECKS)")
    check: Check = importlib.import_module(f"agent.nodes.{name}").check
    return check


def run_check(name: str, sql: str, ctx: RunContext) -> tuple[CheckOutput | None, str | None]:
    """The check's output, or None and why it failed: a broken check loses nothing, it is skipped (and
    logged) and the query goes on as it came."""
    try:
        return check_function(name)(sql, ctx), None
    except Exception as err:
        log.warning("The check %s failed and was skipped: %s", name, err, exc_info=True)
        return None, f"The check {name} failed and was skipped: {err}"


class CheckNode:
    """The graph node of a check: it records a step, passes the SQL on, and on a problem leaves the state
    that validate leaves on a fixable error (so the same router sends it to repair or escalation)."""

    def __init__(self, name: str) -> None:
        check_function(name)  # an unknown name fails when the graph is built, not at the first question
        self.name = name

    def __call__(self, state: AgentState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        sql = state.get("sql") or ""
        timer = StepTimer(self.name, sql=sql)
        out, failed = run_check(self.name, sql, runtime.context)
        if out is None:
            return {"sql": sql, "trace": [timer.finish(error=failed)]}
        step = timer.finish(out, error=out.problem)
        if out.problem:
            return {"sql": out.sql or sql, "error": out.problem, "error_kind": "check", "trace": [step]}
        return {"sql": out.sql or sql, "trace": [step]}


def apply_checks(sql: str, ctx: RunContext, names: tuple[str, ...]) -> tuple[str, str | None]:
    """The query after the checks ``names`` (in order), and the first problem found (None when none):
    the checks stop at a problem; a broken one is skipped, as in the graph."""
    for name in names:
        out, _ = run_check(name, sql, ctx)
        if out is None:
            continue
        sql = out.sql or sql
        if out.problem:
            return sql, out.problem
    return sql, None
