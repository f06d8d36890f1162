"""On-disk knowledge store: one Chroma collection per kind of item, embedded offline with MiniLM.

Kinds: ``schema`` (table/column descriptions), ``doc`` (business docs), ``example`` (question/SQL pairs),
``value`` (distinct column values). Scores are cosine similarities in ``[0, 1]``.

Metadata rules (Chroma only stores ``str``/``int``/``float``/``bool`` values): ``None`` values are dropped,
lists/tuples/sets are joined with ``","``, anything else non-scalar is stored as ``str(value)``. Keys starting
with ``_`` are reserved: ``_hash`` holds a digest of text + metadata, used by :meth:`KnowledgeStore.upsert`
to skip unchanged items, and is removed again from the metadata handed back.

``where`` filters are Chroma's (``{"db_id": "x"}``, ``{"db_id": {"$ne": "x"}}``, ``{"$and": [...]}``, ...).
The client runs with anonymized telemetry off and never touches the network: embeddings come from the
:class:`~knowledge.embeddings.MiniLMEmbedder` passed in, which is given to Chroma every time a collection
is opened (Chroma's own default embedding function would try to download a model).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

from knowledge.embeddings import MiniLMEmbedder

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

__all__ = ["KINDS", "Hit", "Item", "Kind", "KnowledgeStore", "MetadataValue", "sanitize_metadata"]

Kind = Literal["schema", "doc", "example", "value"]
KINDS: tuple[Kind, ...] = get_args(Kind)
MetadataValue = str | int | float | bool
BATCH_SIZE = 256
HASH_KEY = "_hash"
COLLECTION_PREFIX = "sqlsage-"


@dataclass(frozen=True)
class Item:
    id: str
    kind: Kind
    text: str
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    item: Item
    score: float  # cosine similarity, 1 - cosine distance clipped to [0, 1]


def sanitize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    """Make ``metadata`` storable by Chroma: drop ``None``, join sequences with ``","``, stringify the rest.

    Reserved keys (starting with ``_``) are dropped.
    """
    out: dict[str, MetadataValue] = {}
    for key, value in (metadata or {}).items():
        key = str(key)
        if value is None or key.startswith("_"):
            continue
        if isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, list | tuple | set | frozenset):
            parts = sorted(value, key=str) if isinstance(value, set | frozenset) else value
            out[key] = ",".join(str(v) for v in parts if v is not None)
        elif hasattr(value, "item") and callable(value.item):  # numpy scalars
            scalar = value.item()
            out[key] = scalar if isinstance(scalar, bool | int | float | str) else str(scalar)
        else:
            out[key] = str(value)
    return out


def _content_hash(text: str, metadata: Mapping[str, MetadataValue]) -> str:
    payload = json.dumps([text, sorted(metadata.items())], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _public_metadata(metadata: Mapping[str, Any] | None) -> dict[str, MetadataValue]:
    return {k: v for k, v in (metadata or {}).items() if not k.startswith("_")}


def _check_kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return kind


class KnowledgeStore:
    """Persistent vector store (Chroma ``PersistentClient``) with one cosine collection per :data:`Kind`.

    ``client`` injects another Chroma client instead, e.g. ``chromadb.HttpClient`` for a Chroma server
    shared by several app workers (see ``agent.shared_state``); ``path`` is then unused and may be None.
    """

    def __init__(self, path: Path | None, embedder: MiniLMEmbedder, client: ClientAPI | None = None) -> None:
        import chromadb
        from chromadb.config import Settings
        from chromadb.utils.embedding_functions import register_embedding_function

        # Chroma persists the embedding function's name + config with each collection. We always pass the
        # embedder explicitly, but any code that opens a collection without one (client.get_collection(name))
        # makes Chroma look the name up in its registry; register ours so that works in a fresh process too.
        register_embedding_function(MiniLMEmbedder)
        self.path = Path(path) if path is not None else None
        self.embedder = embedder
        if client is None:
            if self.path is None:
                raise ValueError("KnowledgeStore needs a path, or a Chroma client")
            self.path.mkdir(parents=True, exist_ok=True)
            client = chromadb.PersistentClient(path=str(self.path), settings=Settings(anonymized_telemetry=False))
        self._client: ClientAPI | None = client
        self._collections: dict[Kind, Collection] = {}

    # -- plumbing -----------------------------------------------------------------------------------

    @property
    def client(self) -> ClientAPI:
        if self._client is None:
            raise RuntimeError("KnowledgeStore is closed")
        return self._client

    def _collection(self, kind: str) -> Collection:
        kind = _check_kind(kind)
        col = self._collections.get(kind)
        if col is None:
            col = self.client.get_or_create_collection(
                name=COLLECTION_PREFIX + kind,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"kind": kind},
                # chromadb types this as EmbeddingFunction[Documents | Images]; ours embeds Documents only,
                # like chromadb's own embedding functions (which need the same ignore).
                embedding_function=self.embedder,  # type: ignore[arg-type]
            )
            self._collections[kind] = col
        return col

    def close(self) -> None:
        """Release the underlying Chroma system (files stay on disk). Idempotent."""
        if self._client is not None:
            self._collections.clear()
            close = getattr(self._client, "close", None)
            if callable(close):
                close()
            self._client = None

    def __enter__(self) -> KnowledgeStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- API ----------------------------------------------------------------------------------------

    def upsert(self, items: Sequence[Item]) -> int:
        """Insert or update ``items``; returns how many were written.

        Items whose id already holds the same text and (sanitised) metadata are skipped, so re-indexing
        only embeds what changed. A changed item replaces the stored one completely (metadata keys it no
        longer has are removed). Within one call a repeated id keeps its last occurrence.
        """
        by_kind: dict[Kind, dict[str, tuple[str, dict[str, MetadataValue]]]] = {}
        for item in items:
            kind = _check_kind(item.kind)
            if not isinstance(item.id, str) or not item.id:
                raise ValueError(f"item id must be a non-empty string, got {item.id!r}")
            meta = sanitize_metadata(item.metadata)
            meta[HASH_KEY] = _content_hash(item.text, meta)
            by_kind.setdefault(kind, {})[item.id] = (item.text, meta)

        written = 0
        for kind, entries in by_kind.items():
            col = self._collection(kind)
            ids = list(entries)
            stored_hash: dict[str, Any] = {}
            stale: list[str] = []  # changed items whose stored metadata has keys the new one lacks
            for start in range(0, len(ids), BATCH_SIZE):
                got = col.get(ids=ids[start : start + BATCH_SIZE], include=["metadatas"])
                for id_, stored in zip(got["ids"], got["metadatas"] or [], strict=False):
                    stored = stored or {}
                    stored_hash[id_] = stored.get(HASH_KEY)
                    new_meta = entries[id_][1]
                    if stored_hash[id_] != new_meta[HASH_KEY] and not stored.keys() <= new_meta.keys():
                        stale.append(id_)
            changed = [i for i in ids if stored_hash.get(i) != entries[i][1][HASH_KEY]]
            # Chroma's upsert merges metadata into what is stored (dropped keys would survive), so those
            # items are removed first and re-added whole.
            for start in range(0, len(stale), BATCH_SIZE):
                col.delete(ids=stale[start : start + BATCH_SIZE])
            for start in range(0, len(changed), BATCH_SIZE):
                batch = changed[start : start + BATCH_SIZE]
                col.upsert(
                    ids=batch,
                    documents=[entries[i][0] for i in batch],
                    metadatas=[entries[i][1] for i in batch],
                )
            written += len(changed)
        return written

    def delete(
        self, kind: Kind, ids: Sequence[str] | None = None, where: dict[str, Any] | None = None
    ) -> int:
        """Delete items of ``kind`` by ``ids`` and/or ``where`` (both: items matching both).

        With neither, every item of ``kind`` is deleted. Returns the number deleted.
        """
        col = self._collection(kind)
        if ids is not None and len(ids) == 0:
            return 0
        got = col.get(ids=list(ids) if ids is not None else None, where=where or None, include=[])
        found = list(got["ids"])
        for start in range(0, len(found), BATCH_SIZE):
            col.delete(ids=found[start : start + BATCH_SIZE])
        return len(found)

    def query(self, kind: Kind, text: str, k: int = 5, where: dict[str, Any] | None = None) -> list[Hit]:
        """The ``k`` items of ``kind`` most similar to ``text``, best first, optionally filtered by ``where``.

        ``score`` is the cosine similarity (1 - cosine distance, clipped to [0, 1]).
        """
        kind = _check_kind(kind)
        if k <= 0:
            return []
        col = self._collection(kind)
        total = col.count()
        if total == 0:
            return []
        res = col.query(
            query_texts=[text],
            n_results=min(k, total),
            where=where or None,
            include=["documents", "metadatas", "distances"],
        )
        ids = res["ids"][0]
        docs = (res["documents"] or [[]])[0]
        metas = (res["metadatas"] or [[]])[0]
        dists = (res["distances"] or [[]])[0]
        hits = []
        for id_, doc, meta, dist in zip(ids, docs, metas, dists, strict=True):
            score = min(1.0, max(0.0, 1.0 - float(dist)))
            hits.append(Hit(Item(id_, kind, doc or "", _public_metadata(meta)), score))
        return hits

    def get(
        self, kind: Kind, where: dict[str, Any] | None = None, limit: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Item]:
        """Items of ``kind`` (optionally only those of ``ids``, filtered by ``where``, at most ``limit``)."""
        kind = _check_kind(kind)
        col = self._collection(kind)
        if ids is not None and len(ids) == 0:
            return []
        res = col.get(ids=list(ids) if ids is not None else None, where=where or None, limit=limit,
                      include=["documents", "metadatas"])
        n = len(res["ids"])
        raw_docs, raw_metas = res["documents"], res["metadatas"]
        docs: list[str | None] = list(raw_docs) if raw_docs is not None else [None] * n
        metas: list[Mapping[str, Any] | None] = list(raw_metas) if raw_metas is not None else [None] * n
        return [
            Item(id_, kind, doc or "", _public_metadata(meta))
            for id_, doc, meta in zip(res["ids"], docs, metas, strict=True)
        ]

    def count(self, kind: Kind) -> int:
        return self._collection(kind).count()

    def marks(self, kind: Kind) -> dict[str, MetadataValue]:
        """The notes kept on ``kind``'s collection (e.g. which example pool is indexed), besides its kind."""
        stored = self._collection(kind).metadata or {}
        return {k: v for k, v in stored.items() if k != "kind"}

    def mark(self, kind: Kind, **values: MetadataValue | None) -> None:
        """Set (a value) or clear (None) notes on ``kind``'s collection. They live in the store itself, so a
        restart, another worker on the same Chroma server or a copied data folder all see them."""
        col = self._collection(kind)
        merged = {**(col.metadata or {}), **values, "kind": kind}
        col.modify(metadata={k: v for k, v in merged.items() if v is not None})
