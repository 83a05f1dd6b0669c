"""The one bulk-upsert primitive every loader uses.

Rows are staged in a temporary table (PostgreSQL: COPY; SQLite: executemany), then merged with a single
`INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE <row> IS DISTINCT FROM <new row>`, so a row whose values did not
change is neither rewritten nor counted as updated, and there is no per-row round trip.
"""

import io
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from ingest_platform.warehouse.errors import UnstorableValue
from ingest_platform.warehouse.result import UpsertResult

# Columns the merge maintains itself: set to now() whenever a row really changes.
TOUCH_COLUMN = "updated_at"

_staging_names = itertools.count()


def upsert(
    conn: sa.Connection, table: sa.Table, rows: Iterable[Mapping[str, Any]], *, key: Sequence[str]
) -> UpsertResult:
    """Insert or update `rows` into `table` by the natural `key`, inside the caller's transaction.

    Every row must carry the same columns. Rows repeating a key within the batch collapse to the last one.
    Returns how many distinct keys were inserted, updated (values changed) or left unchanged.
    """
    unique = _last_row_per_key(rows, key)
    if not unique:
        return UpsertResult()
    columns = list(unique[0])
    mismatched = next((row for row in unique if list(row) != columns), None)
    if mismatched is not None:
        raise ValueError(f"upsert into {table.name}: rows carry different columns ({columns} vs {list(mismatched)})")
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise ValueError(f"upsert into {table.name}: unknown columns {unknown}")

    staging = f"_staging_{table.name}_{next(_staging_names)}"
    stage = _stage_postgresql if conn.dialect.name == "postgresql" else _stage_sqlite
    try:
        stage(conn, table, staging, columns, unique)
        inserted, updated = _merge(conn, table, staging, columns, key)
    except Exception as error:
        unstorable = _unstorable_value(conn, table, columns, unique, error)
        if unstorable is not None:
            raise unstorable from error
        raise
    # Dropped only after a merge that worked: after an error PostgreSQL's transaction is aborted and a DROP would
    # replace the first error with InFailedSqlTransaction; the caller's rollback removes the table anyway.
    conn.exec_driver_sql(f"DROP TABLE {staging}")
    return UpsertResult(inserted=inserted, updated=updated, unchanged=len(unique) - inserted - updated)


_INT64 = range(-(2**63), 2**63)


def _unstorable_value(
    conn: sa.Connection, table: sa.Table, columns: list[str], rows: list[Mapping[str, Any]], error: BaseException
) -> UnstorableValue | None:
    """The column whose value failed in Python (a bind, an encoding, an integer SQLite cannot hold), if one did.

    Python's and SQLAlchemy's messages either carry the value or name no column; this names the column alone.
    """
    if isinstance(error, sa.exc.DBAPIError):
        return None  # the database answered through SQLAlchemy: its error names the column itself
    if _is_nul_in_text(error):
        # COPY says only the line; the column is the one whose text carries the NUL.
        for name in columns:
            if any(isinstance(row[name], str) and "\x00" in row[name] for row in rows):
                return UnstorableValue(table=table.name, column=name, problem="text with a NUL character (22021)")
        return None
    if not isinstance(error, ValueError | OverflowError | TypeError | sa.exc.StatementError):
        return None
    for name in columns:
        column_type = table.c[name].type
        process = column_type.bind_processor(conn.dialect)
        for row in rows:
            value = row[name]
            try:
                if process is not None:
                    process(value)
                if isinstance(value, str):
                    value.encode("utf-8")
                elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
                    raise OverflowError("integer beyond 64 bits")
            except (ValueError, OverflowError, TypeError) as problem:
                return UnstorableValue(table=table.name, column=name, problem=_problem(problem))
    return None


def _problem(error: Exception) -> str:
    if isinstance(error, ValueError) and str(error).startswith("naive datetime"):
        return "naive datetime: the warehouse stores only timezone-aware times"
    return _PROBLEMS.get(type(error), "value the column type refuses")


def _is_nul_in_text(error: BaseException) -> bool:
    import psycopg2.errors

    return isinstance(error, psycopg2.errors.CharacterNotInRepertoire) and "column" not in (error.diag.context or "")


_PROBLEMS = {
    OverflowError: "value out of range for the column",
    UnicodeEncodeError: "text not encodable as UTF-8 (a lone surrogate)",
    ValueError: "value the column type refuses",
    TypeError: "value of a type the column cannot hold",
}


def _last_row_per_key(rows: Iterable[Mapping[str, Any]], key: Sequence[str]) -> list[Mapping[str, Any]]:
    by_key: dict[tuple, Mapping[str, Any]] = {}
    for row in rows:
        by_key[tuple(row[name] for name in key)] = row
    return list(by_key.values())


