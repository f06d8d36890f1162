"""The chat UI: a Gradio Blocks app built by a factory, offline, bound to 127.0.0.1 by default.

The layout and the wiring live here; what each action does lives in ``ui.controller`` (no Gradio) and
everything the user reads is rendered by ``ui.render`` and ``ui.charts`` (pure). ``build_app`` never
runs at import, and gradio itself is only imported inside the factory, after analytics are turned off.
"""

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from agent import waiting
from agent.llm import EndpointStarter
from agent.service import Assistant, background_status, open_knowledge, start_database_index, start_pool
from core.config import Settings
from tools.registry import ToolRegistry
from ui import charts, presets
from ui.auth import Credentials
from ui.controller import ChatController, Slots
from ui.history import HistoryStore, browser_secret
from ui.render import short_url, table_value
from ui.sessions import AssistantPool
from ui.switches import by_stage as switch_groups

EXAMPLES = [
    "How many artists are there?",
    "Which 5 genres have the most tracks?",
    "Total sales per year",
    "Which customers spent the most?",
]

TRACE_CSS = """
.sqlsage-trace, .schema-browser { font-size: 13px; }
.trace-totals, .schema-head { color: var(--body-text-color-subdued); margin: 4px 0 8px; }
details.trace-step, details.schema-table { border: 1px solid var(--border-color-primary); border-radius: 8px;
  margin: 6px 0; padding: 4px 10px; background: var(--block-background-fill); }
details.trace-step.error { border-color: #dc2626; }
details.trace-step > summary, details.schema-table > summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
.trace-section { margin: 6px 0 10px; }
.trace-label { font-size: 11px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--body-text-color-subdued); margin: 6px 0 2px; }
.sqlsage-pre { white-space: pre-wrap; word-break: break-word; max-height: 320px; overflow: auto; margin: 0;
  padding: 6px 8px; border-radius: 6px; background: var(--background-fill-secondary); font-size: 12px; }
.sqlsage-pre.error { color: #b91c1c; }
.prompt-msg .role { font-weight: 600; font-size: 12px; margin-top: 4px; }
.retrieved .score { font-family: monospace; color: #c2410c; }
table.columns, table.samples { border-collapse: collapse; margin: 4px 0; font-size: 12px; }
table.columns td, table.columns th, table.samples td, table.samples th { border: 1px solid
  var(--border-color-primary); padding: 2px 6px; text-align: left; }
"""

APP_CSS = """
#header p { margin: 0; }
#feedback, #sql-message { min-height: 1.2em; }
"""


def _theme() -> Any:
    import gradio as gr

    return gr.themes.Soft(primary_hue="orange", secondary_hue="slate")


