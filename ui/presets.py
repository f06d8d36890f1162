"""The presets Settings opens on: named technique sets, each with what the ladder measured for it.

*Fast* is the ladder's base (``core.config.MINIMAL``: one zero-shot call), *Default* the product's
defaults (the ladder's rung ``default``). *Most accurate* is the most accurate rung measured: on the
user's own questions when ``sqlsage eval`` ran on this database (``core.measured``), else the figures
shipped with the release. When that rung is one of the other two, no third preset is offered: that
preset says it is also the most accurate measured. Pure: no Gradio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.config import MINIMAL, Techniques
from core.measured import Figures, Measured

CUSTOM = "custom"
# The ladder's rung each preset was measured as (the names of evals.ladder.CONFIGS).
RUNGS = {"fast": "baseline", "default": "default"}


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    blurb: str
    techniques: Techniques
    rung: str
    figures: Figures | None
    most_accurate: bool = False


def product_defaults() -> Techniques:
    """The product's defaults, whatever ``SQLSAGE_TECH_*`` the server was started with (those are the
    server's choice, shown as the current settings, not a preset)."""
    return Techniques(**{name: field.get_default(call_default_factory=True)
                         for name, field in Techniques.model_fields.items()})


def fast() -> Techniques:
    return product_defaults().model_copy(update=dict(MINIMAL))


def _best(measured: Measured) -> str | None:
    """The most accurate rung (the faster one of a tie), or None when nothing was measured."""
    ranked = sorted(measured.rungs.items(), key=lambda kv: (-kv[1].accuracy, kv[1].median_s))
    return ranked[0][0] if ranked else None


def _own_rung_techniques(figures: Figures) -> Techniques | None:
    """A rung of the user's own evaluation as chat settings: its switches, with the written answer and the
    tools a chat needs (they change the time, not which SQL is written); None when they no longer fit."""
    try:
        return Techniques(**{**product_defaults().model_dump(), **figures.techniques, "answer": True, "tools": True})
    except ValueError:
        return None


def presets(measured: Measured) -> list[Preset]:
    """Fast, Default and (when it is another rung) Most accurate, with the figures of ``measured``."""
    best = _best(measured)
    out = [
        Preset("fast", "Fast", "One model call: the schema and the question, no examples, one candidate.",
               fast(), RUNGS["fast"], measured.rungs.get(RUNGS["fast"])),
        Preset("default", "Default", "One zero-shot try first; when it fails or returns nothing, similar "
               "solved questions, matched values and four candidates voted on.",
               product_defaults(), RUNGS["default"], measured.rungs.get(RUNGS["default"])),
    ]
    out = [p if p.rung != best else Preset(**{**p.__dict__, "most_accurate": True}) for p in out]
    if best is not None and best not in RUNGS.values():
        techniques = _own_rung_techniques(measured.rungs[best])
        if techniques is not None:
            out.append(Preset("accurate", "Most accurate", f"The most accurate rung measured: {best}.",
                              techniques, best, measured.rungs[best], most_accurate=True))
    return out


def figures_text(figures: Figures | None) -> str:
    if figures is None:
        return "not measured"
    text = f"{figures.accuracy:.0%} correct ({figures.correct}/{figures.n}), {figures.median_s:.1f} s median"
    return text + (f"; {figures.note}" if figures.note else "")


def choice_label(preset: Preset) -> str:
    """The line of the preset in the choice: title, figures, and whether it is the most accurate."""
    best = " · the most accurate measured" if preset.most_accurate else ""
    return f"{preset.title} · {figures_text(preset.figures)}{best}"


def presets_markdown(items: list[Preset], measured: Measured) -> str:
    """What each preset does, and where its figures come from."""
    lines = [f"- **{p.title}**: {p.blurb}" for p in items]
    best = [p.title for p in items if p.most_accurate]
    if best and not any(p.key == "accurate" for p in items):
        lines.append(f"- **Most accurate**: no measured rung beat {best[0]}, so it is the most accurate "
                     "choice as well.")
    return "\n".join(lines) + f"\n\nFigures {measured.label}."


def matching(items: list[Preset], techniques: Techniques | Mapping[str, Any]) -> str:
    """The key of the preset whose switches these are, or ``custom``."""
    data = techniques.model_dump() if isinstance(techniques, Techniques) else dict(techniques)
    for p in items:
        if p.techniques.model_dump() == data:
            return p.key
    return CUSTOM
