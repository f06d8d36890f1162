"""One real local model server for the whole test session (tests marked ``llm``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from agent.config import Endpoint, Settings
from agent.llm_server import LocalServer, ServerOptions
from agent.model_files import ensure_model_file


@pytest.fixture(scope="session")
def local_endpoint() -> Iterator[Endpoint]:
    """The embedded server, started for this session. SQLSAGE_TEST_BASE_URL reuses a running one instead
    (for development; CI always starts its own)."""
    settings = Settings()
    reuse = os.environ.get("SQLSAGE_TEST_BASE_URL")
    if reuse:
        yield Endpoint(reuse, settings.local_model, "not-needed")
        return
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
