"""The chat UI in a real browser (Debian's Chromium through Playwright), served in-process.

Never wait for "networkidle" (Gradio keeps a connection open): wait for elements and text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.llm import build_chat_model
from core.config import Endpoint

REPO = Path(__file__).resolve().parents[2]
Served = Any  # tests/browser/conftest.py's Served (conftest modules are not imported by tests)

pytestmark = pytest.mark.browser

ANSWER_TIMEOUT_MS = 900_000  # the real model on two shared cores can take minutes
UI_TIMEOUT_MS = 30_000


def open_page(browser: Any, url: str, viewport: tuple[int, int] = (1440, 960)) -> tuple[Any, Any]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#question textarea")).to_be_enabled(timeout=UI_TIMEOUT_MS)  # the session has loaded
    return context, page


def ask(page: Any, question: str, answer: str, timeout_ms: int = UI_TIMEOUT_MS) -> str:
    """Ask, wait until the steps are done and ``answer`` shows in the chat; return the chat's text."""
    from playwright.sync_api import expect

    done = page.locator("#chat").get_by_text(re.compile(r"How I got there"))
    before = done.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(done).to_have_count(before + 1, timeout=timeout_ms)
    expect(page.locator("#chat")).to_contain_text(answer, timeout=UI_TIMEOUT_MS)  # the answer renders just after
    return str(page.locator("#chat").inner_text())


def set_sql(page: Any, sql: str) -> None:
    editor = page.locator("#sql-editor .cm-content")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(sql)


def run_sql(page: Any, sql: str, expect_text: str) -> str:
    from playwright.sync_api import expect

    set_sql(page, sql)
    page.locator("#run-sql").click()
    message = page.locator("#sql-message")
    expect(message).to_contain_text(expect_text, timeout=UI_TIMEOUT_MS)
    return str(message.inner_text())


