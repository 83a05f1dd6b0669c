import random
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.errors import UnstorableValue
from ingest_platform.warehouse.result import UpsertResult
from ingest_platform.warehouse.tables import events, landing_ledger

KEY = ["source_id", "external_id"]
START = datetime(2026, 3, 1, 18, 0, tzinfo=UTC)


def event(external_id: str, **changes) -> dict:
    row = {
        "source_id": 5,
        "external_id": external_id,
        "title": f"Event {external_id}",
        "start_utc": START,
        "end_utc": None,
        "description": None,
        "location": "Taproom",
        "external_url": None,
        "categories": ["music"],
    }
    row.update(changes)
    return row


def stored(warehouse: WarehouseResource) -> dict[str, dict]:
    with warehouse.engine.connect() as connection:
        return {row.external_id: row._asdict() for row in connection.execute(sa.select(events))}


def test_inserts_then_reports_unchanged(warehouse: WarehouseResource) -> None:
    rows = [event(f"e{i}") for i in range(5)]
    assert warehouse.upsert(table=events, rows=rows, key=KEY) == UpsertResult(inserted=5)
    assert warehouse.upsert(table=events, rows=rows, key=KEY) == UpsertResult(unchanged=5)
    assert len(stored(warehouse)) == 5


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"title": "Renamed"}, id="text"),
        pytest.param({"start_utc": START + timedelta(hours=1)}, id="timestamp"),
        pytest.param({"end_utc": START + timedelta(hours=3)}, id="null-to-value"),
        pytest.param({"location": None}, id="value-to-null"),
        pytest.param({"categories": ["music", "food"]}, id="json"),
    ],
)
def test_counts_only_really_changed_rows_as_updated(warehouse: WarehouseResource, change: dict) -> None:
    warehouse.upsert(table=events, rows=[event("a"), event("b")], key=KEY)
    result = warehouse.upsert(table=events, rows=[event("a", **change), event("b")], key=KEY)
    assert result == UpsertResult(updated=1, unchanged=1)
    assert {name: stored(warehouse)["a"][name] for name in change} == change


def test_update_touches_updated_at_but_not_first_seen(warehouse: WarehouseResource) -> None:
    warehouse.upsert(table=events, rows=[event("a")], key=KEY)
    before = stored(warehouse)["a"]
    with warehouse.begin() as connection:
        connection.execute(sa.update(events).values(updated_at=START, first_seen_at=START))
    warehouse.upsert(table=events, rows=[event("a")], key=KEY)
    assert stored(warehouse)["a"]["updated_at"] == START, "an unchanged row is not rewritten"
    warehouse.upsert(table=events, rows=[event("a", title="New")], key=KEY)
    after = stored(warehouse)["a"]
    assert after["first_seen_at"] == START
    assert after["updated_at"] > START
    assert before["first_seen_at"] <= after["updated_at"]


def test_repeated_key_in_one_batch_keeps_the_last_row(warehouse: WarehouseResource) -> None:
    result = warehouse.upsert(table=events, rows=[event("a", title="first"), event("a", title="last")], key=KEY)
    assert result == UpsertResult(inserted=1)
    assert stored(warehouse)["a"]["title"] == "last"


def test_rows_stream_from_an_iterator_and_a_repeated_key_still_keeps_its_last_row(warehouse) -> None:
    warehouse.upsert(table=events, rows=[event("a"), event("b")], key=KEY)
    # 5 000 rows: several executemany slices (SQLite) and COPY chunks (PostgreSQL); "b" last arrives in a later one.
    streamed = (
        event(f"n{i % 4000}", title=f"take {i}") if i % 1000 else event("b", title=f"take {i}") for i in range(5000)
    )
    result = warehouse.upsert(table=events, rows=streamed, key=KEY)
    assert result == UpsertResult(inserted=3996, updated=1)  # n1..n3999 but n1000, n2000, n3000
    rows = stored(warehouse)
    assert (len(rows), rows["b"]["title"], rows["n1"]["title"], rows["a"]["title"]) == (
        3998,
        "take 4000",
        "take 4001",
        "Event a",
    )


