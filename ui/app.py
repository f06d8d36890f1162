"""The chat UI (Gradio Blocks), offline and bound to 127.0.0.1 by default."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from agent.config import Settings
from agent.service import AnswerRecord, Assistant
from ui.render import answer_markdown, progress_text

Message = dict[str, Any]


def respond(assistant: Assistant, question: str, history: list[Message]) -> Iterator[tuple[list[Message], str]]:
    """Stream one question: progress lines while the agent works, then the answer. Pure of Gradio."""
    history = [*history, {"role": "user", "content": question}]
    progress: list[str] = []
    for item in assistant.stream(question):
        if isinstance(item, AnswerRecord):
            yield [*history, {"role": "assistant", "content": answer_markdown(item)}], ""
            return
        progress.append(progress_text(item))
        yield [*history, {"role": "assistant", "content": "\n".join(f"- {p}" for p in progress)}], ""


def build_app(assistant: Assistant) -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    with gr.Blocks(title="sqlsage") as app:
        gr.Markdown(f"## sqlsage\nAsk a question about **{assistant.deps.db.display_url}**.")
        chat = gr.Chatbot(label="Conversation", height=520, elem_id="chat")
        box = gr.Textbox(placeholder="e.g. How many artists are there?", show_label=False, elem_id="question",
                         submit_btn=True)

        def on_submit(question: str, history: list[Message]) -> Iterator[tuple[list[Message], str]]:
            yield from respond(assistant, question, history or [])

        box.submit(on_submit, [box, chat], [chat, box])
    return app


def launch(settings: Settings) -> None:
    print(f"Opening {settings.db_url} and starting the model…", flush=True)
    with Assistant.open(settings) as assistant:
        app = build_app(assistant)
        print(f"sqlsage is ready: http://{settings.host}:{settings.port}", flush=True)
        app.queue(default_concurrency_limit=4).launch(
            server_name=settings.host, server_port=settings.port, share=False, show_error=True, quiet=False,
        )
