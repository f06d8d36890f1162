"""The declared dependencies are the ones the code uses: each runtime package of ``pyproject.toml`` is
imported by the project (or says why not), and every runtime package of ``requirements.in`` (what the
lock is resolved from) is declared in ``pyproject.toml`` too, so ``pip install .`` gets what the UI draws with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "agent", "tools", "knowledge", "ui", "evals", "cli")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))

# Declared but not imported by our code, and why.
NOT_IMPORTED = {
    "langchain-community": "a pin: ragas imports it, and does not import with 0.4.2",
    "onnxruntime": "chromadb's ONNXMiniLM_L6_V2 runs the embedding model with it (knowledge/embeddings.py)",
    "tokenizers": "knowledge/embeddings.py calls its API (no_padding, encode_batch) on chromadb's model.tokenizer",
}
IMPORT_NAMES = {"pyyaml": "yaml", "langgraph-checkpoint-sqlite": "langgraph.checkpoint.sqlite",
                "langgraph-checkpoint-postgres": "langgraph.checkpoint.postgres"}


def name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower()


RUNTIME = sorted(name_of(r) for r in PYPROJECT["project"]["dependencies"])
DEV = {name_of(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]}
SOURCE = "\n".join(p.read_text(encoding="utf-8") for package in PACKAGES for p in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("name", [n for n in RUNTIME if n not in NOT_IMPORTED])
def test_every_declared_package_is_imported(name: str) -> None:
    module = IMPORT_NAMES.get(name, name.replace("-", "_"))
    assert re.search(rf"^\s*(from|import) {re.escape(module)}\b", SOURCE, re.MULTILINE), (
        f"{name} is declared in pyproject.toml but no module of {', '.join(PACKAGES)} imports {module}: drop it, "
        f"or say in NOT_IMPORTED why it stays")


def test_every_runtime_package_of_requirements_in_is_declared() -> None:
    lines = (REPO / "requirements.in").read_text(encoding="utf-8").splitlines()
    wanted = {name_of(line) for line in lines if line.strip() and not line.startswith("#")} - DEV
    assert wanted <= set(RUNTIME), f"in requirements.in but not in pyproject.toml: {sorted(wanted - set(RUNTIME))}"
