"""An example sqlsage plugin: tools registered through the ``sqlsage`` entry point."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from tools import hookimpl

# Made-up rates, for the example only.
RATES_TO_USD = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27, "CAD": 0.73, "BRL": 0.2}


def days_between(start: str, end: str) -> int:
    """Count the days from one date to another (negative when end is before start).

    Args:
        start: The first date, as YYYY-MM-DD.
        end: The second date, as YYYY-MM-DD.
    """
    return (dt.date.fromisoformat(end.strip()) - dt.date.fromisoformat(start.strip())).days


def exchange_rate(currency: str) -> float:
    """How many US dollars one unit of a currency is worth (example rates, not real ones).

    Args:
        currency: A three-letter currency code such as EUR.
    """
    code = currency.strip().upper()
    if code not in RATES_TO_USD:
        raise ValueError(f"No rate for {code!r}; known currencies: {', '.join(RATES_TO_USD)}")
    return RATES_TO_USD[code]


@hookimpl
def register_tools(register: Callable[..., Any]) -> None:
    """The example plugin's tools."""
    register(days_between)
    register(exchange_rate)
