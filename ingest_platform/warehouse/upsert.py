"""The one bulk-upsert primitive every loader uses.

Rows are staged in a temporary table (PostgreSQL: COPY; SQLite: executemany), then merged with a single
`INSERT … SELECT … ON CONFLICT DO UPDATE … WHERE <row> IS DISTINCT FROM <new row>`, with no per-row round trip.
Before the insert, the staged rows equal to their target row (key and compared columns) are deleted from the
staging table (an anti-join that only reads the target): ON CONFLICT DO UPDATE locks (and WAL-logs the lock of)
every conflicting row even when its WHERE is false, so without it a reload of unchanged data would lock and log
the whole batch. The conflict clause's WHERE still guards a row that a concurrent load changed in between.

The rows stream: they are read once, as the staging write consumes them, and never held as a list, so a batch's
memory is its keys (kept to collapse a key repeated within the batch) whatever its size.
"""

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    Returns how many distinct keys were inserted, updated (values changed) or left unchanged. `rows` is read once;
    only when a row fails in Python is it read again, to name the column, so pass a re-iterable collection (a list,
    or an object whose `__iter__` reads its source anew) when that diagnosis matters.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return UpsertResult()
    columns = list(first)
    unknown = [name for name in columns if name not in table.c]
    if unknown:
        raise ValueError(f"upsert into {table.name}: unknown columns {unknown}")

    staging = f"_staging_{table.name}_{next(_staging_names)}"
    stage = _stage_postgresql if conn.dialect.name == "postgresql" else _stage_sqlite
    keys = _KeyTracker(table.name, columns, key)
    try:
        stage(conn, table, staging, columns, keys.track(itertools.chain([first], iterator)))
        _drop_superseded(conn, staging, keys.superseded)
        inserted, updated = _merge(conn, table, staging, columns, key)
    except RaggedRowsError:
        raise
    except Exception as error:
        unstorable = _unstorable_value(conn, table, columns, rows, error)
        if unstorable is not None:
            raise unstorable from error
        raise
    # Dropped only after a merge that worked: after an error PostgreSQL's transaction is aborted and a DROP would
    # replace the first error with InFailedSqlTransaction; the caller's rollback removes the table anyway.
    conn.exec_driver_sql(f"DROP TABLE {staging}")
    unique = keys.staged - len(keys.superseded)
    return UpsertResult(inserted=inserted, updated=updated, unchanged=unique - inserted - updated)


class RaggedRowsError(ValueError):
    """Rows of one batch carry different columns."""


# The staging tables' row number: SQLite's own rowid; PostgreSQL's staging table gets a column for it.
_ORDINAL = "_staged_ordinal"