def build_app(
    assistant: Assistant,
    *,
    history: HistoryStore | None = None,
    pool: AssistantPool | None = None,
    trace_dir: Path | None = None,
    background: Callable[[], tuple[str, bool]] | None = None,
) -> Any:
    """The Gradio Blocks app for ``assistant`` (the default of every browser session).

    ``background`` reports work going on behind the answers (indexing the example pool): a status line,
    and whether it is still going; the page shows the line and refreshes it until the work is done.

    ``history`` defaults to ``<data_dir>/ui.sqlite`` and ``pool`` to one over ``assistant``; pass your own to
    close them yourself (``launch`` does). Call ``app.queue(...)`` before launching (``serve`` does).
    """
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr
    import pandas as pd

    history = history or HistoryStore(assistant.settings.data_dir / "ui.sqlite")
    pool = pool or AssistantPool(assistant)
    control = ChatController(pool, history, trace_dir)
    items = control.switches

    with gr.Blocks(title="sqlsage", analytics_enabled=False) as app:
        # The owner id of a browser without a login: random, kept in its localStorage (under a stable key,
        # so it survives server restarts). It is unguessable, not secret-proof: use --auth for accounts.
        browser_id = gr.BrowserState("", storage_key="sqlsage-owner",
                                     secret=browser_secret(assistant.settings.data_dir / "ui-browser-key"))
        owner = gr.State("")
        conv = gr.State(None)
        records = gr.State([])
        current = gr.State(None)
        view = gr.State({})
        page_no = gr.State(1)
        ok_sql = gr.State(None)
        techniques = gr.State(assistant.settings.techniques.model_dump())

        header = gr.Markdown(f"**sqlsage** · asking **{short_url(assistant.deps.db.display_url)}**", elem_id="header")
        if background is not None:
            background_line, busy = background()
            background_status = gr.Markdown(background_line, elem_id="background-status")
            ticker = gr.Timer(2.0, active=busy)

            def on_tick() -> tuple[str, Any]:
                line, still = background()
                return line, gr.Timer(active=still)

            ticker.tick(on_tick, None, [background_status, ticker], show_progress="hidden")
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Chat", id="chat", elem_id="tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=5, min_width=360):
                        chat = gr.Chatbot(
                            label="Conversation", elem_id="chat", height=600, feedback_options=None,
                            buttons=["copy", "copy_all"],  # no share button: nothing leaves this machine
                            placeholder="Ask a question about your data. Each step the agent takes shows up here.",
                        )
                        question = gr.Textbox(
                            placeholder="e.g. How many artists are there?", show_label=False, elem_id="question",
                            submit_btn="Ask", interactive=False, max_lines=4,
                        )
                        gr.Examples(EXAMPLES, inputs=question, label=None)
                        with gr.Row():
                            new_btn = gr.Button("New conversation", size="sm", elem_id="new-conversation")
                            up_btn = gr.Button("✓ Good answer: save as example", size="sm", elem_id="thumbs-up")
                        feedback = gr.Markdown(elem_id="feedback")
                    with gr.Column(scale=6, min_width=420):
                        sql_code = gr.Code(
                            language="sql", interactive=True, label="SQL: edit and run again (read-only)",
                            elem_id="sql-editor", lines=4, max_lines=16, wrap_lines=True,
                        )
                        with gr.Row():
                            run_btn = gr.Button("▶ Run SQL", variant="primary", size="sm", elem_id="run-sql")
                            save_btn = gr.Button("Save corrected SQL as example", size="sm", elem_id="save-corrected")
                            download = gr.DownloadButton("⬇ Trace (JSON)", value=None, size="sm",
                                                         elem_id="download-trace")
                        sql_msg = gr.Markdown(elem_id="sql-message")
                        with gr.Tabs(elem_id="detail-tabs"):
                            with gr.Tab("Result", id="result", elem_id="tab-result"):
                                summary = gr.Markdown(elem_id="result-summary")
                                table = gr.Dataframe(pd.DataFrame({"result": []}), elem_id="result-table",
                                                     interactive=False, max_height=360, wrap=True,
                                                     show_row_numbers=True)
                                with gr.Row():
                                    prev_btn = gr.Button("◀ Previous", size="sm", elem_id="page-prev")
                                    page_info = gr.Markdown("page 1 of 1", elem_id="page-info")
                                    next_btn = gr.Button("Next ▶", size="sm", elem_id="page-next")
                            with gr.Tab("Chart", id="chart", elem_id="tab-chart"):
                                with gr.Row():
                                    kind_dd = gr.Dropdown(list(charts.KINDS), value="none", label="Chart",
                                                          elem_id="chart-kind")
                                    x_dd = gr.Dropdown([], label="x", elem_id="chart-x", allow_custom_value=True)
                                    y_dd = gr.Dropdown([], label="y", elem_id="chart-y", allow_custom_value=True)
                                chart_note = gr.Markdown(elem_id="chart-note")
                                plot = gr.Plot(elem_id="chart-plot", show_label=False)  # Plotly: hover, zoom, PNG
                            with gr.Tab("Trace", id="trace", elem_id="tab-trace"):
                                trace = gr.HTML(control.record_slots(None)["trace"], elem_id="trace",
                                                css_template=TRACE_CSS, js_on_load=None)
            with gr.Tab("History", id="history", elem_id="tab-history"):
                gr.Markdown("Your past conversations (only yours). Pick one to reopen it with its answers and "
                            "traces, then ask a follow-up.")
                history_list = gr.Radio([], label="Conversations", elem_id="history-list")
                refresh_btn = gr.Button("Refresh", size="sm", elem_id="history-refresh")
            with gr.Tab("Schema", id="schema", elem_id="tab-schema"):
                schema = gr.HTML(elem_id="schema", css_template=TRACE_CSS, js_on_load=None)
            with gr.Tab("Settings", id="settings", elem_id="tab-settings"):
                gr.Markdown("Settings apply to **this browser tab only**. Blank fields keep what the server "
                            "was started with; the shared local model is never restarted.")
                with gr.Row():
                    db_url = gr.Textbox(label="Database URL (SQLAlchemy)", elem_id="db-url", scale=4,
                                        placeholder=assistant.deps.db.display_url)
                    test_btn = gr.Button("Test connection", elem_id="test-connection", scale=1)
                with gr.Row():
                    base_url = gr.Textbox(label="Model endpoint (OpenAI-compatible base URL)", elem_id="base-url",
                                          placeholder=pool.base_endpoint_url or "(the launch endpoint)")
                    model = gr.Textbox(label="Model name", elem_id="model-name", placeholder=pool.base_model)
                    api_key = gr.Textbox(label="API key", type="password", elem_id="api-key",
                                         placeholder="(unchanged)")
                gr.Markdown("**How hard to try**", elem_id="preset-head")
                preset = gr.Radio(
                    [(presets.choice_label(p), p.key) for p in control.presets]
                    + [("Custom: the switches under Advanced", presets.CUSTOM)],
                    value=presets.matching(control.presets, assistant.settings.techniques), show_label=False,
                    elem_id="preset",
                )
                gr.Markdown(presets.presets_markdown(control.presets, control.measured), elem_id="preset-note")
                boxes: dict[str, Any] = {}
                now = assistant.settings.techniques
                with gr.Accordion("Advanced: every switch, by stage of the method", open=False,
                                  elem_id="advanced"):
                    for title, group in switch_groups(items):
                        gr.Markdown(f"**{title}**", elem_classes=["stage-head"])
                        flags = [s for s in group if s.kind == "bool"]
                        if flags:
                            with gr.Row():  # the on/off switches side by side, then the numbers three to a row
                                for s in flags:
                                    boxes[s.name] = _switch_component(gr, s, getattr(now, s.name, s.default))
                        others = [s for s in group if s.kind != "bool"]
                        for start in range(0, len(others), 3):
                            with gr.Row():
                                for s in others[start: start + 3]:
                                    boxes[s.name] = _switch_component(gr, s, getattr(now, s.name, s.default))
                switch_boxes = [boxes[s.name] for s in items]  # in the order techniques_from_form expects
                apply_btn = gr.Button("Apply settings", variant="primary", elem_id="apply-settings")
                settings_msg = gr.Markdown(elem_id="settings-message")

        simple = {
            "chat": chat, "question": question, "conv": conv, "records": records, "current": current,
            "view": view, "page": page_no, "sql": sql_code, "sql_msg": sql_msg, "summary": summary,
            "page_info": page_info, "trace": trace, "feedback": feedback, "ok_sql": ok_sql, "owner": owner,
            "techniques": techniques, "settings_msg": settings_msg, "header": header, "schema": schema,
            "browser_id": browser_id, "db_url": db_url, "api_key": api_key, "preset": preset,
        }
        chart_parts = [kind_dd, x_dd, y_dd, chart_note, plot]
        special: dict[str, list[Any]] = {
            "table": [table], "chart": chart_parts, "download": [download], "history": [history_list],
            "tab": [tabs], "db_placeholder": [db_url],
        }

        def outputs(*names: str) -> list[Any]:
            out: list[Any] = []
            for name in names:
                for comp in special.get(name, [simple.get(name)]):
                    if comp is not None and comp not in out:
                        out.append(comp)
            return out

        def chart_updates(spec: dict[str, Any], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict:
            kind = spec.get("kind") if spec.get("kind") in charts.KINDS else "none"
            chosen = charts.ChartSpec(kind, spec.get("x"), spec.get("y"))  # type: ignore[arg-type]
            fig = charts.figure(columns, rows, chosen) if kind != "none" else None
            if kind == "none":
                note = f"No chart: {spec['reason']}." if spec.get("reason") else "No chart."
            elif fig is None:
                note = f"Cannot draw a {kind} chart of {chosen.y} against {chosen.x}: pick number columns."
            else:
                note = ""
            return {
                kind_dd: gr.update(value=kind),
                x_dd: gr.update(choices=list(columns), value=chosen.x),
                y_dd: gr.update(choices=list(columns), value=chosen.y),
                chart_note: note, plot: fig,
            }

        def to_updates(slots: Slots, view_now: dict[str, Any] | None = None) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for name, value in slots.items():
                if name == "table":
                    columns, rows = value
                    tv = table_value(columns, rows)
                    out[table] = pd.DataFrame(tv["data"], columns=tv["headers"]) if columns else pd.DataFrame()
                elif name == "chart":
                    v = slots.get("view") or view_now or {}
                    out.update(chart_updates(value, v.get("columns") or [], v.get("rows") or []))
                elif name == "download":
                    out[download] = gr.update(value=value, interactive=value is not None)
                elif name == "history":
                    out[history_list] = gr.update(choices=value, value=None)
                elif name == "tab":
                    out[tabs] = gr.Tabs(selected=value)
                elif name == "db_placeholder":
                    continue  # the placeholder is set together with db_url below
                elif name in simple:
                    out[simple[name]] = value
            if "db_placeholder" in slots:
                out[db_url] = gr.update(value=slots.get("db_url", ""), placeholder=slots["db_placeholder"])
            return out

        panel = ("current", "view", "page", "sql", "sql_msg", "ok_sql", "feedback", "summary", "table",
                 "page_info", "chart", "trace", "download")

        # -- session start and end ----------------------------------------------------------------------

        def on_load(browser: str, request: gr.Request) -> dict[Any, Any]:
            slots = control.load(request.username, browser, request.session_hash)
            updates = to_updates(slots)
            updates[question] = gr.update(interactive=True)
            return updates

        app.load(on_load, [browser_id], outputs("browser_id", "owner", "history", "header", "schema",
                                                "db_placeholder", "question"))

        def on_unload(request: gr.Request) -> None:
            pool.release(request.session_hash)

        app.unload(on_unload)

        # -- chat -----------------------------------------------------------------------------------------

        def on_ask(text: str, messages: list[dict[str, Any]], conv_id: str | None, recs: list[dict[str, Any]],
                   owner_id: str, browser: str, tech: dict[str, Any], request: gr.Request) -> Iterator[dict]:
            who = owner_id or control.load(request.username, browser, request.session_hash)["owner"]
            for slots in control.ask(text, messages, conv_id, recs, who, tech, request.session_hash):
                yield to_updates({**slots, "owner": who})

        ask_outputs = outputs("chat", "question", "conv", "records", "history", "owner", *panel)
        ask_inputs = [question, chat, conv, records, owner, browser_id, techniques]
        question.submit(on_ask, ask_inputs, ask_outputs, show_progress="hidden")

        def on_new() -> dict[Any, Any]:
            return to_updates(control.new_conversation())

        new_btn.click(on_new, None, outputs("chat", "conv", "records", "question", *panel))
        chat.clear(on_new, None, outputs("chat", "conv", "records", "question", *panel))

        def on_select(messages: list[dict[str, Any]], recs: list[dict[str, Any]], evt: gr.SelectData) -> dict:
            index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
            return to_updates(control.select_turn(messages, recs, int(index or 0)))

        chat.select(on_select, [chat, records], outputs(*panel))

        # -- SQL editor, paging, chart ---------------------------------------------------------------------

        def on_run(sql: str, request: gr.Request) -> dict[Any, Any]:
            return to_updates(control.run_sql(sql, request.session_hash))

        run_btn.click(on_run, [sql_code], outputs("sql_msg", "ok_sql", "view", "page", "summary", "table",
                                                  "page_info", "chart"))

        def paging(step: int) -> Callable[[dict[str, Any], int], dict[Any, Any]]:
            def turn(v: dict[str, Any], number: int) -> dict[Any, Any]:
                slots = control.turn_page(v, int(number or 1) + step)
                slots.pop("chart", None)
                return to_updates(slots)
            return turn

        prev_btn.click(paging(-1), [view, page_no], outputs("page", "summary", "table", "page_info"))
        next_btn.click(paging(+1), [view, page_no], outputs("page", "summary", "table", "page_info"))

        def on_chart(kind: str, x: str | None, y: str | None, v: dict[str, Any]) -> dict[Any, Any]:
            return to_updates({"chart": {"kind": kind, "x": x, "y": y, "reason": "you chose none"}}, v)

        for dd in (kind_dd, x_dd, y_dd):
            dd.input(on_chart, [kind_dd, x_dd, y_dd, view], chart_parts)

        # -- feedback -------------------------------------------------------------------------------------

        def on_up(rec: dict[str, Any] | None, request: gr.Request) -> dict[Any, Any]:
            return to_updates(control.thumbs_up(rec, request.session_hash))

        up_btn.click(on_up, [current], outputs("feedback"))

        def on_save(rec: dict[str, Any] | None, sql: str, ran: str | None, request: gr.Request) -> dict[Any, Any]:
            return to_updates(control.save_corrected(rec, sql, ran, request.session_hash))

        save_btn.click(on_save, [current, sql_code, ok_sql], outputs("feedback"))

        # -- history --------------------------------------------------------------------------------------

        def on_open(conv_id: str | None, owner_id: str) -> dict[Any, Any]:
            return to_updates(control.open_conversation(conv_id, owner_id))

        history_list.input(on_open, [history_list, owner],
                           outputs("chat", "conv", "records", "tab", "history", *panel))

        def on_refresh(owner_id: str) -> dict[Any, Any]:
            return to_updates({"history": control.history_choices(owner_id)})

        refresh_btn.click(on_refresh, [owner], outputs("history"))

        # -- settings -------------------------------------------------------------------------------------

        def on_test(url: str, request: gr.Request) -> dict[Any, Any]:
            return to_updates(control.test_connection(url, request.session_hash))

        test_btn.click(on_test, [db_url], outputs("settings_msg"))

        # the Request comes first: Gradio injects it by position, before the switches' *values
        def on_apply(request: gr.Request, url: str, endpoint: str, name: str, key: str, *values: Any) -> dict:
            return to_updates(control.apply_settings(url, endpoint, name, key, values, request.session_hash))

        apply_btn.click(on_apply, [db_url, base_url, model, api_key, *switch_boxes],
                        outputs("settings_msg", "techniques", "header", "schema", "db_placeholder", "api_key",
                                "preset"))

        def on_preset(key: str) -> list[Any]:  # a preset fills the form; Apply settings applies it
            values = control.preset_form(key)
            return [gr.update() for _ in switch_boxes] if values is None else values

        preset.input(on_preset, [preset], switch_boxes)
    app.sqlsage_controller = control  # for tests and embedding: the pool and history behind this app
    return app


def _switch_component(gr: Any, switch: Any, value: Any) -> Any:
    common = {"label": switch.label, "info": switch.help or None, "elem_id": f"tech-{switch.name}"}
    if switch.kind == "bool":
        return gr.Checkbox(value=bool(value), min_width=220, **common)
    if switch.kind in ("int", "float"):
        if switch.minimum is not None and switch.maximum is not None:
            step = 1 if switch.kind == "int" else (switch.maximum - switch.minimum) / 100
            return gr.Slider(switch.minimum, switch.maximum, value=value, step=step, **common)
        return gr.Number(value=value, precision=0 if switch.kind == "int" else None, **common)
    if switch.kind == "choice":
        return gr.Dropdown(list(switch.choices), value=value, **common)
    return gr.Textbox(value="" if value is None else str(value), **common)


def serve(app: Any, host: str = "127.0.0.1", port: int | None = None, auth: Credentials | None = None,
          concurrency: int = 4, block: bool = True) -> str:
    """Queue and launch ``app``; returns its local URL once the server answers (``block=False`` for tests).

    Gradio's own check that the page answers gives up after one 3-second try and then asks for a share
    link; on two busy cores that happens. The page is waited for here instead, patiently and without any
    proxy (it is on this machine)."""
    app.queue(default_concurrency_limit=concurrency)
    _, local_url, _ = app.launch(
        server_name=host, server_port=port, share=False, show_error=True, quiet=True, auth=auth,
        auth_message="sqlsage: log in to ask questions about the data." if auth else None,
        prevent_thread_lock=True, theme=_theme(), css=APP_CSS, footer_links=[], ssr_mode=False,
        _frontend=False,
    )
    url = str(local_url).rstrip("/")
    wait_until_answering(url)
    return url


def wait_until_answering(url: str, timeout_s: float = 60.0) -> None:
    """Return once the UI at ``url`` answers an HTTP request (any status below 500); raise a clear error."""
    try:
        waiting.wait_until_answering(url, timeout_s)
    except TimeoutError as err:
        raise RuntimeError(f"The chat UI at {err}.") from None


def launch(settings: Settings, starting: EndpointStarter, auth: Credentials | None = None) -> None:
    """Open the knowledge store and the assistant, start the UI, print its URL, and serve until Ctrl-C.
    ``starting``: the model endpoint, set off in the background once the database was checked (``sqlsage
    ui`` does that before it imports the UI). Everything opened here is closed on the way out."""
    try:
        knowledge = open_knowledge(settings)
    except BaseException:
        starting.close()
        raise
    def tell(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    indexer = start_pool(settings, knowledge, notify=tell)
    db_index = None
    try:
        tools = ToolRegistry.default(settings.tool_specs)
        with Assistant.open(settings, conversations=True, knowledge=knowledge, tools=tools,
                            starting=starting) as assistant, \
                HistoryStore(settings.data_dir / "ui.sqlite") as history:
            db_index = start_database_index(knowledge, assistant.deps.db, notify=tell)
            warmer = assistant.start_warming(notify=tell)
            pool = AssistantPool(assistant)
            jobs = [indexer, db_index, warmer]
            background = (lambda: background_status(jobs)) if any(jobs) else None
            app = build_app(assistant, history=history, pool=pool, background=background)
            try:
                url = serve(app, settings.host, settings.port, auth, concurrency=max(1, settings.parallel_slots))
                print(f"sqlsage is ready: {url}" + (" (login required)" if auth else ""), flush=True)
                app.block_thread()
            finally:
                app.close()
                if db_index is not None:
                    db_index.stop()  # before the database closes
                pool.close()
                app.sqlsage_controller.close()
    finally:
        starting.close()
        for job in (indexer, db_index):
            if job is not None:
                job.stop()
        knowledge.close()