def test_text_that_needs_escaping_round_trips(warehouse: WarehouseResource) -> None:
    awkward = "tab\there\nnew line\r\\N back\\slash \\ 'quote' \"dq\" ünïcødé 🎪"
    warehouse.upsert(table=events, rows=[event("a", description=awkward, categories=["a\tb", "c\nd"])], key=KEY)
    row = stored(warehouse)["a"]
    assert row["description"] == awkward
    assert row["categories"] == ["a\tb", "c\nd"]
    again = warehouse.upsert(table=events, rows=[event("a", description=awkward, categories=["a\tb", "c\nd"])], key=KEY)
    assert again == UpsertResult(unchanged=1)


def test_times_are_stored_in_utc_and_read_back_aware(warehouse: WarehouseResource) -> None:
    new_york = timezone(timedelta(hours=-5))
    warehouse.upsert(table=events, rows=[event("a", start_utc=datetime(2026, 3, 1, 13, 0, tzinfo=new_york))], key=KEY)
    assert stored(warehouse)["a"]["start_utc"] == START
    assert stored(warehouse)["a"]["start_utc"].tzinfo is not None


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        pytest.param([event("a"), {**event("b"), "surprise": 1}], "different columns", id="ragged-rows"),
        pytest.param([{**event("a"), "surprise": 1}], "unknown columns", id="unknown-column"),
        pytest.param([event("a", start_utc=datetime(2026, 1, 1))], "naive datetime", id="naive-datetime"),
    ],
)
def test_rejects_bad_rows_and_writes_nothing(warehouse: WarehouseResource, rows: list[dict], message: str) -> None:
    with pytest.raises((ValueError, sa.exc.StatementError), match=message):
        warehouse.upsert(table=events, rows=rows, key=KEY)
    assert stored(warehouse) == {}


def test_runs_in_the_callers_transaction(warehouse: WarehouseResource) -> None:
    with pytest.raises(RuntimeError), warehouse.begin() as connection:
        warehouse.upsert(table=events, rows=[event("a")], key=KEY, connection=connection)
        raise RuntimeError("the load failed after the upsert")
    assert stored(warehouse) == {}


def test_empty_batch_is_a_no_op(warehouse: WarehouseResource) -> None:
    assert warehouse.upsert(table=events, rows=[], key=KEY) == UpsertResult()


@pytest.mark.parametrize(
    ("row", "error", "named"),
    [
        pytest.param(event("a", title=None), sa.exc.IntegrityError, "title", id="not-null-in-the-merge"),
        pytest.param(event("a", title="half \ud800"), UnstorableValue, "events.title", id="lone-surrogate"),
    ],
)
def test_a_refused_row_raises_the_first_error_naming_the_column(warehouse, row: dict, error, named: str) -> None:
    # PostgreSQL aborts the transaction at the first error; cleaning up the staging table then would raise
    # InFailedSqlTransaction in its place and hide which column was at fault.
    with pytest.raises(error) as raised:
        warehouse.upsert(table=events, rows=[event("ok"), row], key=KEY)
    assert named in str(raised.value)
    assert "InFailedSqlTransaction" not in str(raised.value)
    assert stored(warehouse) == {}


def test_an_index_row_too_large_surfaces_as_itself_on_postgresql(pg_warehouse) -> None:
    # The ledger's key has no length check (the intake tables' keys have one, migration 0006), so the btree's own
    # limit is what refuses it.
    with pytest.raises(sa.exc.OperationalError) as raised:
        # Random, so that the index cannot compress it below its limit.
        name = "".join(random.Random(3).choices(string.ascii_letters, k=3_000))
        pg_warehouse.upsert(
            table=landing_ledger, rows=[{"stream": "s", "file_name": name, "rows": 1}], key=["stream", "file_name"]
        )
    assert raised.value.orig.pgcode == "54000"


