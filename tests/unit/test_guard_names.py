"""Every rule of the guard that names a sqlglot node class names one that exists in the installed sqlglot:
a name that is not there is skipped silently by the guard (looked up with getattr), so only this test sees it."""

from __future__ import annotations

import pytest
from sqlglot import exp

from core import guard

# The guard's lists of sqlglot class names: every module-level ``*_NAMES`` collection of strings.
NAME_LISTS = {name: value for name, value in vars(guard).items()
              if name.endswith("_NAMES") and isinstance(value, tuple | list | set | frozenset)}


def test_the_guard_has_lists_of_node_names_to_check() -> None:
    assert NAME_LISTS, "core.guard has no *_NAMES list of sqlglot classes any more: point this test at the new one"


@pytest.mark.parametrize("list_name", sorted(NAME_LISTS))
def test_every_name_is_a_sqlglot_expression_class(list_name: str) -> None:
    missing = [n for n in NAME_LISTS[list_name]
               if not (isinstance(getattr(exp, n, None), type) and issubclass(getattr(exp, n), exp.Expression))]
    assert not missing, f"{list_name} names classes that sqlglot does not have (the guard skips them): {missing}"
    assert len(set(NAME_LISTS[list_name])) == len(NAME_LISTS[list_name]), f"{list_name} names a class twice"
