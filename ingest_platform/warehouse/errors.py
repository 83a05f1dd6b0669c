"""What a warehouse error means for a load, told without the values of the rows that caused it.

A load must tell a file the warehouse cannot store (quarantine it, load the rest) from a warehouse that is down
(fail the run, quarantine nothing, retry later), and it must say why without copying row values into logs: the
databases' own texts carry them (PostgreSQL's `DETAIL: Key (...)=(...)` and `CONTEXT: JSON data, line 1: ...`,
SQLAlchemy's `[parameters: ...]`). `describe` keeps the SQLSTATE, the condition, the table, column and constraint
and the primary message with every quoted literal that is not a schema name blanked out.
"""

import re
import sqlite3
from typing import Literal

import psycopg2
import psycopg2.errorcodes
import sqlalchemy as sa

ErrorKind = Literal["data", "unavailable", "other"]

# SQLSTATE classes of a row the database refuses: data exceptions, integrity violations, program limits (an index
# row too large).
_DATA_CLASSES = ("22", "23", "54")
# The server or the connection, not the data: connection exceptions, shutdowns, resources, system errors,
# serialization failures and deadlocks, lock and statement timeouts.
_UNAVAILABLE_CLASSES = ("08", "53", "58", "40")
_UNAVAILABLE_CODES = ("57P01", "57P02", "57P03", "57P04", "57P05", "57014", "55P03", "55006")

_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_EMAIL = re.compile(r"[^\s@\"'()]+@[^\s@\"'()]+")
_COPY_COLUMN = re.compile(r"\bcolumn (\w+)")
_COPY_TABLE = re.compile(r"\bCOPY (\w+)")
_STAGING = re.compile(r"^_staging_(\w+)_\d+$")
# Quoted words PostgreSQL puts in its messages that are no row's value.
_SAFE_WORDS = {
    "UTF8",
    "SQL_ASCII",
    "LATIN1",
    "bigint",
    "integer",
    "smallint",
    "numeric",
    "double precision",
    "real",
    "boolean",
    "text",
    "json",
    "jsonb",
    "date",
    "timestamp with time zone",
    "timestamp without time zone",
}


class UnstorableValue(ValueError):
    """A value the column's type cannot take, found in Python before the database saw it (a bind, an encoding)."""

    def __init__(self, *, table: str, column: str, problem: str) -> None:
        super().__init__(f"{table}.{column}: {problem}")
        self.table = table
        self.column = column
        self.problem = problem


def root_error(error: BaseException) -> BaseException:
    """The driver's or Python's own error under SQLAlchemy's wrapper."""
    while isinstance(error, sa.exc.StatementError) and error.orig is not None:
        error = error.orig
    return error


def classify(error: BaseException) -> ErrorKind:
    """`data` when the rows are at fault (isolate the file), `unavailable` when the warehouse is (retry later)."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return "unavailable"
    wrapped = isinstance(error, sa.exc.StatementError)
    cause = root_error(error)
    if isinstance(cause, psycopg2.Error):
        code = cause.pgcode or ""
        if not code:
            # No SQLSTATE: the client lost or never had the server (refused, closed, reset).
            return "unavailable" if isinstance(cause, psycopg2.OperationalError | psycopg2.InterfaceError) else "other"
        if code.startswith(_DATA_CLASSES):
            return "data"
        if code.startswith(_UNAVAILABLE_CLASSES) or code in _UNAVAILABLE_CODES:
            return "unavailable"
        return "other"
    if isinstance(cause, sqlite3.Error):
        if isinstance(cause, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.InterfaceError):
            return "data"
        if isinstance(cause, sqlite3.OperationalError):
            # Locked, busy, disk I/O, read-only: the file system or another writer, not the rows.
            return "unavailable"
        return "other"
    if isinstance(cause, ValueError | OverflowError | UnicodeError):
        return "data"
    if isinstance(cause, TypeError) and wrapped:
        return "data"  # a value of a type the driver cannot bind
    return "other"


def describe(error: BaseException, *, known_names: set[str] | frozenset[str] = frozenset()) -> str:
    """Why the warehouse refused, with the SQLSTATE, table, column and constraint but no row value.

    `known_names` are the schema's identifiers (tables, columns, indexes, constraints): quoted words outside them
    and a few type and encoding names are blanked out of the database's message.
    """
    cause = root_error(error)
    if isinstance(cause, UnstorableValue):
        return str(cause)
    if isinstance(cause, psycopg2.Error):
        return _describe_postgresql(cause, known_names)
    if isinstance(cause, sqlite3.Error):
        return f"sqlite {type(cause).__name__}: {_redact(str(cause), known_names)}"
    return f"{type(cause).__name__}: {_redact(str(cause), known_names)}"


def _describe_postgresql(error: psycopg2.Error, known_names: set[str] | frozenset[str]) -> str:
    diag = error.diag
    code = error.pgcode
    condition = (psycopg2.errorcodes.lookup(code) or "unknown").lower() if code else type(error).__name__
    context = diag.context or ""
    table = _unstaged(diag.table_name or _first(_COPY_TABLE, context))
    column = diag.column_name or _first(_COPY_COLUMN, context)
    parts = [f"SQLSTATE {code} {condition}" if code else condition]
    if column:
        parts.append(f"column {table}.{column}" if table else f"column {column}")
    elif table:
        parts.append(f"table {table}")
    if diag.constraint_name:
        parts.append(f"constraint {diag.constraint_name}")
    if diag.datatype_name:
        parts.append(f"type {diag.datatype_name}")
    primary = diag.message_primary or (str(error).splitlines() or [""])[0]
    known = set(known_names) | {name for name in (table, diag.constraint_name) if name}
    return f"{', '.join(parts)}: {_redact(primary, known)}"


def _first(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return match.group(1) if match else None


def _unstaged(table: str | None) -> str | None:
    """The target table of a staging table's name (`_staging_events_3` → `events`)."""
    if table is None:
        return None
    match = _STAGING.match(table)
    return match.group(1) if match else table


def _redact(message: str, known_names: set[str] | frozenset[str]) -> str:
    first_line = message.strip().splitlines()[0] if message.strip() else ""

    def keep_names(match: re.Match[str]) -> str:
        word = match.group(0)[1:-1]
        unstaged = _unstaged(word) or word
        return match.group(0) if word in _SAFE_WORDS or unstaged in known_names else '"…"'

    return _EMAIL.sub("…", _QUOTED.sub(keep_names, first_line))[:300]


def schema_names() -> frozenset[str]:
    """Every table, column, index and constraint name of the warehouse: what a redacted message may still say."""
    from ingest_platform.warehouse.tables import metadata

    names: set[str] = set()
    for table in metadata.tables.values():
        names.add(table.name)
        names.update(column.name for column in table.columns)
        names.update(index.name for index in table.indexes if index.name)
        names.update(str(constraint.name) for constraint in table.constraints if constraint.name)
        names.add(f"{table.name}_pkey")
    return frozenset(names)
