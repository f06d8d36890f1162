"""The SQL safety guard: accept exactly one read-only query, refuse everything else.

The statement is tokenized and parsed with sqlglot in the database's dialect, never string-matched as a
whole. On top of the parse tree, a few checks look at the raw text sqlglot skipped (comments) and at the
raw text of string literals, where sqlglot and a database can disagree about where a statement ends.

This guard is one layer: the database connection is also opened read-only where the backend allows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, Dialects
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

__all__ = [
    "DANGEROUS_FUNCTIONS",
    "DANGEROUS_FUNCTION_PREFIXES",
    "DIALECT_DANGEROUS_FUNCTIONS",
    "FORBIDDEN_NODE_NAMES",
    "MAX_SQL_LENGTH",
    "SIDE_EFFECT_FAMILIES",
    "FunctionFamily",
    "SQLSyntaxError",
    "UnsafeSQLError",
    "check_sql",
    "dialect_for_url_backend",
]


class UnsafeSQLError(ValueError):
    """The statement was refused. .reason is a short human sentence; .sql is the input."""

    def __init__(self, reason: str, sql: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sql = sql

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable despite the two-argument __init__
        return (type(self), (self.reason, self.sql))


class SQLSyntaxError(UnsafeSQLError):
    """The statement does not parse. A repair step can show the model .line and .col (1-based)."""

    def __init__(self, reason: str, sql: str, line: int | None = None, col: int | None = None) -> None:
        super().__init__(reason, sql)
        self.line = line
        self.col = col
        if line is not None:
            self.args = (f"{reason} (line {line}, column {col})",)

    def __reduce__(self) -> tuple[type, tuple[str, str, int | None, int | None]]:  # type: ignore[override]
        return (type(self), (self.reason, self.sql, self.line, self.col))


# Longest statement the guard will look at (a model never needs more; a huge input is a DoS attempt).
MAX_SQL_LENGTH = 100_000


@dataclass(frozen=True)
class FunctionFamily:
    """Server functions that change the server's state (or reach beyond it) even in a read-only session.

    ``does`` finishes the refusal message: "the function nextval() is not allowed: it <does>".
    """

    backend: str  # where they live: "postgres" or "mysql" (refused in every dialect all the same)
    does: str
    names: frozenset[str]
    prefixes: tuple[str, ...] = ()


def _family(backend: str, does: str, *names: str, prefixes: tuple[str, ...] = ()) -> FunctionFamily:
    return FunctionFamily(backend, does, frozenset(names), prefixes)


# PostgreSQL's and MySQL's functions with side effects on the server, by family: each is refused whatever
# the session (a read-only transaction still assigns an id, takes a lock, signals or sends a notification).
SIDE_EFFECT_FAMILIES: dict[str, FunctionFamily] = {
    "pg_ids": _family("postgres", "assigns a transaction id or exports a snapshot",
                      "txid_current", "pg_current_xact_id", "pg_export_snapshot"),
    "pg_sequences": _family("postgres", "advances or sets a sequence", "nextval", "setval"),
    "pg_advisory_locks": _family("postgres", "takes or releases an advisory lock", "pg_advisory_lock",
                                 "pg_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_unlock",
                                 "pg_advisory_unlock_all", "pg_try_advisory_lock", "pg_try_advisory_xact_lock",
                                 prefixes=("pg_advisory", "pg_try_advisory")),
    "pg_notifications": _family("postgres", "sends a notification or writes to the server's log or WAL",
                                "pg_notify", "pg_logical_emit_message", "pg_log_backend_memory_contexts",
                                "pg_log_standby_snapshot", prefixes=("pg_logical_",)),
    "pg_configuration": _family("postgres", "changes the server's or the session's configuration",
                                "set_config", "pg_reload_conf", "pg_import_system_collations"),
    "pg_backend_control": _family(
        "postgres", "controls the server, its sessions, backups, replication or statistics",
        "pg_terminate_backend", "pg_cancel_backend", "pg_signal_backend", "pg_rotate_logfile", "pg_promote",
        "pg_start_backup", "pg_stop_backup", "pg_backup_start", "pg_backup_stop", "pg_switch_wal",
        "pg_create_restore_point", "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_stat_reset",
        "pg_stat_statements_reset", "pg_drop_replication_slot", "pg_copy_logical_replication_slot",
        "pg_replication_origin_create", "pg_sync_replication_slots", "pg_prewarm", "brin_summarize_new_values",
        "brin_summarize_range", "brin_desummarize_range", "gin_clean_pending_list",
        prefixes=("pg_stat_reset", "pg_create_", "pg_drop_", "pg_copy_", "pg_replication_", "pg_wal_",
                  "pg_switch_", "pg_backup_")),
    "pg_large_objects": _family("postgres", "creates, changes or reads a large object (and its file)",
                                "lo_import", "lo_export", "lo_get", "lo_put", "lo_from_bytea", "lo_creat",
                                "lo_create", "lo_unlink", "lo_open", "lo_truncate", "lowrite", "loread",
                                prefixes=("lo_",)),
    "pg_files": _family("postgres", "reads or writes files on the server", "pg_read_file", "pg_read_binary_file",
                        "pg_ls_dir", "pg_stat_file", "pg_file_write", "pg_file_rename", "pg_file_unlink",
                        "pg_logdir_ls", "copy_to", "copy_from", prefixes=("pg_read_", "pg_ls_", "pg_file_")),
    "pg_sleep_and_remote": _family("postgres", "sleeps or reaches another server", "pg_sleep", "pg_sleep_for",
                                   "pg_sleep_until", "dblink", prefixes=("dblink_",)),
    "mysql_locks": _family("mysql", "takes or releases a named lock", "get_lock", "release_lock",
                           "release_all_locks", "service_get_read_locks", "service_get_write_locks",
                           "service_release_locks", "version_tokens_lock_shared", "version_tokens_lock_exclusive",
                           "version_tokens_unlock"),
    "mysql_ids": _family("mysql", "sets the session's last insert id", "last_insert_id"),
    "mysql_sleep_and_waits": _family("mysql", "sleeps or waits for replication", "sleep", "benchmark",
                                     "master_pos_wait", "source_pos_wait", "wait_for_executed_gtid_set",
                                     "wait_until_sql_thread_after_gtids"),
    "mysql_files_and_programs": _family("mysql", "reads files or runs programs on the server", "load_file",
                                        "sys_exec", "sys_eval"),
    "mysql_server_control": _family(
        "mysql", "changes replication, audit, keyring or version-token state",
        "group_replication_set_as_primary", "group_replication_switch_to_single_primary_mode",
        "asynchronous_connection_failover_add_source", "audit_log_filter_set_filter", "audit_log_filter_flush",
        "keyring_key_store", "keyring_key_remove", "keyring_key_generate", "version_tokens_set",
        "version_tokens_edit", "version_tokens_delete",
        prefixes=("group_replication_", "asynchronous_connection_failover_", "audit_log_", "keyring_key_",
                  "version_tokens_")),
}

# Other functions that read or write files, run programs, reach other servers, or execute a SQL string
# given as an argument (which would bypass this guard). Compared lower-cased against the called name,
# quoted or not, qualified or not. current_setting() and txid_current_if_assigned() only read: allowed.
_OTHER_DANGEROUS_FUNCTIONS: frozenset[str] = frozenset(
    {
        # SQLite (extensions and the CLI's fileio functions)
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        "fsdir",
        "zipfile",
        # PostgreSQL: run a SQL string passed as text
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "cursor_to_xml",
        "ts_stat",
        "crosstab",
        "crosstab2",
        "crosstab3",
        "crosstab4",
        "connectby",
        # SQL Server
        "xp_cmdshell",
        "openrowset",
        "opendatasource",
        "openquery",
        # DuckDB: files, URLs, environment, dynamic SQL
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_json_objects_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "read_xlsx",
        "sniff_csv",
        "getenv",
        "iceberg_scan",
        "delta_scan",
        "sqlite_scan",
        "sqlite_attach",
        "postgres_scan",
        "postgres_query",
        "postgres_execute",
        "mysql_query",
        "mysql_execute",
        "query",
        "query_table",
    }
)


DANGEROUS_FUNCTIONS: frozenset[str] = _OTHER_DANGEROUS_FUNCTIONS.union(
    *(family.names for family in SIDE_EFFECT_FAMILIES.values())
)

# Names that are harmless in most dialects but dangerous in one: SQLite's glob(pattern, text) is the
# GLOB operator, DuckDB's glob(pattern) lists files on the server.
DIALECT_DANGEROUS_FUNCTIONS: dict[str, frozenset[str]] = {
    "duckdb": frozenset({"glob"}),
}

# Whole families, matched as name prefixes.
DANGEROUS_FUNCTION_PREFIXES: tuple[str, ...] = (
    *(prefix for family in SIDE_EFFECT_FAMILIES.values() for prefix in family.prefixes),
    "xp_",  # SQL Server extended procedures
    "system$",  # Snowflake system functions
)

# Package qualifiers (Oracle) whose functions reach the network, the file system or run dynamic SQL.
_DANGEROUS_QUALIFIER_PREFIXES: tuple[str, ...] = ("dbms_", "utl_")
_ALLOWED_QUALIFIERS: frozenset[str] = frozenset({"dbms_random"})

# Node classes that never belong in a read-only query, looked up by name so that a class missing
# from another sqlglot version does not break the import (a test checks that the installed one has them
# all). CALL, VACUUM and REINDEX have no class of their own: they parse as a Command (REINDEX t, in
# some dialects, as a bare alias), refused as such.
FORBIDDEN_NODE_NAMES: tuple[str, ...] = (
    "Insert",
    "Update",
    "Delete",
    "Merge",
    "Create",
    "Drop",
    "Alter",
    "AlterColumn",
    "AlterDistStyle",
    "AlterIndex",
    "AlterModifySqlSecurity",
    "AlterRename",
    "AlterSession",
    "AlterSet",
    "AlterSortKey",
    "TruncateTable",
    "Command",
    "Pragma",
    "Attach",
    "Detach",
    "Copy",
    "Set",
    "Use",
    "Grant",
    "Revoke",
    "Transaction",
    "Commit",
    "Rollback",
    "LoadData",
    "Into",
    "Lock",
    "LockingStatement",
    "Analyze",
    "Describe",
    "Show",
    "Kill",
    "Execute",
    "ExecuteSql",
    "Declare",
    "Comment",
    "Install",
    "Summarize",
    "Cache",
    "Uncache",
    "Refresh",
    "Put",
    "Get",
    "Export",
    "Block",
    "IfBlock",
    "WhileBlock",
    "LoopBlock",
    "RepeatBlock",
    "StoredProcedure",
    "MultitableInserts",
    "ConditionalInsert",
    "Undrop",
    "SwapTable",
    "RenameColumn",
    "RenameIndex",
    "AddPartition",
    "DropPartition",
    "ReplacePartition",
    "DropPrimaryKey",
    "ModifyColumn",
    "ConnectTo",
    "Disconnect",
    "UserDefinedFunction",
    "NextValueFor",
    "OnConflict",
    "Returning",
)

# SQL Server table hints that take update/exclusive locks or hold locks: FOR UPDATE by another name.
_LOCKING_TABLE_HINTS: frozenset[str] = frozenset({"updlock", "xlock", "tablock", "tablockx", "holdlock"})

# Human names for the refusal message where the class name is not what the user wrote.
_NODE_LABELS: dict[str, str] = {
    "Into": "SELECT ... INTO",
    "Lock": "a locking clause (FOR UPDATE / FOR SHARE)",
    "LockingStatement": "LOCKING",
    "TruncateTable": "TRUNCATE",
    "LoadData": "LOAD DATA",
    "Transaction": "a transaction statement",
    "OnConflict": "ON CONFLICT (upsert)",
    "Returning": "RETURNING",
    "NextValueFor": "NEXT VALUE FOR",
    "ExecuteSql": "EXECUTE",
}

_QUERY_ROOT_NAMES: tuple[str, ...] = ("Select", "Union", "Intersect", "Except", "SetOperation", "Subquery")

_STRING_TOKENS: frozenset[TokenType] = frozenset(
    t
    for t in (
        getattr(TokenType, "STRING", None),
        getattr(TokenType, "NATIONAL_STRING", None),
        getattr(TokenType, "BYTE_STRING", None),
        getattr(TokenType, "UNICODE_STRING", None),
    )
    if t is not None
)

# Dialects where a server setting (PostgreSQL's standard_conforming_strings, MySQL's NO_BACKSLASH_ESCAPES)
# decides whether a backslash escapes a quote in a string literal, so sqlglot and the server may disagree
# on where the literal (and so the statement) ends; "" is the generic dialect, used for unknown servers.
# SQLite, DuckDB, SQL Server and Oracle never treat backslash as an escape: sqlglot agrees with them.
_AMBIGUOUS_BACKSLASH_DIALECTS: frozenset[str] = frozenset(
    {"", "postgres", "redshift", "materialize", "risingwave", "mysql", "doris", "starrocks", "singlestore"}
)

# An odd run of backslashes before a quote: the only place where a server that escapes with backslash and
# one that does not read a different end of the literal (an even run is escaped backslashes either way).
_ESCAPED_QUOTE = re.compile(r"(?<!\\)(?:\\\\)*\\['\"]")

# Internals that sqlglot's parse errors sometimes show: "<Token token_type: ..., text: OR, ...>" and
# "<class 'sqlglot.expressions.core.Mul'>"; the model is shown the word instead.
_TOKEN_REPR = re.compile(r"<Token token_type: [^,]*, text: (.*?), line: \d+[^>]*>")
_CLASS_REPR = re.compile(r"<class '(?:\w+\.)*(\w+)'>")

# A CR that is not part of a CRLF pair (a gap ending in CR is checked with the next character).
_BARE_CR = re.compile(r"\r(?!\n)")

# Control characters other than ordinary whitespace: NUL ends a C string early in some drivers.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")

# DuckDB reads files and URLs named as tables: FROM 'data.csv', FROM 's3://...'.
_FILE_LIKE_TABLE = re.compile(
    r"[/\\:*?]|\.(csv|tsv|txt|json|jsonl|ndjson|parquet|arrow|xlsx?|db|sqlite3?|duckdb|gz|zst|bz2)$",
    re.IGNORECASE,
)

_SQLALCHEMY_TO_SQLGLOT: dict[str, str] = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mssql": "tsql",
    "oracle": "oracle",
    "duckdb": "duckdb",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
    "trino": "trino",
    "presto": "presto",
    "databricks": "databricks",
    "clickhouse": "clickhouse",
}


def dialect_for_url_backend(backend_name: str) -> str:
    """Map a SQLAlchemy backend name ('postgresql', 'mssql', ...) to a sqlglot dialect name.

    A driver suffix ('postgresql+psycopg') is ignored. Unknown backends give "" (sqlglot's generic dialect).
    """
    name = (backend_name or "").strip().lower().split("+", 1)[0]
    if name in _SQLALCHEMY_TO_SQLGLOT:
        return _SQLALCHEMY_TO_SQLGLOT[name]
    if name and name in {d.value for d in Dialects}:
        return name
    return ""


def check_sql(sql: str, dialect: str = "sqlite") -> str:
    """Return the single read-only statement (stripped of surrounding whitespace and one trailing ';'),
    or raise UnsafeSQLError. dialect is a sqlglot dialect name: 'sqlite', 'postgres', 'mysql', 'duckdb', ...

    Empty statements around the one statement (';;', a '; -- note' tail) are dropped too. The text returned
    is the caller's own, comments inside kept, never regenerated by sqlglot; note it may end in a -- comment.
    A statement that does not parse raises SQLSyntaxError (a subclass) with .line and .col (1-based).
    An unknown dialect name raises ValueError (a programming error, not a refusal).
    """
    if not isinstance(sql, str):
        raise UnsafeSQLError("the statement is not text", str(sql))
    if not sql.strip():
        raise UnsafeSQLError("empty statement", sql)
    if len(sql) > MAX_SQL_LENGTH:
        raise UnsafeSQLError(f"the statement is longer than {MAX_SQL_LENGTH} characters", sql)
    if _CONTROL_CHARS.search(sql):
        raise UnsafeSQLError("the statement contains a control character", sql)

    dialect_name = dialect or ""
    dialect_obj = Dialect.get_or_raise(dialect_name)
    tokens = _tokenize(sql, dialect_obj)

    start, end = _statement_span(sql, tokens)
    _check_raw_text(sql, tokens, dialect_obj, dialect_name)

    try:
        parsed = dialect_obj.parser().parse(tokens, sql)
    except ParseError as err:
        raise _syntax_error(err, sql) from err
    except RecursionError as err:
        raise UnsafeSQLError("the statement is nested too deeply to be checked", sql) from err
    except Exception as err:  # a sqlglot bug must not let anything through
        raise UnsafeSQLError(f"the statement could not be checked ({type(err).__name__})", sql) from err

    statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    if not statements:
        raise UnsafeSQLError("empty statement", sql)
    if len(statements) > 1:
        raise UnsafeSQLError(f"only one statement is allowed, found {len(statements)}", sql)

    root = statements[0]
    lead = next((t.text for t in tokens if t.token_type != TokenType.SEMICOLON), "")
    _check_root(root, sql, lead)
    try:
        _check_tree(root, sql, dialect_name)
    except RecursionError as err:
        raise UnsafeSQLError("the statement is nested too deeply to be checked", sql) from err

    return sql[start:end].strip()


def _tokenize(sql: str, dialect_obj: Dialect) -> list[Token]:
    tokenizer = dialect_obj.tokenizer()
    try:
        return tokenizer.tokenize(sql)
    except TokenError as err:
        core = getattr(tokenizer, "_core", tokenizer)
        pos = getattr(core, "_start", None)
        line, col = _line_col(sql, pos) if isinstance(pos, int) else (None, None)
        cause = str(err.__cause__ or "")
        if cause.startswith("Missing "):
            delimiter = cause[len("Missing ") :].split(" from ", 1)[0]
            reason = f"unterminated string or quoted identifier (missing closing {delimiter})"
        else:
            reason = "unterminated comment or string, or a character that cannot start a token"
        raise SQLSyntaxError(reason, sql, line, col) from err


def _line_col(sql: str, pos: int) -> tuple[int, int]:
    pos = max(0, min(pos, len(sql)))
    line = sql.count("\n", 0, pos) + 1
    col = pos - (sql.rfind("\n", 0, pos) + 1) + 1
    return line, col


def _syntax_error(err: ParseError, sql: str) -> SQLSyntaxError:
    details = err.errors[0] if err.errors else {}
    description = str(details.get("description") or str(err).split("\n", 1)[0] or "syntax error")
    description = _TOKEN_REPR.sub(lambda m: repr(m.group(1)), description)
    description = _CLASS_REPR.sub(lambda m: m.group(1), description)
    highlight = str(details.get("highlight") or "").strip()
    reason = f"{description} near '{highlight}'" if highlight else description
    line = details.get("line")
    col = details.get("col")
    raw_highlight = str(details.get("highlight") or "")
    if isinstance(col, int) and raw_highlight and "\n" not in raw_highlight and col >= len(raw_highlight):
        col = col - len(raw_highlight) + 1  # sqlglot points at the token's last character; show its first
    return SQLSyntaxError(
        reason,
        sql,
        line if isinstance(line, int) else None,
        col if isinstance(col, int) else None,
    )


def _statement_span(sql: str, tokens: list[Token]) -> tuple[int, int]:
    """Where the one statement lies in sql, leading/trailing semicolons excluded.

    Counts statements on the token stream (independently of the parser): two non-empty runs of tokens
    separated by ';' are two statements.
    """
    runs = 0
    in_run = False
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            in_run = False
        elif not in_run:
            in_run = True
            runs += 1
    if runs == 0:
        raise UnsafeSQLError("empty statement", sql)
    if runs > 1:
        raise UnsafeSQLError(f"only one statement is allowed, found {runs}", sql)
    first = next(i for i, t in enumerate(tokens) if t.token_type != TokenType.SEMICOLON)
    last = max(i for i, t in enumerate(tokens) if t.token_type != TokenType.SEMICOLON)
    start = tokens[first - 1].end + 1 if first > 0 else 0
    end = tokens[last + 1].start if last + 1 < len(tokens) else len(sql)
    return start, end


def _check_raw_text(sql: str, tokens: list[Token], dialect_obj: Dialect, dialect_name: str) -> None:
    """Look where sqlglot and the server could disagree about the statement's boundaries."""
    line_markers = tuple(c for c in dialect_obj.tokenizer_class.COMMENTS if isinstance(c, str))
    pos = 0
    for token in tokens:
        _check_gap(sql, _gap(sql, pos, token.start), line_markers)
        if token.token_type == TokenType.IDENTIFIER and sql[max(token.start - 2, 0) : token.start].upper() == "U&":
            # PostgreSQL's U&"pg\005fsleep" is pg_sleep; sqlglot reads it as U & "pg\005fsleep"(...).
            raise UnsafeSQLError('Unicode-escaped identifiers (U&"...") are not allowed', sql)
        pos = token.end + 1
        if token.token_type in _STRING_TOKENS and dialect_name in _AMBIGUOUS_BACKSLASH_DIALECTS:
            raw = sql[token.start : token.end + 1]
            if _ESCAPED_QUOTE.search(raw):
                raise UnsafeSQLError(
                    "a backslash-escaped quote in a string is ambiguous; double the quote instead ('')",
                    sql,
                )
    _check_gap(sql, sql[pos:], line_markers)


def _gap(sql: str, start: int, end: int) -> str:
    """sql[start:end], plus the next character when the gap ends in CR (to tell CRLF from a bare CR)."""
    if end > start and sql[end - 1] == "\r" and end < len(sql):
        return sql[start : end + 1]
    return sql[start:end]


def _check_gap(sql: str, gap: str, line_markers: tuple[str, ...]) -> None:
    """A gap between tokens holds only whitespace and comments: refuse comments a server could run."""
    if _BARE_CR.search(gap):
        # PostgreSQL ends a -- comment at a bare CR, SQLite and MySQL only at LF: what follows the CR is
        # code for one server and comment for another. CRLF line endings are fine.
        raise UnsafeSQLError("a carriage return not followed by a line feed is ambiguous here", sql)
    i = 0
    size = len(gap)
    while i < size:
        if gap.startswith("/*", i):
            close = gap.find("*/", i + 2)
            body = gap[i + 2 : close if close >= 0 else size]
            if body.startswith("!") or body[:2].upper() == "M!":
                raise UnsafeSQLError("executable comments (/*! ... */) are not allowed", sql)
            if "/*" in body:
                raise UnsafeSQLError("nested block comments are not allowed", sql)
            i = close + 2 if close >= 0 else size
            continue
        marker = next((m for m in line_markers if gap.startswith(m, i)), None)
        if marker is not None:
            end = gap.find("\n", i)
            i = size if end < 0 else end
            continue
        i += 1


def _query_classes() -> tuple[type, ...]:
    return tuple(c for c in (getattr(exp, n, None) for n in _QUERY_ROOT_NAMES) if isinstance(c, type))


def _check_root(root: exp.Expr, sql: str, lead: str) -> None:
    inner = root
    while isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Expression):
        inner = inner.this  # (SELECT ...) is a query, (Track) is not
    if isinstance(inner, _query_classes()):
        return
    root = inner
    what = _describe(root)
    if what == "a bare expression" and lead.isidentifier():
        what = lead.upper()
    raise UnsafeSQLError(
        f"only read-only queries (SELECT, WITH ... SELECT, UNION/INTERSECT/EXCEPT) are allowed, not {what}",
        sql,
    )


