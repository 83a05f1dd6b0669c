"""The RTARF events asset against the fake Elasticsearch, on both warehouse backends."""

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.assets import rtarf as rtarf_assets
from ingest_platform.assets.rtarf import rtarf_events_asset
from ingest_platform.resources.elasticsearch import ElasticsearchResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.rtarf.documents import BadDocument, event_row, sync_window
from ingest_platform.warehouse.tables import rtarf_events, rtarf_rejected_events
from tests.fakes.elasticsearch import FakeElasticsearch, Fault
from tests.fakes.rtarf_documents import INDEX, day_documents, day_start, event_source

PAST_DAY = date(2025, 11, 14)


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch().running() as server:
        yield server


def es_resource(es: FakeElasticsearch, **overrides: Any) -> ElasticsearchResource:
    return ElasticsearchResource(url=es.url, retry_backoff_seconds=0.01, **overrides)


def sync(
    es: FakeElasticsearch,
    warehouse: WarehouseResource,
    day: date,
    *,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
    es_overrides: dict[str, Any] | None = None,
    **config: Any,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [rtarf_events_asset],
        partition_key=day.isoformat(),
        resources={"elasticsearch": es_resource(es, **(es_overrides or {})), "warehouse": warehouse},
        run_config=dg.RunConfig(ops={"rtarf__raw__events": {"config": {"page_size": 4, **config}}}),
        instance=instance,
        raise_on_error=raise_on_error,
    )


