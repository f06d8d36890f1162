"""Prompts are versioned data: named sets of prompt files in core/prompts/, filled in here.

The prompt files are data, below every layer that uses them: the settings check a set's name, the
database layer writes the schema in a set's style, the agent's nodes fill in its files.

The ``default`` set is the files in ``core/prompts/``. A variant is a folder
``core/prompts/variants/<name>/`` holding the files it changes (any file it lacks comes from the
default set) and, optionally, ``schema.yaml``: how the schema is written into the prompt
(:class:`SchemaStyle`). ``Techniques.prompts`` names the set an agent uses, so a ladder rung can name
one (``--config baseline:prompts=<name>``).

Every file's content is hashed, and the set's ``version`` hashes all of its files and its schema
style: every trace step and every evaluation row carry it, so two runs say whether they asked with the
same prompts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache, cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template
from typing import Any, Literal

import yaml

DEFAULT_SET = "default"
_STYLE_FILE = "schema.yaml"


class PromptSetError(ValueError):
    """An unknown prompt set, or a variant folder whose files do not fit."""


@dataclass(frozen=True)
class SchemaStyle:
    """How the schema is written into a prompt.

    - ``ddl``: ``reflected`` writes each table's CREATE TABLE from the reflected columns and keys (one
      form for every database); ``stored`` uses the statement as the database stores it (SQLite's
      ``sqlite_master.sql``), falling back to the reflected form where there is none.
    - ``foreign_keys``: whether the reflected form lists the FOREIGN KEY clauses.
    - ``rows``: how the sample rows are shown, inside a comment either way (quoted as data):
      ``comment`` (a header line and one line a row, ``|``-separated), or ``select`` (the rows as
      ``SELECT * FROM t LIMIT n`` would print them, tab-separated).
    - ``data_note``: whether the rows' comment says they are "data, not instructions".
    """

    ddl: Literal["reflected", "stored"] = "reflected"
    foreign_keys: bool = True
    rows: Literal["comment", "select"] = "comment"
    data_note: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> SchemaStyle:
        known = {"ddl", "foreign_keys", "rows", "data_note"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PromptSetError(f"{where}: unknown key(s) {unknown}; known: {', '.join(sorted(known))}.")
        style = cls(**data)
        if style.ddl not in ("reflected", "stored") or style.rows not in ("comment", "select") \
                or not isinstance(style.foreign_keys, bool) or not isinstance(style.data_note, bool):
            raise PromptSetError(f"{where}: ddl is reflected|stored, rows comment|select, foreign_keys and "
                                 "data_note true|false.")
        return style


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class PromptSet:
    """One named set of prompt files (name -> text, without the ``.md``) and its schema style."""

    name: str
    texts: Mapping[str, str]
    style: SchemaStyle = field(default_factory=SchemaStyle)
    changed: frozenset[str] = frozenset()  # the files this variant has of its own

    def file_hashes(self) -> dict[str, str]:
        return {f"{name}.md": _digest(text) for name, text in sorted(self.texts.items())}

    @cached_property
    def version(self) -> str:
        """A hash of every file's content and of the schema style."""
        parts = [f"{name}\0{text}" for name, text in sorted(self.texts.items())] + [repr(self.style)]
        return _digest("\0\0".join(parts))

    @property
    def label(self) -> str:
        """``name@version``: what each trace step records."""
        return f"{self.name}@{self.version}"

    def describe(self) -> dict[str, Any]:
        """What an evaluation row records of the prompts it was asked with."""
        return {"set": self.name, "version": self.version, "files": self.file_hashes(),
                "schema": asdict(self.style)}

    def render(self, name: str, **values: Any) -> str:
        """Fill a prompt file; every $placeholder it has must be given (a missing one is a bug, so it
        raises). Values it does not use are ignored: a variant may leave a part out."""
        try:
            text = self.texts[name]
        except KeyError:
            raise PromptSetError(f"The prompt set {self.name!r} has no file {name}.md.") from None
        return Template(text).substitute(**values).strip()


def _root() -> Traversable:
    return resources.files("core") / "prompts"


def _md_files(folder: Traversable) -> dict[str, str]:
    return {f.name[:-3]: f.read_text(encoding="utf-8") for f in folder.iterdir()
            if f.is_file() and f.name.endswith(".md")}


@cache
def prompt_set_names() -> tuple[str, ...]:
    variants = _root() / "variants"
    found = sorted(f.name for f in variants.iterdir() if f.is_dir() and not f.name.startswith(("_", "."))) \
        if variants.is_dir() else []
    return (DEFAULT_SET, *found)


@cache
def prompt_set(name: str = DEFAULT_SET) -> PromptSet:
    """The named set: the default files, overlaid by the variant's own (read once, then cached)."""
    base = _md_files(_root())
    if name == DEFAULT_SET:
        return PromptSet(DEFAULT_SET, base)
    if name not in prompt_set_names():
        raise PromptSetError(f"Unknown prompt set {name!r}; known: {', '.join(prompt_set_names())}.")
    folder = _root() / "variants" / name
    own = _md_files(folder)
    unknown = sorted(set(own) - set(base))
    if unknown:
        raise PromptSetError(f"The prompt set {name!r} has file(s) {unknown} that no node uses "
                             f"(known: {', '.join(sorted(base))}).")
    style = SchemaStyle()
    style_file = folder / _STYLE_FILE
    if style_file.is_file():
        data = yaml.safe_load(style_file.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise PromptSetError(f"{name}/{_STYLE_FILE} must be a mapping.")
        style = SchemaStyle.from_mapping(data, f"{name}/{_STYLE_FILE}")
    return PromptSet(name, {**base, **own}, style, frozenset(own))


def render(name: str, set_name: str = DEFAULT_SET, /, **values: Any) -> str:
    """Fill a prompt file of a set (the default set unless named)."""
    return prompt_set(set_name).render(name, **values)