def _forbidden_classes() -> tuple[type, ...]:
    return tuple(c for c in (getattr(exp, n, None) for n in FORBIDDEN_NODE_NAMES) if isinstance(c, type))


def _check_tree(root: exp.Expr, sql: str, dialect_name: str) -> None:
    forbidden = _forbidden_classes()
    extra = DIALECT_DANGEROUS_FUNCTIONS.get(dialect_name, frozenset())
    rows = (*_query_classes(), exp.Values)
    for node in root.walk():
        if isinstance(node, forbidden):
            raise UnsafeSQLError(f"{_describe(node)} is not allowed in a read-only query", sql)
    for node in root.walk():
        if isinstance(node, exp.Func):
            _check_function(node, sql, extra)
        if isinstance(node, exp.Dot) and isinstance(node.expression, exp.Func):
            _check_qualifier(node, sql)
        if isinstance(node, exp.CTE) and not isinstance(node.this, rows):
            raise UnsafeSQLError("a WITH clause must hold a query", sql)
        if isinstance(node, exp.Subquery) and not isinstance(node.this, (*rows, exp.Table)):
            raise UnsafeSQLError("parentheses must hold a query", sql)
        if isinstance(node, exp.WithTableHint):
            _check_table_hint(node, sql)
        if dialect_name == "duckdb" and isinstance(node, exp.Table):
            _check_duckdb_table(node, sql)


