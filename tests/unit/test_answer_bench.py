"""The answer benchmark's model-free checks: is a written answer grounded in its result, does it say it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "answer_prompt.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("answer_prompt", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("answer", "question", "rows", "expected"), [
    ("There are 275 artists.", "How many artists are there?", [[275]], True),
    ("There are 276 artists.", "How many artists are there?", [[275]], False),  # a number not in the result
    ("The average is 3.14.", "What is the average?", [[3.14159]], True),  # a rounding of a cell
    ("3 customers live in 2 cities.", "Which customers?", [["a", "x"], ["b", "y"], ["c", "x"]], False),
    ("The 3 oldest are A, B and C.", "Who are the 3 oldest?", [["A"], ["B"], ["C"]], True),  # from the question
    ("It has 3 rows.", "List them.", [["a"], ["b"], ["c"]], True),  # the row count
    ("Total: 1,234 sales.", "How many sales?", [[1234]], True),  # thousands separators
])
def test_grounded_numbers(bench: ModuleType, answer: str, question: str, rows: list[list[object]],
                          expected: bool) -> None:
    assert bench.grounded(answer, question, rows) is expected


@pytest.mark.parametrize(("answer", "rows", "expected"), [
    ("The oldest singer is Joe Sharp, aged 52.", [["Joe Sharp", 52]], True),
    ("The oldest singer is Joe Sharp.", [["Joe Sharp", 52]], False),  # a value left out
    ("The capital is paris.", [["Paris"]], True),  # case does not matter
    ("Many rows.", [[1], [2], [3], [4]], None),  # too big a result to say in full
    ("Nothing matched.", [], None),
])
def test_covers_small_results(bench: ModuleType, answer: str, rows: list[list[object]], expected: bool | None) -> None:
    assert bench.covers(answer, rows) is expected
