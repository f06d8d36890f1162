"""Speculative decoding by the local server: the setting, its way into the server's command line and
CommonParams. No model is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.llm_server import SPECULATIVE_MODES, ServerOptions, main, speculative_params
from core.config import Settings, draft_model_name


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_the_server_command_carries_the_mode_and_the_draft_model() -> None:
    assert _value(ServerOptions(Path("m.gguf"), "m", 1).argv(), "--speculative") == "off"
    ngram = ServerOptions(Path("m.gguf"), "m", 1, speculative="ngram", draft_max=6).argv()
    assert _value(ngram, "--speculative") == "ngram" and _value(ngram, "--draft-max") == "6"
    assert "--draft-model" not in ngram
    draft = ServerOptions(Path("m.gguf"), "m", 1, speculative="draft", draft_model_path=Path("d.gguf")).argv()
    assert _value(draft, "--draft-model") == "d.gguf"


def test_server_options_refuse_an_unknown_mode_and_a_draft_without_its_model() -> None:
    with pytest.raises(ValueError, match="speculative must be one of"):
        ServerOptions(Path("m.gguf"), "m", 1, speculative="eagle")
    with pytest.raises(ValueError, match="draft_model_path"):
        ServerOptions(Path("m.gguf"), "m", 1, speculative="draft")
    with pytest.raises(ValueError, match="draft_model_path"):
        ServerOptions(Path("m.gguf"), "m", 1, speculative="ngram", draft_model_path=Path("d.gguf"))
    with pytest.raises(SystemExit):  # the child refuses it too, before anything loads
        main(["--model", "m.gguf", "--speculative", "eagle"])


def test_each_mode_sets_llama_cpps_speculative_params() -> None:
    xllamacpp = pytest.importorskip("xllamacpp")
    kinds = xllamacpp.common_speculative_type
    off = xllamacpp.CommonParams()
    speculative_params(off, "off", 8, 1)
    assert list(off.speculative.types) == [kinds.COMMON_SPECULATIVE_TYPE_NONE]
    ngram = xllamacpp.CommonParams()
    speculative_params(ngram, "ngram", 6, 1)
    assert list(ngram.speculative.types) == [kinds.COMMON_SPECULATIVE_TYPE_NGRAM_SIMPLE]
    assert ngram.speculative.ngram_simple.size_m == 6 and ngram.speculative.ngram_simple.size_n == 3
    draft = xllamacpp.CommonParams()
    speculative_params(draft, "draft", 5, 2, "/models/d.gguf")
    spec = draft.speculative
    assert list(spec.types) == [kinds.COMMON_SPECULATIVE_TYPE_DRAFT_SIMPLE]
    assert spec.draft.mparams.path == "/models/d.gguf" and spec.draft.n_max == 5
    assert spec.draft.cpuparams.n_threads == 2 and spec.draft.cpuparams_batch.n_threads == 2
    assert set(SPECULATIVE_MODES) == {"off", "ngram", "draft"}


def test_the_setting_is_off_by_default_and_refuses_nonsense(tmp_path: Path) -> None:
    assert Settings(cache_dir=tmp_path).speculative == "off"
    assert Settings(cache_dir=tmp_path, speculative="ngram").speculative == "ngram"
    with pytest.raises(ValidationError):
        Settings(cache_dir=tmp_path, speculative="fast")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="smaller model to draft"):
        Settings(cache_dir=tmp_path, speculative="draft", local_model="qwen2.5-coder-0.5b")
    assert draft_model_name("qwen2.5-coder-1.5b") == "qwen2.5-coder-0.5b"


def test_the_setting_reaches_the_server_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import agent.llm as llm

    started: list[ServerOptions] = []
    monkeypatch.setattr(llm, "ensure_model_file", lambda name, cache: tmp_path / f"{name}.gguf")
    monkeypatch.setattr(llm.LocalServer, "start", classmethod(lambda cls, options, timeout_s: started.append(options)))
    llm.start_local_server(Settings(cache_dir=tmp_path, speculative="draft", slot_cache_mib=0))
    llm.start_local_server(Settings(cache_dir=tmp_path, speculative="ngram", slot_cache_mib=0))
    assert started[0].speculative == "draft" and started[0].draft_model_path == tmp_path / "qwen2.5-coder-0.5b.gguf"
    assert started[1].speculative == "ngram" and started[1].draft_model_path is None
    drafting_for_itself = Settings(cache_dir=tmp_path, speculative="draft").with_overrides(
        local_model="qwen2.5-coder-0.5b")  # a flag, applied without validation
    with pytest.raises(llm.LLMUnavailable, match="no smaller model"):
        llm.start_local_server(drafting_for_itself)
