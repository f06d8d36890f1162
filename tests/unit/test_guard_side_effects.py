"""The guard's lists are data: functions with server side effects by family, forbidden sqlglot nodes."""

from __future__ import annotations

import re

import pytest

from core.guard import (
    DANGEROUS_FUNCTION_PREFIXES,
    DANGEROUS_FUNCTIONS,
    SIDE_EFFECT_FAMILIES,
    UnsafeSQLError,
    check_sql,
    side_effect_family,
)

# The dialects each family's functions are written in; they are refused in every dialect all the same.
_DIALECTS = {"postgres": ("postgres", ""), "mysql": ("mysql", "")}


@pytest.mark.parametrize("sql", ["CALL p()", "VACUUM", "VACUUM INTO '/tmp/x.db'", "REINDEX t", "REINDEX TABLE t"])
@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_statements_without_a_node_class_of_their_own_are_refused(sql: str, dialect: str) -> None:
    with pytest.raises(UnsafeSQLError):
        check_sql(sql, dialect)


@pytest.mark.parametrize("key", sorted(SIDE_EFFECT_FAMILIES))
def test_every_function_of_a_side_effect_family_is_refused(key: str) -> None:
    family = SIDE_EFFECT_FAMILIES[key]
    assert family.names, key
    for name in sorted(family.names):
        assert name in DANGEROUS_FUNCTIONS
        for dialect in _DIALECTS[family.backend]:
            quoted = f"`{name}`" if dialect == "mysql" else f'"{name}"'
            for sql in (f"SELECT {name}(1)", f"SELECT a FROM t WHERE {name.upper()}('x') IS NOT NULL",
                        f"SELECT * FROM (SELECT pg_catalog.{name}()) AS s", f"SELECT {quoted}(1, 2)"):
                with pytest.raises(UnsafeSQLError) as info:
                    check_sql(sql, dialect)
                assert f"{name}()" in info.value.reason and family.does in info.value.reason, sql
    for prefix in family.prefixes:
        assert prefix in DANGEROUS_FUNCTION_PREFIXES
        with pytest.raises(UnsafeSQLError, match=re.escape(family.does)):
            check_sql(f"SELECT {prefix}something_new(1)", _DIALECTS[family.backend][0])


def test_the_families_cover_what_the_issue_lists() -> None:
    """ids, sequences, advisory locks, notifications, configuration, backend control, large objects, files."""
    for name in ("txid_current", "pg_current_xact_id", "nextval", "setval", "pg_advisory_xact_lock",
                 "pg_try_advisory_lock_shared", "pg_notify", "set_config", "pg_reload_conf", "pg_terminate_backend",
                 "pg_cancel_backend", "lo_creat", "lo_unlink", "lo_import", "pg_read_file", "pg_ls_waldir",
                 "pg_stat_file", "get_lock", "release_lock", "sleep", "load_file", "last_insert_id"):
        assert side_effect_family(name) is not None, name


@pytest.mark.parametrize(
    "sql",
    ["SELECT txid_current_if_assigned()", "SELECT currval('s')", "SELECT lastval()", "SELECT current_setting('x')",
     "SELECT pg_backend_pid()", "SELECT is_free_lock('x')", "SELECT pg_current_snapshot()",
     "SELECT name FROM lo_things", "SELECT nextval_count FROM t", "SELECT pg_column_size(name) FROM t"],
)
def test_harmless_neighbours_stay_allowed(sql: str) -> None:
    assert check_sql(sql, "postgres") == sql
