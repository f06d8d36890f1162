"""How sure the model was of the SQL it wrote, from the log-probabilities of the SQL's own tokens.

With ``escalate_min_logprob`` set, an escalating run keeps its first try only when the model was sure of
every token of its SQL (besides the try having run and returned rows). The score is the lowest
log-probability among the tokens that make up the SQL: one token the model hesitated over (a column,
a join, a filter value) is where a wrong query usually forks. The fence and any prose around the SQL
do not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TokenLogprob = tuple[str, float]


@dataclass(frozen=True)
class Confidence:
    min_logprob: float  # the least likely token of the SQL
    mean_logprob: float
    tokens: int
    weakest: str  # that token, to show in the trace

    def to_dict(self) -> dict[str, object]:
        return {"min_logprob": round(self.min_logprob, 4), "mean_logprob": round(self.mean_logprob, 4),
                "tokens": self.tokens, "weakest": self.weakest}


def sql_confidence(text: str, tokens: Sequence[TokenLogprob], sql: str | None) -> Confidence | None:
    """The confidence of the SQL found in ``text``, whose tokens (with their log-probabilities) are
    ``tokens``. None when there are no log-probabilities, no SQL, or the tokens do not spell ``text``
    (a server that returned them for something else). Either may run a little past the other: a stop
    sequence cuts the text, and the token that held it may or may not be listed."""
    if not tokens or not sql:
        return None
    spelled = "".join(tok for tok, _ in tokens)
    if not (spelled.startswith(text) or text.startswith(spelled)):
        return None
    start = text.find(sql)
    if start < 0:
        return None
    end = start + len(sql)
    chosen: list[TokenLogprob] = []
    offset = 0
    for tok, logprob in tokens:
        if offset < end and offset + len(tok) > start and tok.strip():
            chosen.append((tok, logprob))
        offset += len(tok)
    if not chosen:
        return None
    weakest = min(chosen, key=lambda t: t[1])
    return Confidence(weakest[1], sum(lp for _, lp in chosen) / len(chosen), len(chosen), weakest[0])
