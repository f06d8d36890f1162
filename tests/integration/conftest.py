"""One real local model server for the whole test session (tests marked ``llm``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.config import Endpoint, Settings
from agent.llm_server import LocalServer, ServerOptions
from agent.model_files import ensure_model_file


@pytest.fixture(scope="session")
def local_endpoint() -> Iterator[Endpoint]:
    settings = Settings()
    model_path = ensure_model_file(settings.local_model, settings.cache_dir)
    server = LocalServer.start(
        ServerOptions(
            model_path, settings.local_model, settings.threads, settings.parallel_slots, settings.ctx_per_slot
        )
    )
    try:
        yield Endpoint(server.base_url, settings.local_model, "not-needed")
    finally:
        server.stop()