def figures(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    (materialization,) = result.asset_materializations_for_node("rtarf__raw__events")
    return {name: value.value for name, value in materialization.metadata.items()}


def rows(warehouse: WarehouseResource, table: sa.Table = rtarf_events) -> dict[str, dict[str, Any]]:
    with warehouse.begin() as connection:
        return {row.es_id: row._asdict() for row in connection.execute(sa.select(table))}


def test_a_day_is_paged_with_a_point_in_time_and_loaded(es: FakeElasticsearch, warehouse: WarehouseResource):
    es.index_many(INDEX, day_documents(PAST_DAY, 10))
    es.index_many(INDEX, day_documents(PAST_DAY - timedelta(days=1), 3))
    es.index_many("rtarf-events-2025.12", day_documents(PAST_DAY + timedelta(days=1), 2))
    es.index("other-index", "not-rtarf", event_source(day_start(PAST_DAY), 1))

    result = sync(es, warehouse, PAST_DAY)

    loaded = rows(warehouse)
    assert sorted(loaded) == sorted(f"{PAST_DAY}-{n}" for n in range(10))
    first = loaded[f"{PAST_DAY}-1"]
    assert first["event_timestamp"] == day_start(PAST_DAY) + timedelta(minutes=7)
    assert (first["es_index"], first["event_action"], first["event_category"], first["event_severity"]) == (
        INDEX,
        "login",
        "authentication",
        1,
    )
    assert (first["host_name"], first["source_ip"], first["user_name"], first["rule_name"]) == (
        "host-1",
        "10.0.0.2",
        "user1",
        "failed-login",
    )
    assert first["source_document"] == event_source(day_start(PAST_DAY) + timedelta(minutes=7), 1)
    assert {key: figures(result)[key] for key in ("total_processed", "inserted", "updated", "pages", "mode")} == {
        "total_processed": 10,
        "inserted": 10,
        "updated": 0,
        "pages": 3,
        "mode": "full_day",
    }
    searches = es.requests_of("search")
    timestamp_sort = {"order": "asc", "unmapped_type": "date", "numeric_type": "date"}
    assert all(request.body["sort"] == [{"@timestamp": timestamp_sort}, {"_shard_doc": "asc"}] for request in searches)
    assert [request.body.get("search_after") is None for request in searches] == [True, False, False]
    assert all("from" not in request.body and "scroll" not in request.query for request in searches)
    assert len(es.requests_of("close_pit")) == 1
    assert es.pits == {}


def test_the_same_partition_twice_changes_nothing(es: FakeElasticsearch, warehouse: WarehouseResource):
    es.index_many(INDEX, day_documents(PAST_DAY, 9))
    sync(es, warehouse, PAST_DAY)
    before = rows(warehouse)

    again = figures(sync(es, warehouse, PAST_DAY))

    assert (again["total_processed"], again["inserted"], again["updated"], again["unchanged"]) == (9, 0, 0, 9)
    assert rows(warehouse) == before


def test_changed_documents_are_updated_and_new_ones_inserted(es: FakeElasticsearch, warehouse: WarehouseResource):
    es.index_many(INDEX, day_documents(PAST_DAY, 6))
    sync(es, warehouse, PAST_DAY)
    moment = day_start(PAST_DAY) + timedelta(minutes=14)
    es.index(INDEX, f"{PAST_DAY}-2", event_source(moment, 2, message="escalated", event={"severity": 4}))
    es.index(
        INDEX, f"{PAST_DAY}-new", event_source(day_start(PAST_DAY) + timedelta(hours=20), 99, event={"severity": 2**62})
    )

    result = figures(sync(es, warehouse, PAST_DAY))

    assert (result["inserted"], result["updated"], result["unchanged"]) == (1, 1, 5)
    changed = rows(warehouse)[f"{PAST_DAY}-2"]
    assert (changed["message"], changed["event_severity"], changed["event_action"]) == ("escalated", 4, None)
    assert rows(warehouse)[f"{PAST_DAY}-new"]["event_severity"] == 2**62


def test_bad_documents_are_counted_reported_and_kept_without_aborting_the_page(
    es: FakeElasticsearch, warehouse: WarehouseResource
):
    start = day_start(PAST_DAY)
    es.index_many(INDEX, day_documents(PAST_DAY, 5))
    es.index(INDEX, "bad-severity", event_source(start + timedelta(minutes=1), 1, event={"severity": "high"}))
    es.index(INDEX, "bad-ip", event_source(start + timedelta(minutes=2), 2, source={"ip": "not-an-ip"}))
    two_times = [
        (start + timedelta(minutes=3)).isoformat(),
        (start + timedelta(minutes=4)).isoformat(),
    ]
    es.index(INDEX, "bad-timestamp", event_source(start, 3, **{"@timestamp": two_times}))
    es.index(INDEX, "bad-nul", event_source(start + timedelta(minutes=5), 4, labels={"note": "a\x00b"}))

    result = figures(sync(es, warehouse, PAST_DAY))

    assert (result["total_processed"], result["inserted"], result["bad_documents"]) == (9, 5, 4)
    reported = {entry["id"]: entry["reason"] for entry in result["bad_document_ids"]}
    assert sorted(reported) == ["bad-ip", "bad-nul", "bad-severity", "bad-timestamp"]
    assert reported["bad-nul"] == "labels.note: contains a NUL character (U+0000), which the warehouse cannot store"
    assert reported["bad-severity"] == "event.severity: expected an integer, got str 'high'"
    assert reported["bad-ip"] == "source.ip: 'not-an-ip' is not an IP address"
    assert reported["bad-timestamp"].startswith("@timestamp: expected an ISO 8601 date or epoch milliseconds, got list")
    rejected = rows(warehouse, rtarf_rejected_events)
    assert {key: row["reason"] for key, row in rejected.items()} == reported
    assert rejected["bad-ip"]["source_document"]["source"] == {"ip": "not-an-ip"}
    assert rejected["bad-nul"]["source_document"] is None

    es.index(INDEX, "bad-ip", event_source(start + timedelta(minutes=2), 2))
    healed = figures(sync(es, warehouse, PAST_DAY))

    assert (healed["inserted"], healed["bad_documents"]) == (1, 3)
    assert "bad-ip" in rows(warehouse)
    assert sorted(rows(warehouse, rtarf_rejected_events)) == ["bad-nul", "bad-severity", "bad-timestamp"]


def _clock_at(moment: datetime) -> type[datetime]:
    """`datetime` whose now() is `moment`, for the asset module's clock."""

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return moment.astimezone(tz) if tz else moment.replace(tzinfo=None)

    return Clock


def test_todays_run_reads_from_the_last_seen_event_minus_the_overlap(
    es: FakeElasticsearch, warehouse: WarehouseResource, monkeypatch: pytest.MonkeyPatch
):
    today = datetime.now(UTC).date()
    start = day_start(today)
    # The sync caps its window at now: run it at noon, so the day's 02:00 events are past at any hour of the suite.
    monkeypatch.setattr(rtarf_assets, "datetime", _clock_at(start + timedelta(hours=12)))
    es.index_many(INDEX, [(f"t-{n}", event_source(start + timedelta(hours=2, minutes=n), n)) for n in range(6)])
    first = figures(sync(es, warehouse, today, overlap_seconds=600))
    assert (first["mode"], first["inserted"]) == ("full_day", 6)
    last_seen = start + timedelta(hours=2, minutes=5)

    es.index(INDEX, "late-within-overlap", event_source(last_seen - timedelta(minutes=8), 50))
    es.index(INDEX, "late-beyond-overlap", event_source(last_seen - timedelta(minutes=30), 51))
    es.index(INDEX, "newer", event_source(last_seen + timedelta(minutes=20), 52))
    es.requests.clear()
    second = figures(sync(es, warehouse, today, overlap_seconds=600))

    window_start = last_seen - timedelta(minutes=10)
    assert (second["mode"], second["window_start"]) == ("incremental", window_start.isoformat())
    assert es.requests_of("search")[0].body["query"]["range"]["@timestamp"]["gte"] == int(
        window_start.timestamp() * 1000
    )
    # The window opens at 01:55: t-0 to t-5 (02:00 to 02:05) are read again, plus the two documents new since.
    assert (second["total_processed"], second["inserted"], second["unchanged"]) == (8, 2, 6)
    assert "late-beyond-overlap" not in rows(warehouse)

    whole = figures(sync(es, warehouse, today, full_day=True))
    assert (whole["mode"], whole["inserted"]) == ("full_day", 1)
    assert "late-beyond-overlap" in rows(warehouse)


def test_a_backfill_of_three_days_resyncs_each_whole_day(es: FakeElasticsearch, warehouse: WarehouseResource):
    days = [PAST_DAY - timedelta(days=offset) for offset in (2, 1, 0)]
    for number, day in enumerate(days):
        es.index_many(INDEX, day_documents(day, 3 + number))
    es.index_many(INDEX, day_documents(PAST_DAY + timedelta(days=1), 4))

    with dg.instance_for_test() as instance:
        first = [figures(sync(es, warehouse, day, instance=instance)) for day in days]
        assert [(f["mode"], f["inserted"]) for f in first] == [("full_day", 3), ("full_day", 4), ("full_day", 5)]
        again = figures(sync(es, warehouse, days[1], instance=instance))
        materialized = instance.get_materialized_partitions(dg.AssetKey(["rtarf", "raw", "events"]))

    # A past day is re-read whole even though its rows are there, and converges to the same rows.
    assert (again["mode"], again["total_processed"], again["inserted"], again["unchanged"]) == ("full_day", 4, 0, 4)
    assert materialized == {day.isoformat() for day in days}
    assert len(rows(warehouse)) == 12


def test_transient_errors_mid_paging_are_retried(es: FakeElasticsearch, warehouse: WarehouseResource):
    es.index_many(INDEX, day_documents(PAST_DAY, 12))
    es.inject(Fault(kind="search", status=503, after=1, times=2))

    result = figures(sync(es, warehouse, PAST_DAY))

    assert (result["inserted"], result["es_retries"], result["pages"]) == (12, 2, 3)


def test_a_failure_after_the_retries_keeps_loaded_pages_and_closes_the_point_in_time(
    es: FakeElasticsearch, warehouse: WarehouseResource
):
    es.index_many(INDEX, day_documents(PAST_DAY, 12))
    es.inject(Fault(kind="search", status=502, after=2, times=10))

    result = sync(es, warehouse, PAST_DAY, raise_on_error=False, es_overrides={"max_retries": 2})

    assert not result.success
    assert len(rows(warehouse)) == 8
    assert len(es.requests_of("search")) == 2 + 3
    assert len(es.requests_of("close_pit")) == 1
    assert es.pits == {}


def test_an_expired_point_in_time_is_reopened_and_the_scan_resumes(es: FakeElasticsearch, warehouse: WarehouseResource):
    es.index_many(INDEX, day_documents(PAST_DAY, 10))
    es.inject(Fault(kind="search", expire_pit=True, after=1))

    result = figures(sync(es, warehouse, PAST_DAY))

    assert (result["pit_reopened"], result["inserted"]) == (1, 10)
    assert len(es.requests_of("open_pit")) == 2
    resumed = es.requests_of("search")[2].body
    last_of_first_page = int((day_start(PAST_DAY) + timedelta(minutes=21)).timestamp() * 1000)
    assert resumed["query"]["range"]["@timestamp"]["gte"] == last_of_first_page
    assert "search_after" not in resumed or resumed["search_after"] is None
    assert es.pits == {}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00", "event.action": "scan", "host.name": "h"},
            {"event_timestamp": datetime(2025, 11, 14, 10, 30, tzinfo=UTC), "event_action": "scan", "host_name": "h"},
            id="naive-iso-is-utc-and-flat-ecs-keys",
        ),
        pytest.param(
            {"@timestamp": 1763116200000, "event": {"severity": "3", "category": "network"}},
            {
                "event_timestamp": datetime(2025, 11, 14, 10, 30, tzinfo=UTC),
                "event_severity": 3,
                "event_category": "network",
            },
            id="epoch-millis-and-numeric-string-severity",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "event": {"severity": 2**62}},
            {"event_severity": 2**62},
            id="severity-needs-64-bits",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T17:30:00+07:00", "destination": {"ip": "2001:db8::1"}},
            {"event_timestamp": datetime(2025, 11, 14, 10, 30, tzinfo=UTC), "destination_ip": "2001:db8::1"},
            id="offset-converted-to-utc-and-ipv6",
        ),
    ],
)
def test_event_row_maps_known_fields(source: dict[str, Any], expected: dict[str, Any]):
    row = event_row({"_id": "x", "_index": INDEX, "_source": source}, timestamp_field="@timestamp")
    assert {key: row[key] for key in expected} == expected
    assert row["source_document"] == source


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        pytest.param({"message": "no time"}, "@timestamp: missing", id="missing-timestamp"),
        pytest.param({"@timestamp": "yesterday"}, "@timestamp: 'yesterday' is not an ISO 8601 date", id="bad-date"),
        pytest.param(
            {"@timestamp": True}, "@timestamp: expected an ISO 8601 date or epoch milliseconds", id="bool-date"
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "host": {"name": {"first": "a"}}},
            "host.name: expected a string",
            id="object-for-string",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "event": {"category": ["a", 1]}},
            "event.category: expected a string or a list of strings",
            id="mixed-list",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "event": {"severity": 2.5}},
            "event.severity: expected an integer",
            id="float-severity",
        ),
        pytest.param(
            {"@timestamp": 10**20}, "@timestamp: 100000000000000000000 epoch milliseconds is out of", id="huge-epoch"
        ),
        pytest.param(
            {"@timestamp": "0001-01-01T00:00:00+01:00"},
            "@timestamp: '0001-01-01T00:00:00+01:00' is out of range",
            id="year-0",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "event": {"severity": 2**63}},
            "event.severity: 9223372036854775808 does not fit a 64-bit integer",
            id="severity-beyond-long",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "tags": ["ok", "nul\x00"]},
            "tags.1: contains a NUL character",
            id="nul-in-a-list",
        ),
        pytest.param(
            {"@timestamp": "2025-11-14T10:30:00Z", "odd\x00key": 1},
            "odd\\u0000key: contains a NUL character",
            id="nul-in-a-key",
        ),
    ],
)
def test_event_row_rejects_documents_naming_the_field(source: dict[str, Any], reason: str):
    with pytest.raises(BadDocument, match=f"^{re.escape(reason)}"):
        event_row({"_id": "x", "_index": INDEX, "_source": source}, timestamp_field="@timestamp")


NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2025, 11, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "last_loaded", "full_day", "expected"),
    [
        pytest.param(
            NOW.date(), NOW - timedelta(hours=1), False, (NOW - timedelta(minutes=70), "incremental"), id="today"
        ),
        pytest.param(NOW.date(), None, False, (MIDNIGHT, "full_day"), id="today-empty"),
        pytest.param(
            NOW.date(), NOW + timedelta(hours=8), False, (NOW - timedelta(minutes=10), "incremental"), id="future-dated"
        ),
        pytest.param(NOW.date(), MIDNIGHT + timedelta(minutes=3), False, (MIDNIGHT, "incremental"), id="clamped"),
        pytest.param(NOW.date(), NOW, True, (MIDNIGHT, "full_day"), id="forced-full-day"),
        pytest.param(
            NOW.date() - timedelta(days=1),
            NOW - timedelta(days=1),
            False,
            (MIDNIGHT - timedelta(days=1), "full_day"),
            id="past-day",
        ),
    ],
)
def test_sync_window(day: date, last_loaded: datetime | None, full_day: bool, expected: tuple[datetime, str]):
    start, end, mode = sync_window(
        day=day, now=NOW, last_loaded=last_loaded, overlap=timedelta(minutes=10), full_day=full_day
    )
    assert (start, mode) == expected
    assert end == datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1)


