"""The collected-events asset through bigtop_collect_job: real Chromium, the fake site, both warehouse backends."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.assets.bigtop import bigtop_collect_job, bigtop_collected_events, bigtop_pushed_events
from ingest_platform.resources.browser import BrowserResource
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.schedules.bigtop import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from ingest_platform.warehouse.tables import events
from tests.fakes.bigtop_site import FakeBigTopSite, bigtop_site, chromium_for_tests, requires_chromium
from tests.fakes.processes import chromium_processes, wait_for_no_chromium
from tests.landing_files import bigtop_batch, bigtop_event, land

STEP = "bigtop__raw__collected_events"


@pytest.fixture
def site() -> Iterator[FakeBigTopSite]:
    with bigtop_site(slow_s=8.0) as running:
        running.add_event("open-mic", "Open Mic", datetime(2026, 12, 4, 19, 30), datetime(2026, 12, 4, 22))
        running.add_event(
            "trivia", "Trivia", datetime(2026, 12, 1, 19), datetime(2026, 12, 1, 21), rrule="FREQ=WEEKLY;COUNT=3"
        )
        running.add_event(
            "quirky", "Quirky", datetime(2026, 12, 3, 18), venue_quirks=True, rrule="FREQ=WEEKLY;UNTIL=;COUNT=2"
        )
        running.add_event("broken", "Broken", datetime(2026, 12, 5, 18), raw_ics="BEGIN:VCALENDAR\r\nBEGIN:VEVENT")
        # 23:30 on Dec 10 in New York is already Dec 11 in UTC: the partition is the venue's day.
        running.add_event("late-show", "Late Show", datetime(2026, 12, 10, 23, 30))
        running.add_event("after-range", "After", datetime(2026, 12, 11, 0, 30))
        yield running


def run_collection(
    site: FakeBigTopSite,
    warehouse: WarehouseResource,
    browser: BrowserResource | None = None,
    *,
    first: str = "2026-12-01",
    last: str = "2026-12-10",
) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=[bigtop_collected_events],
        jobs=[bigtop_collect_job],
        resources={"browser": browser or chromium_for_tests(), "warehouse": warehouse},
    )
    config = {"base_url": site.base_url, "delay_s": 0.0, "settle_s": 0.0}
    return defs.resolve_job_def(bigtop_collect_job.name).execute_in_process(
        run_config={"ops": {STEP: {"config": config}}},
        tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """The run's metadata, which Dagster records on each partition of the range."""
    materializations = result.asset_materializations_for_node(STEP)
    assert len({materialization.partition for materialization in materializations}) == len(materializations)
    return {name: value.value for name, value in materializations[0].metadata.items()}


def failure_of(result: dg.ExecuteInProcessResult) -> tuple[str, dict[str, Any]]:
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    user_failure = failure.step_failure_data.user_failure_data
    return user_failure.description, {name: value.value for name, value in user_failure.metadata.items()}


def stored_rows(warehouse: WarehouseResource) -> list[dict[str, Any]]:
    with warehouse.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(events).order_by(events.c.external_id))]


@requires_chromium
def test_a_range_is_one_run_idempotent_and_a_changed_title_updates(
    site: FakeBigTopSite, warehouse: WarehouseResource
) -> None:
    first = run_collection(site, warehouse)
    assert first.success
    assert len(site.requests_to("/restaurant-brewery-2")) == 1, "one browser session serves the whole range"
    assert len(first.asset_materializations_for_node(STEP)) == 10
    metadata = materialization_metadata(first)
    assert {name: metadata[name] for name in ("inserted", "updated", "unchanged", "occurrences", "events")} == {
        "inserted": 6,
        "updated": 0,
        "unchanged": 0,
        "occurrences": 6,
        "events": 6,
    }
    assert (metadata["records_listed"], metadata["ics_fetched"], metadata["files_skipped"]) == (6, 6, 1)
    assert list(metadata["skipped"]) == ["broken"]
    assert metadata["challenge"] is False
    assert metadata["partitions"] == "2026-12-01..2026-12-10"
    rows = stored_rows(warehouse)
    assert [row["external_id"] for row in rows] == [
        "late-show@bigtopbrewing.com",
        "open-mic@bigtopbrewing.com",
        "quirky@bigtopbrewing.com/20261203T230000Z",
        "quirky@bigtopbrewing.com/20261210T230000Z",
        "trivia@bigtopbrewing.com/20261202T000000Z",
        "trivia@bigtopbrewing.com/20261209T000000Z",
    ]

    second = run_collection(site, warehouse)
    assert materialization_metadata(second)["unchanged"] == 6
    assert stored_rows(warehouse) == rows

    site.events["late-show"].title = "Late Show: Comedy"
    third = run_collection(site, warehouse)
    assert {name: materialization_metadata(third)[name] for name in ("inserted", "updated", "unchanged")} == {
        "inserted": 0,
        "updated": 1,
        "unchanged": 5,
    }
    late_show = next(row for row in stored_rows(warehouse) if row["external_id"] == "late-show@bigtopbrewing.com")
    assert (late_show["title"], late_show["start_utc"]) == (
        "Late Show: Comedy",
        datetime(2026, 12, 11, 4, 30, tzinfo=UTC),
    )