def _function_names(node: exp.Func) -> set[str]:
    names: set[str] = set()
    this = node.args.get("this")
    if isinstance(node, exp.Anonymous) or isinstance(this, str):
        if isinstance(this, str):
            names.add(this)
        elif isinstance(this, exp.Expression):
            names.add(this.name)
    if not isinstance(node, exp.Anonymous):
        names.update(type(node).sql_names())
    return {n.strip().lower() for n in names if n}


def _is_dangerous_name(name: str, extra: frozenset[str]) -> bool:
    return name in DANGEROUS_FUNCTIONS or name in extra or name.startswith(DANGEROUS_FUNCTION_PREFIXES)


def side_effect_family(name: str) -> FunctionFamily | None:
    """The family of server functions with side effects that ``name`` (lower-case) belongs to, if any."""
    for family in SIDE_EFFECT_FAMILIES.values():
        if name in family.names or name.startswith(family.prefixes):
            return family
    return None


def _check_function(node: exp.Func, sql: str, extra: frozenset[str]) -> None:
    for name in _function_names(node):
        if _is_dangerous_name(name, extra):
            family = side_effect_family(name)
            why = f": it {family.does}" if family else ""
            raise UnsafeSQLError(f"the function {name}() is not allowed{why}", sql)


def _check_qualifier(node: exp.Dot, sql: str) -> None:
    qualifier_node = node.this
    if not isinstance(qualifier_node, exp.Expression):
        return
    for part in qualifier_node.find_all(exp.Identifier, exp.Var):
        qualifier = part.name.lower()
        if qualifier.startswith(_DANGEROUS_QUALIFIER_PREFIXES) and qualifier not in _ALLOWED_QUALIFIERS:
            raise UnsafeSQLError(f"functions of the package {qualifier} are not allowed", sql)