class _KeyTracker:
    """Numbers the rows as they stream past and remembers, per key, the last row's number: the earlier rows of a
    repeated key are `superseded` and leave the staging table before the merge (the last row wins)."""

    def __init__(self, table_name: str, columns: list[str], key: Sequence[str]) -> None:
        self.table_name = table_name
        self.columns = columns
        self.key = list(key)
        self.staged = 0
        self.superseded: list[int] = []

    def track(self, rows: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        last: dict[tuple, int] = {}
        columns, key, superseded = set(self.columns), self.key, self.superseded
        number = 0
        for number, row in enumerate(rows, start=1):
            if row.keys() != columns:
                raise RaggedRowsError(
                    f"upsert into {self.table_name}: rows carry different columns ({self.columns} vs {list(row)})"
                )
            earlier = last.get(values := tuple(row[name] for name in key))
            if earlier is not None:
                superseded.append(earlier)
            last[values] = number
            yield row
        self.staged = number


def _drop_superseded(conn: sa.Connection, staging: str, ordinals: list[int]) -> None:
    column = "rowid" if conn.dialect.name == "sqlite" else _ORDINAL
    for start in range(0, len(ordinals), _SUPERSEDED_CHUNK):
        chunk = ordinals[start : start + _SUPERSEDED_CHUNK]
        conn.exec_driver_sql(f"DELETE FROM {staging} WHERE {column} IN ({', '.join(map(str, chunk))})")


_SUPERSEDED_CHUNK = 1_000


_INT64 = range(-(2**63), 2**63)


def _unstorable_value(
    conn: sa.Connection, table: sa.Table, columns: list[str], rows: Iterable[Mapping[str, Any]], error: BaseException
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

    staged_key = " AND ".join(f"{target}.{quote(name)} = {staging}.{quote(name)}" for name in key)
    if values:
        assignments = [f"{quote(name)} = {excluded}.{quote(name)}" for name in values]
        if TOUCH_COLUMN in table.c and TOUCH_COLUMN not in columns:
            assignments.append(f"{quote(TOUCH_COLUMN)} = CURRENT_TIMESTAMP")
        old = ", ".join(f"{target}.{quote(name)}" for name in values)
        new = ", ".join(f"{excluded}.{quote(name)}" for name in values)
        distinct, same = ("IS DISTINCT FROM", "IS NOT DISTINCT FROM") if postgres else ("IS NOT", "IS")
        on_conflict = (
            f"ON CONFLICT ({key_list}) DO UPDATE SET {', '.join(assignments)} WHERE ({old}) {distinct} ({new})"
        )
        staged_values = ", ".join(f"{staging}.{quote(name)}" for name in values)
        unchanged = f"{staged_key} AND ({old}) {same} ({staged_values})"
    else:
        on_conflict = f"ON CONFLICT ({key_list}) DO NOTHING"
        unchanged = staged_key
    # The unchanged rows leave the staging table in a statement of their own, which only reads the target. Inside
    # the INSERT, the anti-join would scan a target that the same statement is growing: with the planner
    # expecting an empty table after a TRUNCATE, a nested loop over it made a fresh load quadratic.
    conn.exec_driver_sql(f"DELETE FROM {staging} WHERE EXISTS (SELECT 1 FROM {target} WHERE {unchanged})")
    # `WHERE true` resolves SQLite's parsing ambiguity between a join and the ON CONFLICT clause.
    changed_or_new = f"SELECT {column_list} FROM {staging} WHERE true"

    if postgres:
        # xmax = 0 marks a freshly inserted tuple; an updated one carries the updating transaction's id.
        counts = conn.exec_driver_sql(
            f"WITH merged AS (INSERT INTO {target} ({column_list}) {changed_or_new} "
            f"{on_conflict} RETURNING (xmax = 0) AS inserted) "
            "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM merged"
        ).one()
        return int(counts[0]), int(counts[1])

    first_key = quote(key[0])
    inserted = conn.exec_driver_sql(
        f"SELECT count(*) FROM {staging} LEFT JOIN {target} ON {staged_key} WHERE {target}.{first_key} IS NULL"
    ).scalar_one()
    before = conn.exec_driver_sql("SELECT total_changes()").scalar_one()
    conn.exec_driver_sql(f"INSERT INTO {target} ({column_list}) {changed_or_new} {on_conflict}")
    changed = conn.exec_driver_sql("SELECT total_changes()").scalar_one() - before
    return int(inserted), int(changed - inserted)


def _stage_sqlite(
    conn: sa.Connection, table: sa.Table, staging: str, columns: list[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    # A Core table of the same column types, so values go through the same type processors as the target's.
    stage_table = sa.Table(
        staging,
        sa.MetaData(),
        *(sa.Column(name, table.c[name].type) for name in columns),
        prefixes=["TEMPORARY"],
    )
    stage_table.create(conn)
    insert = stage_table.insert()
    # executemany a slice at a time: SQLAlchemy lists its parameters, which for the whole batch would hold it all.
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, _SQLITE_ROWS_PER_EXECUTE)):
        conn.execute(insert, chunk)


_SQLITE_ROWS_PER_EXECUTE = 2_000


def _stage_postgresql(
    conn: sa.Connection, table: sa.Table, staging: str, columns: list[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(name) for name in columns)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {staging} AS SELECT {column_list}, 0::bigint AS {_ORDINAL} "
        f"FROM {quote(table.name)} WITH NO DATA"
    )
    copy_rows(conn, staging, columns, rows, [table.c[name].type for name in columns], numbered_as=_ORDINAL)


def copy_rows(
    conn: sa.Connection,
    table_name: str,
    columns: list[str],
    rows: Iterable[Mapping[str, Any]],
    types: Sequence[sa.types.TypeEngine],
    *,
    numbered_as: str | None = None,
) -> None:
    """COPY `rows` into `table_name` in PostgreSQL's text format over the connection's psycopg2 cursor.

    The rows are encoded while psycopg2 reads them, a chunk at a time, as UTF-8 bytes: the batch is never held as
    one text (a `StringIO` of a 200k-row batch is some 60 M characters, stored four bytes each once a single
    character is outside Latin-1). With `numbered_as`, that column gets each row's number, from 1."""
    quote = conn.dialect.identifier_preparer.quote
    column_list = ", ".join(quote(name) for name in [*columns, *([numbered_as] if numbered_as else [])])
    stream = CopyStream(rows, columns, types, numbered=numbered_as is not None)
    with conn.connection.dbapi_connection.cursor() as cursor:
        try:
            cursor.copy_expert(f"COPY {table_name} ({column_list}) FROM STDIN", stream, size=COPY_CHUNK_BYTES)
        except Exception:
            # psycopg2 reports a row that could not be encoded as "COPY from stdin failed": say which and why.
            if stream.error is not None:
                raise stream.error from None
            raise


COPY_CHUNK_BYTES = 1 << 16
_ROWS_PER_ENCODE = 500


class CopyStream:
    """The COPY text of `rows` as a readable byte stream, encoded `_ROWS_PER_ENCODE` rows at a time."""

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]],
        columns: Sequence[str],
        types: Sequence[sa.types.TypeEngine],
        *,
        numbered: bool = False,
    ) -> None:
        encoders = [_copy_encoder(column_type) for column_type in types]
        self._pairs = list(zip(columns, encoders, strict=True))
        self._rows = iter(rows)
        self._numbered = numbered
        self._count = 0
        self._pending = b""
        self.error: Exception | None = None

    def _next_chunk(self) -> bytes:
        pairs = self._pairs
        lines = [
            "\t".join([encode(row[name]) for name, encode in pairs])
            for row in itertools.islice(self._rows, _ROWS_PER_ENCODE)
        ]
        if not lines:
            return b""
        if self._numbered:
            first = self._count + 1
            lines = [f"{line}\t{number}" for number, line in enumerate(lines, start=first)]
        self._count += len(lines)
        lines.append("")
        return "\n".join(lines).encode()

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            try:
                chunk = self._next_chunk()
            except Exception as error:
                self.error = error
                raise
            if not chunk:
                break
            self._pending = self._pending + chunk if self._pending else chunk
        if size < 0 or len(self._pending) <= size:
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data


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