@requires_chromium
def test_a_challenge_fails_the_run_and_leaves_the_rows_alone(
    site: FakeBigTopSite, warehouse: WarehouseResource
) -> None:
    assert run_collection(site, warehouse).success
    before = stored_rows(warehouse)
    site.events["open-mic"].title = "Changed while challenged"
    site.graphql = "challenge"

    result = run_collection(site, warehouse)

    assert not result.success
    description, metadata = failure_of(result)
    assert "Cloudflare challenge at graphql (HTTP 403)" in description
    assert metadata == {"challenge": True, "where": "graphql", "status": 403, "url": f"{site.base_url}/graphql"}
    assert stored_rows(warehouse) == before


@requires_chromium
def test_a_timeout_fails_the_run_and_leaves_no_chromium(
    site: FakeBigTopSite, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    marker_value = uuid.uuid4().hex
    monkeypatch.setenv("INGEST_TEST_BROWSER", marker_value)
    marker = f"INGEST_TEST_BROWSER={marker_value}"
    seen: list[dict[int, str]] = []
    site.on_page_request = lambda: seen.append(chromium_processes(marker))
    site.page = "slow"
    warehouse = WarehouseResource(database_url=f"sqlite:///{tmp_path / 'w.sqlite'}")

    result = run_collection(site, warehouse, chromium_for_tests(navigation_timeout_s=1.0))

    assert not result.success
    description, metadata = failure_of(result)
    assert "did not finish within 1 s" in description
    assert metadata == {"challenge": False}
    assert seen[0], "Chromium was running while the page hung"
    assert wait_for_no_chromium(marker) == {}
    assert stored_rows(warehouse) == []


@requires_chromium
def test_materialized_on_its_own_as_from_the_asset_page_the_asset_collects(site: FakeBigTopSite, tmp_path: Any) -> None:
    """No job and no run tags: the `browser` pool, not a tag the asset checks, keeps it to one browser."""
    warehouse = WarehouseResource(database_url=f"sqlite:///{tmp_path / 'w.sqlite'}")
    result = dg.materialize(
        [bigtop_collected_events],
        partition_key="2026-12-04",
        resources={"browser": chromium_for_tests(), "warehouse": warehouse},
        run_config={"ops": {STEP: {"config": {"base_url": site.base_url, "delay_s": 0.0, "settle_s": 0.0}}}},
        raise_on_error=False,
    )
    assert result.success
    assert [row["external_id"] for row in stored_rows(warehouse)] == ["open-mic@bigtopbrewing.com"]


# --- events the venue stops listing (issue 11 §4) -----------------------------------------------------------------

OPEN_MIC = "open-mic@bigtopbrewing.com"
# A source-5 row outside the collected window: no collection of Dec 1-10 may cancel it.
OUTSIDE = {
    "source_id": 5,
    "external_id": "new-year@bigtopbrewing.com",
    "title": "New Year",
    "start_utc": datetime(2026, 12, 31, 23, tzinfo=UTC),
}


@pytest.fixture
def clean_site() -> Iterator[FakeBigTopSite]:
    """A site whose every file parses, so a collection of it is complete."""
    with bigtop_site(slow_s=8.0) as running:
        running.add_event("open-mic", "Open Mic", datetime(2026, 12, 4, 19, 30), datetime(2026, 12, 4, 22))
        running.add_event(
            "trivia", "Trivia", datetime(2026, 12, 1, 19), datetime(2026, 12, 1, 21), rrule="FREQ=WEEKLY;COUNT=3"
        )
        running.add_event("late-show", "Late Show", datetime(2026, 12, 10, 23, 30))
        yield running


def cancelled(warehouse: WarehouseResource) -> dict[str, datetime | None]:
    return {row["external_id"]: row["cancelled_at"] for row in stored_rows(warehouse)}


@requires_chromium
def test_an_event_the_venue_no_longer_lists_is_cancelled_and_restored_when_listed_again(
    clean_site: FakeBigTopSite, warehouse: WarehouseResource
) -> None:
    with warehouse.begin() as connection:
        connection.execute(sa.insert(events).values(**OUTSIDE))
    first = run_collection(clean_site, warehouse)
    assert first.success
    assert materialization_metadata(first)["complete"] is True
    assert materialization_metadata(first)["cancelled"] == 0
    assert set(cancelled(warehouse).values()) == {None}

    removed = clean_site.events.pop("open-mic")
    # An occurrence taken out of a series is no longer listed either.
    clean_site.events["trivia"].exdates = [datetime(2026, 12, 8, 19)]
    before = datetime.now(UTC)
    second = run_collection(clean_site, warehouse)
    after = datetime.now(UTC)
    assert second.success
    metadata = materialization_metadata(second)
    assert (metadata["cancelled"], metadata["cancelled_ids"]) == (
        2,
        [OPEN_MIC, "trivia@bigtopbrewing.com/20261209T000000Z"],
    )
    assert metadata["cancellation_checked"] is True
    state = cancelled(warehouse)
    assert before <= state[OPEN_MIC] <= after, "the time the removal was noticed"
    assert state["trivia@bigtopbrewing.com/20261209T000000Z"] == state[OPEN_MIC]
    assert state[OUTSIDE["external_id"]] is None, "outside the collected window nothing is known"
    assert [name for name, at in state.items() if at is None] == [
        "late-show@bigtopbrewing.com",
        OUTSIDE["external_id"],
        "trivia@bigtopbrewing.com/20261202T000000Z",
    ]
    assert len(state) == 5, "a soft delete: every row is still there"

    third = run_collection(clean_site, warehouse)
    assert materialization_metadata(third)["cancelled"] == 0
    assert cancelled(warehouse)[OPEN_MIC] == state[OPEN_MIC], "noticed once, not re-stamped on every run"

    clean_site.events["open-mic"] = removed
    fourth = run_collection(clean_site, warehouse)
    metadata = materialization_metadata(fourth)
    assert (metadata["restored"], metadata["restored_ids"], metadata["cancelled"]) == (1, [OPEN_MIC], 0)
    assert cancelled(warehouse)[OPEN_MIC] is None


def _file_fails(site: FakeBigTopSite) -> None:
    site.events["trivia"].status = 500


def _file_is_no_calendar(site: FakeBigTopSite) -> None:
    site.events["trivia"].raw_ics = "<html>Server error</html>"


def _listing_truncated(site: FakeBigTopSite) -> None:
    site.count_extra = 1


def _graphql_challenged(site: FakeBigTopSite) -> None:
    site.graphql = "challenge"


def _page_unavailable(site: FakeBigTopSite) -> None:
    site.page = "unavailable"


def _every_file_unavailable(site: FakeBigTopSite) -> None:
    site.ics = "unavailable"


@pytest.mark.parametrize(
    ("fault", "run_succeeds"),
    [
        pytest.param(_file_fails, True, id="one-file-500"),
        pytest.param(_file_is_no_calendar, True, id="one-file-not-icalendar"),
        pytest.param(_listing_truncated, True, id="calendar-count-above-its-records"),
        pytest.param(_graphql_challenged, False, id="graphql-challenge"),
        pytest.param(_page_unavailable, False, id="page-outage"),
        pytest.param(_every_file_unavailable, False, id="every-file-outage"),
    ],
)
@requires_chromium
def test_a_partial_or_failed_collection_cancels_nothing(
    clean_site: FakeBigTopSite, warehouse: WarehouseResource, fault: Any, run_succeeds: bool
) -> None:
    assert run_collection(clean_site, warehouse).success
    clean_site.events.pop("open-mic")
    fault(clean_site)

    result = run_collection(clean_site, warehouse)

    assert result.success is run_succeeds
    if run_succeeds:
        metadata = materialization_metadata(result)
        assert (metadata["complete"], metadata["cancellation_checked"], metadata["cancelled"]) == (False, False, 0)
    assert set(cancelled(warehouse).values()) == {None}


@requires_chromium
def test_an_outage_fails_the_run_as_the_site_unavailable_not_a_challenge(
    clean_site: FakeBigTopSite, warehouse: WarehouseResource
) -> None:
    clean_site.graphql = "unavailable"
    result = run_collection(clean_site, warehouse)
    assert not result.success
    description, metadata = failure_of(result)
    assert "Cloudflare" not in description
    assert "status 503 without a challenge: the site is unavailable" in description
    assert metadata == {
        "challenge": False,
        "site_unavailable": True,
        "where": "graphql",
        "status": 503,
        "url": f"{clean_site.base_url}/graphql",
    }


def test_a_pushed_batch_neither_cancels_nor_restores(warehouse: WarehouseResource, tmp_path: Any) -> None:
    # A landed batch may be an old one (replayed, or reloaded with `reload: true`): it cannot prove the event is
    # listed now, so only a collection restores a cancelled event.
    noticed = datetime(2026, 3, 2, 8, tzinfo=UTC)
    with warehouse.begin() as connection:
        connection.execute(
            sa.insert(events).values(
                source_id=5,
                external_id="gone",
                title="Trivia night",
                start_utc=datetime(2026, 3, 5, 23, tzinfo=UTC),
                cancelled_at=noticed,
            )
        )
    landing_dir = tmp_path / "landing"
    at_ns = int(datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp() * 1e9)
    name = land(
        landing_dir,
        "bigtop_events",
        bigtop_batch(bigtop_event("gone", title="Trivia night (moved)"), bigtop_event("new")),
        at_ns=at_ns,
    )
    result = dg.materialize(
        [bigtop_pushed_events],
        partition_key="2026-03-01",
        resources={"warehouse": warehouse, "landing": LandingZoneResource(landing_dir=str(landing_dir))},
        run_config={"ops": {"bigtop__raw__pushed_events": {"config": {"files": [name]}}}},
    )
    assert result.success
    rows = {row["external_id"]: row for row in stored_rows(warehouse)}
    assert (rows["gone"]["title"], rows["gone"]["cancelled_at"]) == ("Trivia night (moved)", noticed)
    assert rows["new"]["cancelled_at"] is None
