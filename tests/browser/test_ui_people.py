"""Issue 15 in a real browser: presets with their measured figures, Advanced switches by stage, long waits
that say why, and charts you can read (hover values, whole labels). A scripted model: no real LLM.

Screenshots: artifacts/screenshots/settings_presets.png, settings_advanced.png, progress_schema.png,
trace_fast.png, trace_default.png, chart_bar.png; and the README's docs/screenshot-settings.png and
docs/screenshot-chart.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.testing import ScriptedChatModel

Served = Any  # tests/browser/conftest.py's Served
DOCS = Path(__file__).resolve().parents[2] / "docs"  # the README's pictures of Settings and of a chart

pytestmark = pytest.mark.browser

UI_TIMEOUT_MS = 30_000
NOBODY_SQL = "```sql\nSELECT Name FROM Artist WHERE Name = 'Nobody'\n```"
GENRE_SQL = ("```sql\nSELECT g.Name AS Genre, COUNT(*) AS Tracks FROM Track t JOIN Genre g ON g.GenreId = t.GenreId"
             " GROUP BY g.Name ORDER BY Tracks DESC\n```")


def open_page(browser: Any, url: str) -> tuple[Any, Any]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 960})
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#question textarea")).to_be_enabled(timeout=UI_TIMEOUT_MS)
    return context, page


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def ask(page: Any, question: str, turns: int) -> None:
    """Ask and wait until the ``turns``-th answer is done."""
    from playwright.sync_api import expect

    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(page.locator("#chat").get_by_text(re.compile("How I got there"))).to_have_count(turns,
                                                                                          timeout=UI_TIMEOUT_MS)


def nodes_in_trace(page: Any) -> list[str]:
    tab(page, "Trace")
    page.locator("#trace details").first.wait_for(timeout=UI_TIMEOUT_MS)
    return [str(n) for n in page.locator("#trace details.trace-step").evaluate_all(
        "els => els.map(e => e.dataset.node)")]


def test_presets_show_their_figures_and_change_what_the_agent_does(
    browser: Any, serve_ui: Callable[..., Served], shot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    def reply(messages: list[Any]) -> str:  # SQL that runs but finds nothing: Default escalates, Fast does not
        return "Nobody has that name." if "The query" in str(messages[-1].content) else NOBODY_SQL

    served = serve_ui(llm=ScriptedChatModel(replies=[reply] * 500))
    context, page = open_page(browser, served.url)
    try:
        tab(page, "Settings")
        choice = page.locator("#preset")
        expect(choice).to_contain_text("Fast · 63% correct (63/100), 1.5 s median", timeout=UI_TIMEOUT_MS)
        expect(choice).to_contain_text("Default · 67% correct (67/100), 5.2 s median · the most accurate measured")
        expect(page.locator("#preset-note")).to_contain_text("100 Spider held-out questions")
        expect(page.locator("#preset-note")).to_contain_text("shipped with this release")
        # the tests run with the minimal techniques: the Fast preset is the one chosen
        expect(choice.get_by_role("radio", name=re.compile("^Fast"))).to_be_checked()
        shot(page, "settings_presets", full_page=True)
        page.screenshot(path=str(DOCS / "screenshot-settings.png"))

        tab(page, "Chat")
        ask(page, "Is there an artist called Nobody?", 1)
        fast = nodes_in_trace(page)
        assert fast == ["context", "generate", "validate", "fix_qualifiers", "execute", "answer"]
        shot(page, "trace_fast")

        tab(page, "Settings")
        choice.get_by_role("radio", name=re.compile("^Default")).check()
        page.locator("#advanced").get_by_text(re.compile("^Advanced")).click()  # the preset filled the form
        expect(page.locator("#tech-self_consistency input[type=number]")).to_have_value("4", timeout=UI_TIMEOUT_MS)
        page.locator("#apply-settings").click()
        expect(page.locator("#settings-message")).to_contain_text("Applied", timeout=UI_TIMEOUT_MS)
        expect(page.locator("#settings-message")).to_contain_text("self_consistency=4")
        tab(page, "Chat")
        ask(page, "Is there an artist called Nobody?", 2)
        default = nodes_in_trace(page)
        assert {"escalate", "sample", "vote"} <= set(default) and len(default) > len(fast)
        assert not {"escalate", "sample", "vote"} & set(fast)
        shot(page, "trace_default")
    finally:
        context.close()


def test_the_untouched_form_changes_nothing_and_a_bad_combination_is_told(
    browser: Any, serve_ui: Callable[..., Served], shot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    served = serve_ui()
    context, page = open_page(browser, served.url)
    try:
        tab(page, "Settings")
        page.locator("#apply-settings").click()
        message = page.locator("#settings-message")
        expect(message).to_contain_text("techniques: the defaults", timeout=UI_TIMEOUT_MS)  # none differs
        assert "escalate_min_logprob" not in str(message.inner_text())

        page.locator("#advanced").get_by_text(re.compile("^Advanced")).click()
        advanced = page.locator("#advanced")
        for stage in ("Context", "Examples", "Reasoning", "Candidates", "Repair", "Answer and tools"):
            expect(advanced).to_contain_text(stage)
        expect(advanced).to_contain_text("Self-consistency samples")
        page.locator("#tech-sc_repair_each input").check()  # with one candidate: it would do nothing
        page.locator("#apply-settings").click()
        expect(message).to_contain_text("✗ Invalid technique settings: sc_repair_each (Repair every failed sample)",
                                        timeout=UI_TIMEOUT_MS)
        shot(page, "settings_advanced", full_page=True)
    finally:
        context.close()


def test_a_long_wait_says_what_it_waits_for(browser: Any, serve_ui: Callable[..., Served],
                                             shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect

    def slow(messages: list[Any]) -> str:  # a model that takes its time over the schema, and the answer
        if "The query" in str(messages[-1].content):
            time.sleep(6)
            return "There are 275 artists."
        time.sleep(6)
        return "```sql\nSELECT COUNT(*) AS artists FROM Artist\n```"

    # each word of a reply comes a second after the one before, as from a model decoding slowly
    served = serve_ui(llm=ScriptedChatModel(replies=[slow] * 50, streams=True, stream_pause_s=1.0))
    context, page = open_page(browser, served.url)
    try:
        box = page.locator("#question textarea")
        box.fill("How many artists are there?")
        box.press("Enter")
        chat = page.locator("#chat")
        expect(chat).to_contain_text(re.compile(r"Reading the schema of chinook \([\d,]+ tokens, about \d+ s, "
                                                r"once per database\)"), timeout=UI_TIMEOUT_MS)
        shot(page, "progress_schema")
        # the table shows as soon as the query ran, while the answer is still being written
        expect(page.locator("#result-table")).to_contain_text("275", timeout=UI_TIMEOUT_MS)
        expect(chat).to_contain_text("Writing the answer")
        expect(chat).to_contain_text("There are 275 …", timeout=UI_TIMEOUT_MS)  # the sentence, as it is written
        assert chat.get_by_text(re.compile("How I got there")).count() == 0
        expect(chat.get_by_text(re.compile("How I got there"))).to_have_count(1, timeout=UI_TIMEOUT_MS)
        expect(chat).to_contain_text("There are 275 artists.")
        expect(chat).not_to_contain_text("Reading the schema of")  # done: the wait line is gone
    finally:
        context.close()


def test_a_chart_has_hover_values_and_whole_labels(browser: Any, serve_ui: Callable[..., Served],
                                                   shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect

    def reply(messages: list[Any]) -> str:
        return "Rock has the most tracks." if "The query" in str(messages[-1].content) else GENRE_SQL

    served = serve_ui(llm=ScriptedChatModel(replies=[reply] * 50))
    context, page = open_page(browser, served.url)
    try:
        ask(page, "Which genres have the most tracks?", 1)
        tab(page, "Chart")
        expect(page.locator("#chart-kind input")).to_have_value("bar", timeout=UI_TIMEOUT_MS)
        plot = page.locator("#chart-plot .js-plotly-plot")
        expect(plot).to_be_visible(timeout=UI_TIMEOUT_MS)
        # 25 genres: the 14 largest and "others"; sideways, so a long name is drawn whole
        ticks = [str(t) for t in plot.locator(".yaxislayer-above .ytick text").evaluate_all(
            "els => els.map(e => e.textContent)")]  # SVG text has no innerText
        assert "Alternative & Punk" in ticks and "others (11)" in ticks and len(ticks) == 15
        expect(plot.locator(".gtitle")).to_contain_text("the 14 largest of 25")
        box = plot.locator(".barlayer .point path").first.bounding_box()  # Plotly's drag layer takes the
        assert box is not None  # pointer: move the mouse over the bar itself
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        expect(plot.locator(".hoverlayer")).to_contain_text("Tracks: 1,297", timeout=UI_TIMEOUT_MS)
        expect(plot.locator(".hoverlayer")).to_contain_text("Genre: Rock")
        expect(plot.locator(".modebar-btn[data-title='Download plot as a PNG']")).to_have_count(1)
        shot(page, "chart_bar", full_page=True)
        page.screenshot(path=str(DOCS / "screenshot-chart.png"), full_page=True)
        page.locator("#chart-kind input").click()  # still switchable
        page.get_by_role("option", name="line", exact=True).click()
        expect(plot.locator(".scatterlayer .trace")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    finally:
        context.close()