def tab(page: Any, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


# -- with the real local model ------------------------------------------------------------------------------


@pytest.mark.llm
def test_real_model_answers_shows_its_trace_and_learns_from_a_thumbs_up(
    browser: Any, serve_ui: Callable[..., Served], local_endpoint: Endpoint, shot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    served = serve_ui(llm=_real_llm(local_endpoint), knowledge=True)
    context, page = open_page(browser, served.url)
    try:
        box = page.locator("#question textarea")
        box.fill("How many artists are there?")
        box.press("Enter")
        # progress shows while the agent works
        expect(page.locator("#chat").get_by_text(re.compile(r"Working: "))).to_be_visible(timeout=UI_TIMEOUT_MS)
        shot(page, "01-progress")
        expect(page.locator("#chat").get_by_text("How I got there")).to_be_visible(timeout=ANSWER_TIMEOUT_MS)
        expect(page.locator("#chat")).to_contain_text("275", timeout=UI_TIMEOUT_MS)
        expect(page.locator("#result-table")).to_contain_text("275")
        expect(page.locator("#sql-editor")).to_contain_text(re.compile("select", re.I))

        # the trace: one expandable item per step, with the prompt and the model's output
        tab(page, "Trace")
        steps = page.locator("#trace details.trace-step")
        expect(steps.first).to_be_visible()
        nodes = [steps.nth(i).get_attribute("data-node") for i in range(steps.count())]
        assert nodes[0] == "context" and "generate" in nodes and "execute" in nodes and nodes[-1] == "answer", nodes
        generate = page.locator("#trace details.trace-step[data-node='generate']").first
        expect(generate).to_contain_text("Prompt sent")
        expect(generate).to_contain_text("Model output")
        expect(page.locator("#trace")).to_contain_text("model call")
        page.locator("#trace details.trace-step[data-node='execute'] summary").first.click()
        expect(page.locator("#trace details.trace-step[data-node='execute']").first).to_contain_text("row_count")
        shot(page, "02-answer-and-trace")
        _save_readme_screenshot(page)

        # the whole trace downloads as JSON
        with page.expect_download(timeout=UI_TIMEOUT_MS) as download:
            page.locator("#download-trace").click()
        data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert data["question"] == "How many artists are there?" and data["rows"] == [[275]]
        assert [s["node"] for s in data["trace"]] == nodes

        # thumbs up: the question and its SQL become an example in the knowledge store
        page.locator("#thumbs-up").click()
        feedback = page.locator("#feedback")
        expect(feedback).to_contain_text("Saved this answer as an example", timeout=UI_TIMEOUT_MS)
        example_id = re.search(r"id (\S+?)\)", str(feedback.inner_text()))
        assert example_id, feedback.inner_text()
        examples = served.knowledge.store.get("example")
        saved = [e for e in examples if e.id == example_id.group(1).strip("`")]
        assert saved and saved[0].text == "How many artists are there?", [e.id for e in examples]
        shot(page, "03-thumbs-up")
    finally:
        context.close()


def _real_llm(endpoint: Endpoint) -> Any:
    from core.config import Settings

    return build_chat_model(Settings(), endpoint)


def _save_readme_screenshot(page: Any) -> None:
    target = REPO / "docs" / "screenshot-main.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.locator("#trace details.trace-step[data-node='generate'] summary").first.click()  # keep it compact
    page.screenshot(path=str(target))


# -- with a scripted model: the UI's own behaviour, fast and deterministic ----------------------------------


def test_edit_and_rerun_sql_refusals_chart_and_corrected_example(
    browser: Any, serve_ui: Callable[..., Served], shot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    served = serve_ui(knowledge=True)
    context, page = open_page(browser, served.url)
    try:
        ask(page, "How many artists are there?", "The answer is 275.")
        with page.expect_download(timeout=UI_TIMEOUT_MS) as download:
            page.locator("#download-trace").click()
        data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert data["rows"] == [[275]] and [s["node"] for s in data["trace"]][0] == "context"

        assert "1 row(s)" in run_sql(page, "SELECT COUNT(*) FROM Album", "Ran your SQL")
        expect(page.locator("#result-table")).to_contain_text("347")

        refused = run_sql(page, "DELETE FROM Album", "Refused")
        assert "nothing was run" in refused and "DELETE" in refused
        shot(page, "04-refused")
        with sqlite3.connect(served.settings.db_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("SELECT COUNT(*) FROM Album").fetchone() == (347,)
        # a refused query cannot be saved as a correction
        page.locator("#save-corrected").click()
        expect(page.locator("#feedback")).to_contain_text("Run the edited SQL first", timeout=UI_TIMEOUT_MS)

        # a result with a category and a number gets a bar chart; the kind can be changed
        genre_sql = ("SELECT g.Name AS Genre, COUNT(*) AS Tracks FROM Track t JOIN Genre g ON g.GenreId = t.GenreId "
                     "GROUP BY g.Name ORDER BY Tracks DESC")
        assert "25 row(s)" in run_sql(page, genre_sql, "Ran your SQL")
        tab(page, "Chart")
        expect(page.locator("#chart-kind input")).to_have_value("bar", timeout=UI_TIMEOUT_MS)
        expect(page.locator("#chart-plot .js-plotly-plot")).to_be_visible(timeout=UI_TIMEOUT_MS)
        shot(page, "05-chart")
        page.locator("#chart-kind input").click()
        page.get_by_role("option", name="line", exact=True).click()
        expect(page.locator("#chart-plot .js-plotly-plot")).to_be_visible(timeout=UI_TIMEOUT_MS)
        page.locator("#chart-kind input").click()
        page.get_by_role("option", name="none", exact=True).click()
        expect(page.locator("#chart-note")).to_contain_text("No chart", timeout=UI_TIMEOUT_MS)

        # the corrected SQL (it ran) is saved for the question asked
        corrected = "SELECT COUNT(DISTINCT ArtistId) AS artists FROM Artist"
        run_sql(page, corrected, "Ran your SQL")
        page.locator("#save-corrected").click()
        expect(page.locator("#feedback")).to_contain_text("Saved your corrected SQL", timeout=UI_TIMEOUT_MS)
        saved = [e for e in served.knowledge.store.get("example") if e.metadata.get("source") == "corrected"]
        assert saved and saved[0].text == "How many artists are there?"
        assert "COUNT(DISTINCT ArtistId)" in str(saved[0].metadata.get("sql"))
    finally:
        context.close()


def test_two_users_do_not_see_each_others_conversations(
    browser: Any, serve_ui: Callable[..., Served], shot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    served = serve_ui()
    alice_ctx, alice = open_page(browser, served.url)
    bob_ctx, bob = open_page(browser, served.url)
    try:
        ask(alice, "How many artists are there?", "The answer is 275.")
        ask(bob, "How many albums are there?", "The answer is 347.")
        assert "albums" not in str(alice.locator("#chat").inner_text()).lower()
        assert "artists" not in str(bob.locator("#chat").inner_text()).lower()

        for page, mine, theirs in ((alice, "artists", "albums"), (bob, "albums", "artists")):
            tab(page, "History")
            listed = page.locator("#history-list")
            expect(listed).to_contain_text(f"How many {mine} are there?", timeout=UI_TIMEOUT_MS)
            assert theirs not in str(listed.inner_text())
        shot(alice, "06-history-alice")

        # a reload keeps the browser's own history (its id is kept in the browser), and it reopens
        alice.reload()
        tab(alice, "History")
        entry = alice.locator("#history-list label").filter(has_text="How many artists are there?")
        expect(entry).to_have_count(1, timeout=UI_TIMEOUT_MS)
        entry.click()
        expect(alice.locator("#chat")).to_contain_text("How many artists are there?", timeout=UI_TIMEOUT_MS)
        expect(alice.locator("#feedback")).to_contain_text("Reopened")
        tab(alice, "Trace")
        expect(alice.locator("#trace details.trace-step").first).to_be_visible()

        # a follow-up goes on in the reopened conversation
        ask(alice, "And how many albums?", "The answer is 347.")
        expect(alice.locator("#sql-editor")).to_contain_text("Album")
        # clicking an earlier answer shows that answer's SQL, result and trace
        alice.locator("#chat [data-testid='bot']").filter(has_text="The answer is 275").first.click()
        expect(alice.locator("#sql-editor")).to_contain_text("FROM Artist", timeout=UI_TIMEOUT_MS)
        tab(alice, "History")
        expect(alice.locator("#history-list label")).to_have_count(1, timeout=UI_TIMEOUT_MS)
        expect(alice.locator("#history-list")).to_contain_text("2 questions")
        tab(bob, "History")
        bob.locator("#history-refresh").click()
        expect(bob.locator("#history-list label")).to_have_count(1, timeout=UI_TIMEOUT_MS)
    finally:
        alice_ctx.close()
        bob_ctx.close()


def test_login_names_the_owner_of_the_history(browser: Any, serve_ui: Callable[..., Served]) -> None:
    from playwright.sync_api import expect

    served = serve_ui(auth=[("alice", "wonderland"), ("bob", "builder")])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(served.url)
        page.get_by_label(re.compile("username", re.I)).fill("alice")
        page.get_by_label(re.compile("password", re.I)).fill("wonderland")
        page.get_by_role("button", name=re.compile("login", re.I)).click()
        expect(page.locator("#question textarea")).to_be_enabled(timeout=UI_TIMEOUT_MS)
        ask(page, "How many artists are there?", "The answer is 275.")
        history = served.app.sqlsage_controller.history
        assert [c.title for c in history.conversations("user:alice")] == ["How many artists are there?"]
        assert history.conversations("user:bob") == []
    finally:
        context.close()


def test_schema_browser_and_settings(browser: Any, serve_ui: Callable[..., Served],
                                     shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect

    served = serve_ui()
    context, page = open_page(browser, served.url)
    try:
        tab(page, "Schema")
        album = page.locator("#schema details[data-table='Album']")
        expect(album).to_be_visible(timeout=UI_TIMEOUT_MS)
        album.locator("summary").click()
        expect(album).to_contain_text("ArtistId")
        expect(album).to_contain_text("For Those About To Rock")  # a sample row

        tab(page, "Settings")
        url_box = page.locator("#db-url input, #db-url textarea").first
        url_box.fill("postgresql://reader:hunter2@127.0.0.1:1/shop")
        page.locator("#test-connection").click()
        message = page.locator("#settings-message")
        expect(message).to_contain_text("✗", timeout=UI_TIMEOUT_MS)
        assert "hunter2" not in str(message.inner_text()) and "***" in str(message.inner_text())
        url_box.fill("")
        page.locator("#test-connection").click()
        expect(message).to_contain_text("11 table(s)", timeout=UI_TIMEOUT_MS)

        page.locator("#advanced").get_by_text(re.compile("^Advanced")).click()  # the switches are folded away
        page.locator("#tech-answer input").uncheck()
        page.locator("#apply-settings").click()
        expect(message).to_contain_text("answer=False", timeout=UI_TIMEOUT_MS)
        shot(page, "07-settings", full_page=True)
        tab(page, "Chat")
        ask(page, "How many artists are there?", "artists: 275")  # no model-written answer: the plain one
    finally:
        context.close()