def test_a_mixed_reload_counts_new_changed_and_unchanged_rows_exactly(warehouse: WarehouseResource) -> None:
    warehouse.upsert(table=events, rows=[event(f"e{i}") for i in range(8)], key=KEY)
    reload = [event(f"e{i}", title="Renamed") if i < 3 else event(f"e{i}") for i in range(8)] + [
        event("new-1"),
        event("new-2"),
    ]

    assert warehouse.upsert(table=events, rows=reload, key=KEY) == UpsertResult(inserted=2, updated=3, unchanged=5)
    assert warehouse.upsert(table=events, rows=reload, key=KEY) == UpsertResult(unchanged=10)
    assert {row["title"] for name, row in stored(warehouse).items() if name in ("e0", "e1", "e2")} == {"Renamed"}


def row_versions(warehouse: WarehouseResource) -> dict[str, tuple[str, str, str]]:
    """Each row's physical version: where it lives, which transaction wrote it and which one last locked or
    replaced it (xmax stays 0 until a transaction locks or updates the row)."""
    with warehouse.engine.connect() as connection:
        return {
            external_id: (ctid, xmin, xmax)
            for external_id, ctid, xmin, xmax in connection.exec_driver_sql(
                "SELECT external_id, ctid::text, xmin::text, xmax::text FROM events"
            )
        }


def test_an_unchanged_reload_on_postgresql_writes_no_row_version_and_locks_nothing(
    pg_warehouse: WarehouseResource,
) -> None:
    rows = [event(f"e{i}") for i in range(50)]
    pg_warehouse.upsert(table=events, rows=rows, key=KEY)
    versions = row_versions(pg_warehouse)
    assert {xmax for _, _, xmax in versions.values()} == {"0"}

    with pg_warehouse.engine.connect() as holder, pg_warehouse.begin() as loader:
        # Another transaction holds a row; a load that locked the rows it did not change would wait for it.
        holder.exec_driver_sql("BEGIN")
        holder.exec_driver_sql("SELECT 1 FROM events WHERE external_id = 'e7' FOR UPDATE")
        loader.exec_driver_sql("SET LOCAL lock_timeout = '1ms'")
        result = pg_warehouse.upsert(table=events, rows=rows, key=KEY, connection=loader)
        holder.exec_driver_sql("ROLLBACK")

    assert result == UpsertResult(unchanged=50)
    after = row_versions(pg_warehouse)
    locked_by_the_holder = after.pop("e7")
    assert locked_by_the_holder[:2] == versions.pop("e7")[:2]
    assert after == versions


def test_only_the_changed_rows_get_a_new_version_on_postgresql(pg_warehouse: WarehouseResource) -> None:
    pg_warehouse.upsert(table=events, rows=[event(f"e{i}") for i in range(20)], key=KEY)
    versions = row_versions(pg_warehouse)

    result = pg_warehouse.upsert(
        table=events,
        rows=[event(f"e{i}", title="Renamed") if i % 10 == 0 else event(f"e{i}") for i in range(20)],
        key=KEY,
    )

    assert result == UpsertResult(updated=2, unchanged=18)
    after = row_versions(pg_warehouse)
    assert sorted(name for name in after if after[name] != versions[name]) == ["e0", "e10"]


def test_the_copy_text_is_streamed_as_bytes_a_chunk_at_a_time() -> None:
    from ingest_platform.warehouse.upsert import CopyStream

    columns = ["external_id", "title", "categories"]
    consumed = 0

    def rows():
        nonlocal consumed
        for index in range(20_000):
            consumed += 1
            yield {"external_id": f"e{index}", "title": "Zirkus 🎪\tzelt", "categories": ["a\nb"]}

    stream = CopyStream(rows(), columns, [events.c[name].type for name in columns])
    first = stream.read(1 << 16)

    assert isinstance(first, bytes) and len(first) == 1 << 16
    assert consumed < 5_000  # encoded as psycopg2 asks, not the whole batch up front
    assert first.startswith('e0\tZirkus 🎪\\tzelt\t["a\\\\nb"]\ne1\t'.encode())
    rest = b"".join(iter(lambda: stream.read(1 << 16), b""))
    assert consumed == 20_000
    assert (first + rest).count(b"\n") == 20_000
