"""Shared fixtures. Unit tests may not reach a real model: only tests marked ``llm`` may."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from agent import model_files, prefix_cache
from agent.llm_server import LocalServer
from core.config import MINIMAL, Endpoint, Settings, bundled_database_path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Every test runs the minimal techniques (one zero-shot call with repair: see ``core.config.MINIMAL``)
    unless it asks for more: scripted tests script every model call, and real-model tests were sized for
    one. Set in the environment, as a user would set them, before any test module is imported, so that
    module constants, module-scoped fixtures and the CLI subprocesses all start from them. The product's
    defaults have tests of their own, which clear these (test_eval_ladder, test_graph, test_techniques)."""
    for switch, value in MINIMAL.items():
        os.environ[f"SQLSAGE_TECH_{switch.upper()}"] = str(value).lower()


class RealModelRefused(BaseException):
    """Raised where a unit test would start a model server or build a model client. A BaseException, so
    that no ``except Exception`` in the code under test turns it into an error record and carries on."""


REFUSAL = ("unit tests may not start or reach a real model: mark the test with @pytest.mark.llm, or, for a "
           "fake server the test runs itself, use the allow_model_client fixture")


@pytest.fixture(autouse=True)
def _no_real_model_outside_llm_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse where a model server starts and where a model's HTTP client is built, at their definitions
    (so no name bound at import time, in any module, gets past it): the llama.cpp server's start and the
    spawn of its child process (which a caller could reach without ``start``), the OpenAI clients that
    ChatOpenAI and the RAGAS judge build, and the HTTP client that warms the server's slots
    (``prefix_cache.slot_client``). The model's part files are refused too (looked up by
    ``ensure_model_file`` in its own module): a fresh cache would otherwise get a 1.1 GB copy, hashed,
    before the server's start refuses. ``allow_model_client`` lifts the refusal of clients for a test
    that talks to a fake server of its own; nothing lifts the others."""
    if request.node.get_closest_marker("llm") is not None:
        return
    def refuse(*_: object, **__: object) -> None:
        raise RealModelRefused(REFUSAL)

    monkeypatch.setattr(LocalServer, "start", refuse)
    monkeypatch.setattr(LocalServer, "_spawn", refuse)
    monkeypatch.setattr(model_files, "part_paths", refuse)
    if "allow_model_client" not in request.fixturenames:
        monkeypatch.setattr(openai.OpenAI, "__init__", refuse)
        monkeypatch.setattr(openai.AsyncOpenAI, "__init__", refuse)
        monkeypatch.setattr(prefix_cache, "slot_client", refuse)


@pytest.fixture
def allow_model_client() -> None:
    """This test builds a model client for a fake server that it runs itself (never a real model)."""


@pytest.fixture
def chinook_copy(tmp_path: Path) -> Path:
    """A private copy of the bundled Chinook database (tests may check it is left unchanged)."""
    target = tmp_path / "chinook.sqlite"
    shutil.copyfile(bundled_database_path(), target)
    return target


@pytest.fixture
def settings(tmp_path: Path, chinook_copy: Path) -> Settings:
    return Settings(db_url=f"sqlite:///{chinook_copy}", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")


@pytest.fixture(scope="session")
def spider_dir() -> Path:
    path = SHARED / "spider-train"
    if not (path / "train.json").exists():
        pytest.skip(f"Spider training data not found at {path} (it lives in ../shared beside the repo)")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Iterator[Path]:
    path = REPO / "artifacts"
    path.mkdir(exist_ok=True)
    yield path


@pytest.fixture(scope="session")
def local_endpoint() -> Iterator[Endpoint]:
    """The embedded model server, started once for the test session (tests marked ``llm``).
    SQLSAGE_TEST_BASE_URL reuses a running server instead (for development; CI starts its own)."""
    from agent.llm import start_local_server

    settings = Settings()
    reuse = os.environ.get("SQLSAGE_TEST_BASE_URL")
    if reuse:
        yield Endpoint(reuse, settings.local_model, "not-needed")
        return
    server = start_local_server(settings)
    try:
        yield Endpoint(server.base_url, settings.local_model, "not-needed")
    finally:
        server.stop()
