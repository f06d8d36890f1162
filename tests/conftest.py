"""Shared fixtures. Unit tests may not reach a real model: only tests marked ``llm`` may."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import Endpoint, Settings, bundled_database_path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _no_real_model_outside_llm_tests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.node.get_closest_marker("llm") is None:
        def refuse(*_: object, **__: object) -> None:
            raise AssertionError("unit tests may not start or reach a real model; mark the test with @pytest.mark.llm")

        monkeypatch.setattr("agent.llm.open_endpoint", refuse)


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