def _check_table_hint(node: exp.WithTableHint, sql: str) -> None:
    for hint in node.expressions:
        word = hint.name.lower() if isinstance(hint, exp.Expression) else str(hint).lower()
        if word in _LOCKING_TABLE_HINTS:
            raise UnsafeSQLError(f"the locking table hint {word.upper()} is not allowed", sql)


def _check_duckdb_table(node: exp.Table, sql: str) -> None:
    this = node.this
    if isinstance(this, exp.Identifier) and _FILE_LIKE_TABLE.search(this.name):
        raise UnsafeSQLError(f"reading the file or URL '{this.name}' is not allowed", sql)


def _describe(node: exp.Expr) -> str:
    name = type(node).__name__
    if name in _NODE_LABELS:
        return _NODE_LABELS[name]
    if isinstance(node, exp.Command):
        word = str(node.this or "").strip().upper()
        return word or "a command"
    if name in {"Alter", "AlterColumn", "AlterIndex", "AlterRename", "AlterSet", "AlterSession"}:
        return "ALTER"
    key = getattr(node, "key", "") or name
    if name in {"Column", "Alias", "Identifier", "Literal", "Paren", "Tuple", "Var", "Dot"} or isinstance(
        node, exp.Func | exp.Binary | exp.Unary
    ):
        return "a bare expression"
    return key.upper()
