from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.assets.bigtop import bigtop_pushed_events
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events, landing_ledger
from tests.landing_files import bigtop_batch, bigtop_event, land

STREAM = "bigtop_events"
OP = "bigtop__raw__pushed_events"
DAY = "2026-03-01"
DAY_NS = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1e9)


@pytest.fixture
def landing_dir(tmp_path):
    return tmp_path / "landing"


def materialize(warehouse: WarehouseResource, landing_dir, files: list[str] | None = None, **config) -> dict:
    result = dg.materialize(
        [bigtop_pushed_events],
        partition_key=DAY,
        resources={"warehouse": warehouse, "landing": LandingZoneResource(landing_dir=str(landing_dir))},
        run_config={"ops": {OP: {"config": {"files": files or [], **config}}}},
    )
    assert result.success
    (materialization,) = result.asset_materializations_for_node(OP)
    return {key: value.value for key, value in materialization.metadata.items()}


def titles(warehouse: WarehouseResource) -> dict[str, str]:
    with warehouse.engine.connect() as connection:
        return dict(connection.execute(sa.select(events.c.external_id, events.c.title)).all())


def ledger(warehouse: WarehouseResource) -> list[tuple[str, int]]:
    with warehouse.engine.connect() as connection:
        return connection.execute(sa.select(landing_ledger.c.file_name, landing_ledger.c.rows)).all()


def test_loads_files_and_records_them_in_the_ledger(warehouse, landing_dir) -> None:
    first = land(landing_dir, STREAM, bigtop_batch(bigtop_event("a"), bigtop_event("b")), at_ns=DAY_NS)
    second = land(landing_dir, STREAM, bigtop_batch(bigtop_event("c")), at_ns=DAY_NS + 1)
    metadata = materialize(warehouse, landing_dir, [first, second])
    schema = metadata.pop("dagster/column_schema")
    assert [column.name for column in schema.columns] == [column.name for column in events.columns]
    assert metadata | {"quarantined": None} == {
        "dagster/table_name": "events",
        "dagster/row_count": 3,
        "files": 2,
        "files_loaded": 2,
        "files_already_loaded": 0,
        "files_quarantined": 0,
        "quarantined": None,
        "rows": 3,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
    }
    assert titles(warehouse) == {"a": "Trivia night", "b": "Trivia night", "c": "Trivia night"}
    assert sorted(ledger(warehouse)) == sorted([(first, 2), (second, 1)])
    assert not (landing_dir / STREAM / first).exists()
    assert (landing_dir / STREAM / "loaded" / DAY / first).exists()


def test_the_same_file_twice_adds_nothing(warehouse, landing_dir) -> None:
    name = land(landing_dir, STREAM, bigtop_batch(bigtop_event("a")), at_ns=DAY_NS)
    materialize(warehouse, landing_dir, [name])
    again = materialize(warehouse, landing_dir, [name])
    assert (again["files_already_loaded"], again["files_loaded"], again["inserted"]) == (1, 0, 0)
    assert len(ledger(warehouse)) == 1


def test_a_replayed_batch_in_a_new_file_is_unchanged(warehouse, landing_dir) -> None:
    batch = bigtop_batch(bigtop_event("a"), bigtop_event("b"))
    materialize(warehouse, landing_dir, [land(landing_dir, STREAM, batch, at_ns=DAY_NS)])
    replay = materialize(warehouse, landing_dir, [land(landing_dir, STREAM, batch, at_ns=DAY_NS + 1)])
    assert (replay["inserted"], replay["updated"], replay["unchanged"]) == (0, 0, 2)


def test_changed_title_counts_as_updated(warehouse, landing_dir) -> None:
    materialize(warehouse, landing_dir, [land(landing_dir, STREAM, bigtop_batch(bigtop_event("a")), at_ns=DAY_NS)])
    renamed = land(landing_dir, STREAM, bigtop_batch(bigtop_event("a", title="Quiz night")), at_ns=DAY_NS + 1)
    metadata = materialize(warehouse, landing_dir, [renamed])
    assert (metadata["inserted"], metadata["updated"]) == (0, 1)
    assert titles(warehouse) == {"a": "Quiz night"}


def test_the_loader_normalises_the_body_as_the_endpoint_validated_it(warehouse, landing_dir) -> None:
    # The webhook app lands the client's bytes; stripping and source_id's default happen here, so a padded replay of
    # the same event is the same row.
    padded = bigtop_batch(bigtop_event("  a  ", title=" Trivia night "))
    del padded["source_id"]
    materialize(warehouse, landing_dir, [land(landing_dir, STREAM, padded, at_ns=DAY_NS)])
    replay = materialize(warehouse, landing_dir, [land(landing_dir, STREAM, bigtop_batch(bigtop_event("a")))])
    assert (replay["inserted"], replay["unchanged"]) == (0, 1)
    with warehouse.engine.connect() as connection:
        assert connection.execute(sa.select(events.c.source_id, events.c.external_id, events.c.title)).all() == [
            (5, "a", "Trivia night")
        ]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        pytest.param({"raw": b'{"stream": "bigtop_events", "payload": '}, "not valid JSON", id="truncated-json"),
        pytest.param({"payload": {"source_id": 5, "events": [{"title": "x"}]}}, "external_id", id="missing-field"),
        pytest.param({"payload": bigtop_batch(bigtop_event("z", start="2026-03-05T23:00:00"))}, "timezone", id="naive"),
        pytest.param({"payload": {**bigtop_batch(bigtop_event("z")), "source_id": 9}}, "not Big Top", id="source"),
    ],
)
def test_bad_file_goes_to_quarantine_and_the_batch_goes_on(warehouse, landing_dir, bad: dict, reason: str) -> None:
    good = land(landing_dir, STREAM, bigtop_batch(bigtop_event("a")), at_ns=DAY_NS)
    broken = land(landing_dir, STREAM, bad.get("payload"), at_ns=DAY_NS + 1, raw=bad.get("raw"))
    metadata = materialize(warehouse, landing_dir, [good, broken])
    assert (metadata["files_loaded"], metadata["files_quarantined"]) == (1, 1)
    assert reason in metadata["quarantined"][broken]
    assert titles(warehouse) == {"a": "Trivia night"}
    assert [name for name, _ in ledger(warehouse)] == [good]
    assert reason in (landing_dir / "quarantine" / STREAM / f"{broken}.reason").read_text()
    assert not (landing_dir / STREAM / broken).exists()


def test_without_named_files_a_run_loads_its_partition_day(warehouse, landing_dir) -> None:
    on_day = land(landing_dir, STREAM, bigtop_batch(bigtop_event("a")), at_ns=DAY_NS)
    land(landing_dir, STREAM, bigtop_batch(bigtop_event("other-day")), at_ns=DAY_NS + 86_400 * 10**9)
    metadata = materialize(warehouse, landing_dir)
    assert metadata["files"] == 1
    assert titles(warehouse) == {"a": "Trivia night"}
    assert [name for name, _ in ledger(warehouse)] == [on_day]


def test_reload_reapplies_loaded_files_without_duplicating(warehouse, landing_dir) -> None:
    name = land(landing_dir, STREAM, bigtop_batch(bigtop_event("a")), at_ns=DAY_NS)
    materialize(warehouse, landing_dir, [name])
    with warehouse.begin() as connection:
        connection.execute(sa.update(events).values(title="edited by hand"))
    metadata = materialize(warehouse, landing_dir, reload=True)
    assert (metadata["files_loaded"], metadata["updated"]) == (1, 1)
    assert titles(warehouse) == {"a": "Trivia night"}
    assert len(ledger(warehouse)) == 1
