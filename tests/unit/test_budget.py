"""The prompt budget: what is left out first, and that the prompt then fits."""

from __future__ import annotations

from itertools import pairwise

from agent.budget import SchemaView, estimate_tokens, fit, smaller_schemas
from agent.service import Assistant
from agent.testing import ScriptedChatModel
from core.config import Settings, Techniques
from core.db import Column, ForeignKey, Schema, Table
from knowledge.retrieval import link_tables


def _table(name: str, fks: tuple[ForeignKey, ...] = ()) -> Table:
    return Table(name, (Column("id", "INTEGER", primary_key=True), Column("note", "TEXT")),
                 foreign_keys=fks, sample_rows=((1, "x" * 40),))


def test_estimate_errs_towards_more_tokens() -> None:
    assert estimate_tokens("") == 0 and estimate_tokens("abc") == 1 and estimate_tokens("abcd") == 2


def test_examples_go_first_least_similar_first_and_the_schema_stays_whole_when_that_is_enough() -> None:
    def measure(view: SchemaView, kept: list[str]) -> int:
        return len(view.text) + 10 * len(kept)

    whole = SchemaView("s" * 50)
    fitted = fit(75, measure, ["best", "good", "weak"], [whole, SchemaView("s" * 10, frozenset({"a"}))])
    assert fitted.examples == ["best", "good"] and fitted.examples_dropped == 1
    assert fitted.schema is whole and not fitted.schema_cut and fitted.estimated == 70


def test_the_schema_shrinks_only_once_every_example_is_gone() -> None:
    views = [SchemaView("s" * 100), SchemaView("s" * 60, frozenset({"a", "b"})), SchemaView("s" * 30, frozenset({"a"}))]
    fitted = fit(65, lambda v, kept: len(v.text) + 10 * len(kept), ["one"], views)
    assert fitted.examples == [] and fitted.schema is views[1] and fitted.schema_cut
    too_small = fit(5, lambda v, kept: len(v.text), [], views)
    assert too_small.schema is views[2] and too_small.estimated == 30  # the smallest, reported as over


def test_smaller_schemas_drop_the_least_relevant_tables_but_keep_named_ones_and_join_paths() -> None:
    link = ForeignKey(("id",), "hub", ("id",))
    schema = Schema("sqlite", (_table("hub"), _table("left", (link,)), _table("right", (link,)), _table("junk")))
    ranked = [("left", 0.9), ("right", 0.8), ("junk", 0.5), ("hub", 0.1)]
    views = list(smaller_schemas(schema, ranked, must={"right"}, sample_rows=3, link=link_tables))
    kept = [v.tables for v in views]
    assert kept[0] == {"left", "right", "hub"}  # junk goes first; hub joins two kept tables
    assert all("right" in k for k in kept if k is not None)  # a table the question's values name stays
    assert views[-1].sample_rows == 0 and "example rows" not in views[-1].text
    assert all(len(a.text) > len(b.text) for a, b in pairwise(views))


def test_without_the_store_the_sample_rows_go(settings: Settings) -> None:
    model = ScriptedChatModel().enqueue("```sql\nSELECT COUNT(*) FROM Customer\n```")
    with Assistant.open(settings, llm=model) as assistant:
        whole = assistant.ask("How many customers?", Techniques(answer=False))
        model.enqueue("```sql\nSELECT COUNT(*) FROM Customer\n```")
        capped = assistant.ask("How many customers?", Techniques(answer=False, prompt_budget=500))
    assert "example rows" in str(model.history[0][0].content)
    assert "example rows" not in str(model.history[1][0].content)
    context = next(s for s in capped.trace if s.node == "context")
    assert context.output.budget["sample_rows_dropped"] and whole.ok and capped.ok
