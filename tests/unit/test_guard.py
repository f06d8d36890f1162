"""The SQL safety guard: every corpus case, plus the API's edges."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.guard import (
    DANGEROUS_FUNCTIONS,
    DIALECT_DANGEROUS_FUNCTIONS,
    MAX_SQL_LENGTH,
    SQLSyntaxError,
    UnsafeSQLError,
    check_sql,
    dialect_for_url_backend,
)

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "guard"
SEPARATOR = "\n-- ----\n"


def load_corpus(name: str) -> list[str]:
    """Cases of tests/fixtures/guard/<name>.sql: entries separated by a line holding only '-- ----'.

    Leading lines starting with '-- #' are the file's header. Read with newline="" so that no line ending
    or Unicode line separator inside a case is translated.
    """
    with open(CORPUS_DIR / f"{name}.sql", encoding="utf-8", newline="") as fh:
        text = fh.read()
    lines = text.split("\n")
    while lines and lines[0].startswith("-- #"):
        lines.pop(0)
    return [case for case in "\n".join(lines).split(SEPARATOR) if case.strip()]


def corpus_params(kind: str) -> list[pytest.ParameterSet]:
    params = []
    for dialect in ("sqlite", "postgres"):
        name = f"{kind}_{dialect}"
        for i, case in enumerate(load_corpus(name)):
            params.append(pytest.param(case, dialect, id=f"{name}:{i:03d}"))
    return params


REFUSED = corpus_params("refuse")
ALLOWED = corpus_params("allow")


def test_corpus_sizes() -> None:
    assert len(REFUSED) >= 300
    assert len(ALLOWED) >= 60
    for name in ("refuse_sqlite", "refuse_postgres", "allow_sqlite", "allow_postgres"):
        cases = load_corpus(name)
        assert len(cases) == len(set(cases)), f"duplicate cases in {name}.sql"


@pytest.mark.parametrize(("sql", "dialect"), REFUSED)
def test_refused_corpus(sql: str, dialect: str) -> None:
    with pytest.raises(UnsafeSQLError) as info:
        check_sql(sql, dialect)
    assert info.value.reason
    assert info.value.sql == sql


@pytest.mark.parametrize(("sql", "dialect"), ALLOWED)
def test_allowed_corpus(sql: str, dialect: str) -> None:
    statement = check_sql(sql, dialect)
    assert isinstance(statement, str) and statement
    assert statement == statement.strip()
    assert not statement.endswith(";")
    assert statement in sql  # the caller's own text, never regenerated
    assert check_sql(statement, dialect) == statement


# --- the exceptions ---------------------------------------------------------------------------------


def test_unsafe_error_carries_reason_and_sql() -> None:
    with pytest.raises(UnsafeSQLError) as info:
        check_sql("DROP TABLE Track")
    err = info.value
    assert isinstance(err, ValueError)
    assert not isinstance(err, SQLSyntaxError)
    assert err.sql == "DROP TABLE Track"
    assert "DROP" in err.reason
    assert str(err) == err.reason


def test_syntax_error_has_line_and_col() -> None:
    sql = "SELECT Name\nFROM Track\nWHERE Milliseconds > ORDER BY Name"
    with pytest.raises(SQLSyntaxError) as info:
        check_sql(sql)
    err = info.value
    assert isinstance(err, UnsafeSQLError)
    assert err.sql == sql
    assert err.line == 3
    assert isinstance(err.col, int) and err.col > 0
    assert err.reason and "\x1b" not in err.reason  # no terminal colour codes from sqlglot
    assert "line 3" in str(err)


def test_syntax_error_first_line() -> None:
    with pytest.raises(SQLSyntaxError) as info:
        check_sql("SELECT * FRM Track")
    assert info.value.line == 1
    assert info.value.col == 14
    assert "near 'Track'" in info.value.reason


def test_syntax_error_from_the_tokenizer_has_position() -> None:
    with pytest.raises(SQLSyntaxError) as info:
        check_sql("SELECT Name\nFROM Track WHERE Name = 'unterminated")
    err = info.value
    assert (err.line, err.col) == (2, 25)
    assert "unterminated" in err.reason


def test_syntax_error_reason_hides_sqlglot_internals() -> None:
    with pytest.raises(SQLSyntaxError) as info:
        check_sql("UPDATE OR ROLLBACK Track SET Name = 'x'")
    assert "<Token" not in info.value.reason
    with pytest.raises(SQLSyntaxError) as info:
        check_sql("UNLISTEN *", "postgres")
    assert "<class" not in info.value.reason


def test_unterminated_comment_is_a_syntax_error() -> None:
    with pytest.raises(SQLSyntaxError):
        check_sql("SELECT 1 /* never closed")


# --- empty input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    ["", " ", "\n\t  \n", "-- only a comment", "/* only a block comment */", ";", " ; ;; ", "-- a\n-- b\n", "/* x */;"],
)
def test_empty_statements_are_refused(sql: str) -> None:
    with pytest.raises(UnsafeSQLError) as info:
        check_sql(sql)
    assert not isinstance(info.value, SQLSyntaxError)
    assert info.value.reason == "empty statement"


def test_non_text_is_refused() -> None:
    with pytest.raises(UnsafeSQLError):
        check_sql(None)  # type: ignore[arg-type]
    with pytest.raises(UnsafeSQLError):
        check_sql(b"SELECT 1")  # type: ignore[arg-type]


def test_overlong_statement_is_refused() -> None:
    sql = "SELECT 1" + " " * MAX_SQL_LENGTH
    with pytest.raises(UnsafeSQLError, match="longer"):
        check_sql(sql)


def test_deep_nesting_is_refused_not_crashing() -> None:
    sql = "SELECT " + "(" * 3000 + "1" + ")" * 3000
    with pytest.raises(UnsafeSQLError):
        check_sql(sql)


# --- what is returned -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", "SELECT 1"),
        ("SELECT 1;", "SELECT 1"),
        ("  SELECT 1 ;  \n", "SELECT 1"),
        ("SELECT 1;;", "SELECT 1"),
        ("SELECT 1 ; ; ;", "SELECT 1"),
        ("; SELECT 1", "SELECT 1"),
        ("SELECT 1; -- done", "SELECT 1"),
        ("SELECT 1 -- why\n;", "SELECT 1 -- why"),
        ("SELECT ';' AS s;", "SELECT ';' AS s"),
        ("select   a ,b  from  t", "select   a ,b  from  t"),
        ("-- lead\nSELECT /* keep */ 1 -- tail", "-- lead\nSELECT /* keep */ 1 -- tail"),
        ("\n\nWITH x AS (SELECT 1) SELECT * FROM x;\n\n", "WITH x AS (SELECT 1) SELECT * FROM x"),
    ],
)
def test_returns_the_statement_as_written(sql: str, expected: str) -> None:
    assert check_sql(sql) == expected


def test_default_dialect_is_sqlite() -> None:
    assert check_sql("SELECT [x] FROM t") == "SELECT [x] FROM t"


def test_unknown_dialect_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        check_sql("SELECT 1", "no-such-dialect")


# --- dialects ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "dialect"),
    [
        ("sqlite", "sqlite"),
        ("postgresql", "postgres"),
        ("mysql", "mysql"),
        ("mariadb", "mysql"),
        ("mssql", "tsql"),
        ("oracle", "oracle"),
        ("duckdb", "duckdb"),
        ("snowflake", "snowflake"),
        ("bigquery", "bigquery"),
        ("PostgreSQL", "postgres"),
        ("postgresql+psycopg", "postgres"),
        ("redshift", "redshift"),
        ("trino", "trino"),
        ("firebird", ""),
        ("no-such-backend", ""),
        ("", ""),
    ],
)
def test_dialect_for_url_backend(backend: str, dialect: str) -> None:
    assert dialect_for_url_backend(backend) == dialect
    check_sql("SELECT 1", dialect)  # every answer is a dialect sqlglot knows


GUARDED_DIALECTS = ["sqlite", "postgres", "mysql", "duckdb", "tsql", "oracle", "snowflake", "bigquery", ""]


@pytest.mark.parametrize("dialect", GUARDED_DIALECTS)
@pytest.mark.parametrize("name", sorted(DANGEROUS_FUNCTIONS))
def test_dangerous_functions_refused_in_every_dialect(name: str, dialect: str) -> None:
    for sql in (
        f"SELECT {name}('x')",
        f"SELECT {name.upper()}('x', 1)",
        f"SELECT * FROM {name}('x') AS t",
        f"SELECT a FROM t WHERE {name}(1, 2) > 0",
    ):
        with pytest.raises(UnsafeSQLError):
            check_sql(sql, dialect)


@pytest.mark.parametrize("dialect", GUARDED_DIALECTS)
def test_dangerous_function_prefixes(dialect: str) -> None:
    for name in ("dblink_exec", "lo_unlink", "pg_read_whatever", "pg_ls_logdir", "xp_dirtree", "pg_stat_reset_shared"):
        with pytest.raises(UnsafeSQLError):
            check_sql(f"SELECT {name}('x')", dialect)


def test_dialect_specific_dangerous_functions() -> None:
    for dialect, names in DIALECT_DANGEROUS_FUNCTIONS.items():
        for name in names:
            with pytest.raises(UnsafeSQLError):
                check_sql(f"SELECT * FROM {name}('x')", dialect)
    # SQLite's glob(pattern, text) is the GLOB operator: harmless there.
    assert check_sql("SELECT glob('*a*', Name) FROM Track")


@pytest.mark.parametrize(
    "sql", ["SELECT current_setting('work_mem')", "SELECT txid_current_if_assigned()", "SELECT currval('s')",
            "SELECT set_configuration FROM t"]
)
def test_harmless_postgres_functions_allowed(sql: str) -> None:
    assert check_sql(sql, "postgres") == sql


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        # MySQL runs the inside of /*! ... */ and MariaDB of /*M! ... */.
        ("SELECT 1 /*! ; DROP TABLE t */", "mysql"),
        ("SELECT 1 /*!50000 , SLEEP(5) */", "mysql"),
        ("SELECT 1 /*m! , SLEEP(5) */", "mysql"),
        ("SELECT 1 INTO @x", "mysql"),
        ("SELECT * FROM t LOCK IN SHARE MODE", "mysql"),
        ("SELECT LOAD_FILE('/etc/passwd')", "mysql"),
        ("SELECT BENCHMARK(1000000, MD5(1))", "mysql"),
        ("SELECT `sleep`(5)", "mysql"),
        ("SELECT 'it\\'s'", "mysql"),
        ('SELECT "a\\"; DROP TABLE t; --"', "mysql"),
        ("REPLACE INTO t VALUES (1)", "mysql"),
        ("SELECT * FROM t WITH (UPDLOCK)", "tsql"),
        ("SELECT * FROM t WITH (XLOCK, ROWLOCK)", "tsql"),
        ("SELECT * INTO #tmp FROM t", "tsql"),
        ("EXEC xp_cmdshell 'dir'", "tsql"),
        ("SELECT * FROM OPENROWSET('SQLNCLI', 'x', 'SELECT 1')", "tsql"),
        ("SELECT * FROM '/etc/passwd'", "duckdb"),
        ("SELECT * FROM 'https://example.com/x.parquet'", "duckdb"),
        ('SELECT * FROM "data.csv"', "duckdb"),
        ("SELECT * FROM t JOIN 'x.parquet' USING (id)", "duckdb"),
        ("SELECT getenv('HOME')", "duckdb"),
        ("SELECT * FROM glob('/home/*')", "duckdb"),
        ("COPY t TO 'x.csv'", "duckdb"),
        ("INSTALL httpfs", "duckdb"),
        ("SELECT dbms_xmlgen.getxml('select 1 from dual') FROM dual", "oracle"),
        ("SELECT sys.dbms_pipe.receive_message('x', 10) FROM dual", "oracle"),
        ("SELECT utl_http.request('http://example.com') FROM dual", "oracle"),
        ("SELECT SYSTEM$CANCEL_ALL_QUERIES(1)", "snowflake"),
        ("SELECT 'a\\''; DROP TABLE t; --'", ""),
        ("SELECT 1 /* /* */ ; DROP TABLE t; /* */ */", ""),
    ],
)
def test_other_dialects_refused(sql: str, dialect: str) -> None:
    with pytest.raises(UnsafeSQLError):
        check_sql(sql, dialect)


@pytest.mark.parametrize(
    ("sql", "dialect"),
    [
        ("SELECT * FROM `drop`", "mysql"),
        ("SELECT 1 --x", "mysql"),  # 1 - (-x) in MySQL: "--" needs a space to start a comment
        ("SELECT 1 # DROP TABLE t", "mysql"),
        ("SELECT 'it''s'", "mysql"),
        ("SELECT TOP 10 * FROM t WITH (NOLOCK)", "tsql"),
        ("SELECT * FROM [delete]", "tsql"),
        ("FROM t SELECT a", "duckdb"),
        ("SELECT * FROM t USING SAMPLE 10%", "duckdb"),
        ("SELECT dbms_random.value FROM dual", "oracle"),
        ("SELECT 'it\\'s'", "bigquery"),  # backslash escapes are unconditional there
        ("SELECT 'it\\'s'", "snowflake"),
        ("SELECT * FROM `proj.ds.t`", "bigquery"),
        ("SELECT 'C:\\' AS path", "sqlite"),  # SQLite never escapes with backslash
    ],
)
def test_other_dialects_allowed(sql: str, dialect: str) -> None:
    assert check_sql(sql, dialect) == sql


# --- where sqlglot and a server could disagree -------------------------------------------------------


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", ""])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;\x00DROP TABLE t",
        "SELECT 1\x00",
        "SELECT 1 -- note\r; DROP TABLE t",  # PostgreSQL ends the comment at CR, SQLite and MySQL do not
        "SELECT 1 -- note\rFROM t",
        "SELECT 1\r;\rDROP TABLE t",
        "SELECT 1 /* a /* b */ c */",
        "SELECT 1 /*! , 2 */",
        'SELECT U&"pg\\005fsleep"(5)',
    ],
)
def test_ambiguous_text_refused(sql: str, dialect: str) -> None:
    with pytest.raises(UnsafeSQLError):
        check_sql(sql, dialect)


@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql", ""])
def test_crlf_line_endings_allowed(dialect: str) -> None:
    sql = "SELECT 1 -- one\r\n  , 2 -- two\r\nFROM t\r\n"
    assert check_sql(sql, dialect) == sql.strip()


def test_postgres_backslash_quote_is_ambiguous() -> None:
    # With standard_conforming_strings off, 'a\'' ends after the second quote and the DROP runs.
    with pytest.raises(UnsafeSQLError, match="backslash"):
        check_sql("SELECT 'a\\''; DROP TABLE t; --'", "postgres")
    assert check_sql("SELECT 'a\\b' AS s", "postgres") == "SELECT 'a\\b' AS s"


def test_quoted_keyword_identifiers_allowed() -> None:
    assert check_sql('SELECT "drop", "delete" FROM "insert"', "postgres")
    assert check_sql('SELECT "pg_sleep" FROM t', "postgres")


def test_data_modifying_cte_reports_the_statement() -> None:
    with pytest.raises(UnsafeSQLError, match="DELETE"):
        check_sql("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "postgres")


def test_stacked_statement_reason() -> None:
    with pytest.raises(UnsafeSQLError, match="one statement"):
        check_sql("SELECT 1; SELECT 2")


def test_errors_survive_pickling() -> None:
    import pickle

    for sql in ("DROP TABLE t", "SELECT * FRM t"):
        with pytest.raises(UnsafeSQLError) as info:
            check_sql(sql)
        copy = pickle.loads(pickle.dumps(info.value))
        assert type(copy) is type(info.value)
        assert (copy.reason, copy.sql, str(copy)) == (info.value.reason, info.value.sql, str(info.value))
        if isinstance(copy, SQLSyntaxError) and isinstance(info.value, SQLSyntaxError):
            assert (copy.line, copy.col) == (info.value.line, info.value.col)