def _merge(
    conn: sa.Connection, table: sa.Table, staging: str, columns: list[str], key: Sequence[str]
) -> tuple[int, int]:
    quote = conn.dialect.identifier_preparer.quote
    target = quote(table.name)
    column_list = ", ".join(quote(name) for name in columns)
    key_list = ", ".join(quote(name) for name in key)
    values = [name for name in columns if name not in key]
    postgres = conn.dialect.name == "postgresql"
    excluded = "EXCLUDED" if postgres else "excluded"

    if values:
        assignments = [f"{quote(name)} = {excluded}.{quote(name)}" for name in values]
        if TOUCH_COLUMN in table.c and TOUCH_COLUMN not in columns:
            assignments.append(f"{quote(TOUCH_COLUMN)} = CURRENT_TIMESTAMP")
        old = ", ".join(f"{target}.{quote(name)}" for name in values)
        new = ", ".join(f"{excluded}.{quote(name)}" for name in values)
        distinct = "IS DISTINCT FROM" if postgres else "IS NOT"
        on_conflict = (
            f"ON CONFLICT ({key_list}) DO UPDATE SET {', '.join(assignments)} WHERE ({old}) {distinct} ({new})"
        )
    else:
        on_conflict = f"ON CONFLICT ({key_list}) DO NOTHING"

    if postgres:
        # xmax = 0 marks a freshly inserted tuple; an updated one carries the updating transaction's id.
        counts = conn.exec_driver_sql(
            f"WITH merged AS (INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {staging} "
            f"{on_conflict} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
        ).one()
        return int(counts[0]), int(counts[1])

    join = " AND ".join(f"{target}.{quote(name)} = {staging}.{quote(name)}" for name in key)
    first_key = quote(key[0])
    inserted = conn.exec_driver_sql(
        f"SELECT count(*) FROM {staging} LEFT JOIN {target} ON {join} WHERE {target}.{first_key} IS NULL"
    ).scalar_one()
    before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
    # `WHERE true` resolves SQLite's parsing ambiguity between a join and the ON CONFLICT clause.
    conn.exec_driver_sql(
        f"INSERT INTO {target} ({column_list}) SELECT {column_list} FROM {staging} WHERE true {on_conflict}"
    )
    changed = conn.exec_driver_sql("SELECT total_changes()").scalar_one() - before
    return int(inserted), int(changed - inserted)


def _stage_sqlite(
    conn: sa.Connection, table: sa.Table, staging: str, columns: list[str], rows: list[Mapping[str, Any]]
) -> None:
    # A Core table of the same column types, so values go through the same type processors as the target's.
    stage_table = sa.Table(
        staging,
        sa.MetaData(),
        *(sa.Column(name, table.c[name].type) for name in columns),
        prefixes=["TEMPORARY"],
    )
    stage_table.create(conn)
    conn.execute(stage_table.insert(), rows)


def _stage_postgresql(
    conn: sa.Connection, table: sa.Table, staging: str, columns: list[str], rows: list[Mapping[str, Any]]
) -> None:
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(name) for name in columns)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {staging} AS SELECT {column_list} FROM {quote(table.name)} WITH NO DATA"
    )
    copy_rows(conn, staging, columns, rows, [table.c[name].type for name in columns])


def copy_rows(
    conn: sa.Connection,
    table_name: str,
    columns: list[str],
    rows: list[Mapping[str, Any]],
    types: Sequence[sa.types.TypeEngine],
) -> None:
    """COPY `rows` into `table_name` in PostgreSQL's text format over the connection's psycopg2 cursor."""
    encoders = [_copy_encoder(column_type) for column_type in types]
    pairs = list(zip(columns, encoders, strict=True))
    # UTF-8 bytes, encoded here line by line rather than by psycopg2 while it streams: one copy of the data instead
    # of a str and its encoding, and a lone surrogate fails as a UnicodeEncodeError in Python instead of cancelling
    # the COPY (SQLSTATE 57014, which reads like a timeout).
    buffer = io.BytesIO()
    write = buffer.write
    for row in rows:
        write("\t".join([encode(row[name]) for name, encode in pairs]).encode("utf-8"))
        write(b"\n")
    buffer.seek(0)
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(name) for name in columns)
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.copy_expert(f"COPY {table_name} ({column_list}) FROM STDIN", buffer)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _copy_encoder(column_type: sa.types.TypeEngine) -> Callable[[Any], str]:
    if isinstance(column_type, sa.types.TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sa.JSON):

        def encode_json(value: Any) -> str:
            return _NULL if value is None else json.dumps(value, separators=(",", ":")).translate(_COPY_ESCAPES)

        return encode_json
    if isinstance(column_type, sa.DateTime):
        return _encode_datetime
    if isinstance(column_type, sa.Boolean):
        return _encode_bool
    return _encode_text


def _encode_text(value: Any) -> str:
    if value is None:
        return _NULL
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _encode_datetime(value: datetime | None) -> str:
    if value is None:
        return _NULL
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the warehouse stores only timezone-aware times")
    return value.isoformat()


def _encode_bool(value: bool | None) -> str:
    return _NULL if value is None else ("t" if value else "f")
