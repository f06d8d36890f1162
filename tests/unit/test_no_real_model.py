"""The unit tests' guard against a real model refuses where a server starts or a client is built, whatever
name the code under test bound at import time."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import service
from agent.llm import build_chat_model, start_local_server
from agent.llm_server import LocalServer, ServerOptions
from agent.model_files import ensure_model_file
from agent.prefix_cache import PrefixWarmer
from agent.service import Assistant
from core.config import Endpoint, Settings
from evals.ragas_metrics import judge_llm


def refused() -> pytest.RaisesExc[BaseException]:
    """The guard's refusal (a BaseException, so that no ``except Exception`` swallows it)."""
    return pytest.raises(BaseException, match="unit tests may not start or reach a real model")


def test_opening_the_assistant_without_a_model_would_start_the_server_and_is_refused(settings: Settings) -> None:
    with refused():
        Assistant.open(settings)  # no llm=: the service's own bound open_endpoint starts llama.cpp


def test_the_service_s_bound_open_endpoint_is_refused_too(settings: Settings) -> None:
    with refused():
        service.open_endpoint(settings)


def test_starting_the_local_server_is_refused(settings: Settings) -> None:
    with refused():
        start_local_server(settings)
    with refused():
        LocalServer.start(ServerOptions(model_path=Path("/no/such.gguf"), alias="m", threads=1))


def test_assembling_the_model_file_is_refused_before_a_byte_is_copied(settings: Settings) -> None:
    with refused():
        ensure_model_file(settings.local_model, settings.cache_dir)
    assert not (settings.cache_dir / "models").exists()  # refused before the copy begins


def test_spawning_the_server_s_process_without_start_is_refused() -> None:
    server = LocalServer(ServerOptions(model_path=Path("/no/such.gguf"), alias="m", threads=1))
    with refused():
        server._spawn(timeout_s=5.0)  # where the child process is created: no way round ``start`` past it
    assert server.process is None


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080/v1", "https://api.openai.com/v1"])
def test_building_a_chat_model_client_is_refused(settings: Settings, base_url: str) -> None:
    with refused():
        build_chat_model(settings, Endpoint(base_url, "m", "k"))
    with refused():
        Assistant.open(settings.with_overrides(base_url=base_url, model="m"))


def test_the_client_that_warms_the_server_s_slots_is_refused() -> None:
    with refused():
        PrefixWarmer("http://127.0.0.1:8080", "prefix", "name.bin", None, 5.0)  # no client=: its own, to the server


def test_the_ragas_judge_client_is_refused(settings: Settings) -> None:
    with refused():
        judge_llm(Endpoint("http://127.0.0.1:8080/v1", "m", "k"), settings)


def test_a_test_may_build_a_client_for_its_own_fake_server(settings: Settings, allow_model_client: None) -> None:
    llm = build_chat_model(settings, Endpoint("http://127.0.0.1:1/v1", "m", "k"))
    assert llm.model_name == "m"
    with refused():  # but it still never starts a server
        start_local_server(settings)