# --- documents that arrive late or cannot be placed (issue 11 §4) -------------------------------------------------


def check_of(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (evaluation,) = result.get_asset_check_evaluations()
    return evaluation


def test_a_document_indexed_days_late_is_loaded_by_the_look_back_and_an_unchanged_day_is_not_read(
    es: FakeElasticsearch, warehouse: WarehouseResource
):
    day = datetime.now(UTC).date() - timedelta(days=2)
    es.index_many(INDEX, day_documents(day, 6))
    with dg.instance_for_test() as instance:
        first = figures(sync(es, warehouse, day, instance=instance, only_if_changed=True))
        assert (first["mode"], first["inserted"], first["source_documents"]) == ("full_day", 6, 6)
        assert first["warehouse_documents_before"] == 0

        es.requests.clear()
        quiet = figures(sync(es, warehouse, day, instance=instance, only_if_changed=True))
        assert (quiet["mode"], quiet["total_processed"], quiet["inserted"]) == ("unchanged", 0, 0)
        assert es.requests_of("open_pit") == [], "nothing changed: one count, no scan"
        assert len(es.requests_of("search")) == 1

        # Indexed two days after its day ended: today's partition never reads it, the look-back does.
        es.index(INDEX, "late", event_source(day_start(day) + timedelta(hours=23, minutes=59), 99))
        late = figures(sync(es, warehouse, day, instance=instance, only_if_changed=True))
        assert (late["mode"], late["inserted"], late["unchanged"]) == ("full_day", 1, 6)
        assert late["source_documents"] == 7
        assert "late" in rows(warehouse)


def test_a_document_updated_in_place_is_seen_by_its_newer_ingest_time(
    es: FakeElasticsearch, warehouse: WarehouseResource
):
    day = datetime.now(UTC).date() - timedelta(days=1)
    ingested = day_start(day) + timedelta(hours=23)
    documents = [
        (doc_id, {**source, "event": {**source["event"], "ingested": ingested.isoformat()}})
        for doc_id, source in day_documents(day, 3)
    ]
    es.index_many(INDEX, documents)
    with dg.instance_for_test() as instance:
        assert figures(sync(es, warehouse, day, instance=instance, only_if_changed=True))["inserted"] == 3
        assert figures(sync(es, warehouse, day, instance=instance, only_if_changed=True))["mode"] == "unchanged"

        doc_id, source = documents[1]
        event = {**source["event"], "ingested": datetime.now(UTC).isoformat()}
        updated = {**source, "message": "corrected", "event": event}
        es.index(INDEX, doc_id, updated)
        # The count alone cannot see an update in place.
        count_only = figures(sync(es, warehouse, day, instance=instance, only_if_changed=True, ingest_time_field=None))
        assert count_only["mode"] == "unchanged"

        again = figures(sync(es, warehouse, day, instance=instance, only_if_changed=True))
        assert (again["mode"], again["updated"], again["unchanged"]) == ("full_day", 1, 2)
        assert rows(warehouse)[doc_id]["message"] == "corrected"


def test_undated_documents_are_swept_into_the_rejected_table_counted_and_flagged(
    es: FakeElasticsearch, warehouse: WarehouseResource
):
    today = datetime.now(UTC).date()
    es.index_many(INDEX, day_documents(today, 3))
    no_time = event_source(day_start(today), 10)
    del no_time["@timestamp"]
    es.index(INDEX, "no-time", no_time)
    es.index(INDEX, "bad-time", event_source(day_start(today), 11, **{"@timestamp": "last tuesday"}))
    es.index(INDEX, "null-time", event_source(day_start(today), 12, **{"@timestamp": None}))

    result = sync(es, warehouse, today)

    metadata = figures(result)
    assert (metadata["inserted"], metadata["bad_documents"]) == (3, 0)
    assert (metadata["undated_swept"], metadata["undated_documents"]) == (True, 3)
    reasons = {entry["id"]: entry["reason"] for entry in metadata["undated_document_ids"]}
    assert reasons == {
        "no-time": "@timestamp: missing, so the document is in no day",
        "null-time": "@timestamp: missing, so the document is in no day",
        "bad-time": "@timestamp: 'last tuesday' is not an ISO 8601 date; the mapping did not index it, so the "
        "document is in no day",
    }
    rejected = rows(warehouse, rtarf_rejected_events)
    assert {es_id: (row["partition_day"], row["reason"]) for es_id, row in rejected.items()} == {
        es_id: ("undated", reason) for es_id, reason in reasons.items()
    }
    assert rejected["no-time"]["source_document"]["message"] == "event 10"
    sweep = [request.body for request in es.requests_of("search") if "must_not" in json.dumps(request.body)]
    assert sweep[0]["query"] == {"bool": {"must_not": [{"exists": {"field": "@timestamp"}}]}}
    assert sweep[0]["sort"] == [{"_shard_doc": "asc"}]
    assert "pit" in sweep[0]
    check = check_of(result)
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert {name: value.value for name, value in check.metadata.items()} == {
        "rejected_documents": 3,
        "undated_documents": 3,
    }

    # Fixed at the source: it loads into its day and leaves the rejected table; a deleted one leaves it too.
    es.index(INDEX, "bad-time", event_source(day_start(today) + timedelta(minutes=1), 11))
    del es.indices[INDEX]["no-time"]
    second = sync(es, warehouse, today, full_day=True)
    assert (figures(second)["inserted"], figures(second)["undated_documents"]) == (1, 1)
    assert sorted(rows(warehouse, rtarf_rejected_events)) == ["null-time"]
    assert "bad-time" in rows(warehouse)

    del es.indices[INDEX]["null-time"]
    third = sync(es, warehouse, today)
    assert rows(warehouse, rtarf_rejected_events) == {}
    assert check_of(third).passed


def test_a_past_day_does_not_sweep_and_the_sweep_pages(es: FakeElasticsearch, warehouse: WarehouseResource):
    for number in range(9):
        source = event_source(day_start(PAST_DAY), number)
        del source["@timestamp"]
        es.index(INDEX, f"undated-{number}", source)
    past = figures(sync(es, warehouse, PAST_DAY))
    assert (past["undated_swept"], past["undated_documents"]) == (False, 0)
    assert es.requests_of("open_pit") and all("must_not" not in json.dumps(r.body) for r in es.requests)

    today = figures(sync(es, warehouse, datetime.now(UTC).date()))  # page_size 4: three pages of the sweep
    assert today["undated_documents"] == 9
    assert len(rows(warehouse, rtarf_rejected_events)) == 9


def test_a_run_without_the_cluster_url_fails_at_once_in_one_line(warehouse, monkeypatch) -> None:
    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)
    result = dg.materialize(
        [rtarf_events_asset],
        partition_key=PAST_DAY.isoformat(),
        resources={"elasticsearch": ElasticsearchResource(), "warehouse": warehouse},
        raise_on_error=False,
    )

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    error = failure.step_failure_data.error
    assert (
        error.message.strip()
        .splitlines()[-1]
        .endswith("RTARF is not configured: set ELASTICSEARCH_URL (see the README's Environment table)")
    )
    assert failure.step_failure_data.user_failure_data.description.count("\n") == 0
    assert rows(warehouse) == {}
