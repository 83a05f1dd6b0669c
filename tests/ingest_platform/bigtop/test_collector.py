"""The collector against the fake site, through real Chromium on loopback."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ingest_platform.bigtop.challenge import ChallengeError
from ingest_platform.bigtop.collector import CollectorError, SiteUnavailableError, collect, collect_into_warehouse
from ingest_platform.resources.browser import BrowserTimeoutError
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events
from tests.fakes.bigtop_site import FakeBigTopSite, bigtop_site, chromium_for_tests, requires_chromium

pytestmark = requires_chromium

DECEMBER = {"window_start": datetime(2026, 12, 1, 5, tzinfo=UTC), "window_end": datetime(2027, 1, 1, 5, tzinfo=UTC)}


@pytest.fixture
def site() -> Iterator[FakeBigTopSite]:
    with bigtop_site(slow_s=5.0) as running:
        running.add_event(
            "open-mic",
            "Open Mic",
            datetime(2026, 12, 4, 19, 30),
            datetime(2026, 12, 4, 22),
            categories=["Music", "Open Mic"],
        )
        running.add_event(
            "trivia", "Trivia", datetime(2026, 12, 1, 19), datetime(2026, 12, 1, 21), rrule="FREQ=WEEKLY;COUNT=3"
        )
        running.add_event(
            "quirky", "Quirky", datetime(2026, 12, 3, 18), venue_quirks=True, rrule="FREQ=WEEKLY;UNTIL=;COUNT=2"
        )
        running.add_event("broken", "Broken", datetime(2026, 12, 5, 18), raw_ics="<html>Server error</html>")
        running.add_event("next-year", "Next Year", datetime(2027, 3, 1, 19))
        yield running


def test_collects_page_graphql_and_ics_through_one_browser_context(site: FakeBigTopSite) -> None:
    collection = collect(browser=chromium_for_tests(), options=site.options(**DECEMBER))

    assert [(event["external_id"], event["start_utc"]) for event in collection.events] == [
        ("trivia@bigtopbrewing.com/20261202T000000Z", datetime(2026, 12, 2, tzinfo=UTC)),
        ("quirky@bigtopbrewing.com/20261203T230000Z", datetime(2026, 12, 3, 23, tzinfo=UTC)),
        ("open-mic@bigtopbrewing.com", datetime(2026, 12, 5, 0, 30, tzinfo=UTC)),
        ("trivia@bigtopbrewing.com/20261209T000000Z", datetime(2026, 12, 9, tzinfo=UTC)),
        ("quirky@bigtopbrewing.com/20261210T230000Z", datetime(2026, 12, 10, 23, tzinfo=UTC)),
        ("trivia@bigtopbrewing.com/20261216T000000Z", datetime(2026, 12, 16, tzinfo=UTC)),
    ]
    metadata = collection.metadata()
    assert {name: metadata[name] for name in ("records_listed", "ics_fetched", "events_parsed", "occurrences")} == {
        "records_listed": 5,
        "ics_fetched": 5,
        "events_parsed": 4,
        "occurrences": 6,
    }
    assert metadata["skipped"] == {"broken": "not an iCalendar file (no BEGIN:VCALENDAR)"}
    assert metadata["values_sanitised"] == 2
    assert metadata["challenge"] is False

    graphql = site.requests_to("/graphql")[0]
    assert graphql.method == "POST"
    assert graphql.headers["Origin"] == site.base_url
    assert graphql.headers["Referer"] == site.page_url
    assert graphql.headers["Cookie"] == site.session_cookie  # set by the page: the call came from its context
    assert '"restaurantId": 36499' in graphql.body
    assert {request.headers.get("Cookie") for request in site.requests_to("/events/")} == {site.session_cookie}


@pytest.mark.parametrize(
    ("endpoint", "behaviour", "where", "status"),
    [
        pytest.param("page", "challenge", "page", 403, id="page-challenge"),
        pytest.param("page", "blocked", "page", 403, id="page-cloudflare-403"),
        pytest.param("page", "rate_limited", "page", 429, id="page-cloudflare-429"),
        pytest.param("graphql", "challenge", "graphql", 403, id="graphql-challenge"),
        pytest.param("graphql", "rate_limited", "graphql", 429, id="graphql-cloudflare-429"),
        pytest.param("ics", "challenge", "ics", 403, id="ics-challenge"),
        pytest.param("ics", "blocked", "ics", 403, id="ics-cloudflare-403"),
    ],
)
def test_a_challenge_fails_naming_where_and_the_status(
    site: FakeBigTopSite, endpoint: str, behaviour: str, where: str, status: int
) -> None:
    setattr(site, endpoint, behaviour)
    with pytest.raises(ChallengeError) as raised:
        collect(browser=chromium_for_tests(), options=site.options(max_in_flight=1, **DECEMBER))
    assert (raised.value.where, raised.value.status) == (where, status)
    if endpoint == "ics":
        assert len(site.requests_to("/events/")) == 1, "no more files are asked for once Cloudflare refuses one"


@pytest.mark.parametrize(
    ("endpoint", "behaviour", "where", "message"),
    [
        pytest.param("page", "unavailable", "page", "status 503 without a challenge", id="page-plain-503"),
        pytest.param(
            "page", "origin_down", "page", "status 503 through Cloudflare without a challenge", id="page-origin-down"
        ),
        pytest.param("graphql", "unavailable", "graphql", "status 503 without a challenge", id="graphql-plain-503"),
        pytest.param(
            "graphql",
            "origin_down",
            "graphql",
            "status 503 through Cloudflare without a challenge",
            id="graphql-origin-down",
        ),
        pytest.param("ics", "unavailable", "ics", r"no \.ics fetched \(HTTP 503: site unavailable\)", id="ics-503"),
    ],
)
def test_an_outage_is_reported_as_the_site_unavailable_not_a_challenge(
    site: FakeBigTopSite, endpoint: str, behaviour: str, where: str, message: str
) -> None:
    setattr(site, endpoint, behaviour)
    with pytest.raises(SiteUnavailableError, match=message) as raised:
        collect(browser=chromium_for_tests(), options=site.options(max_in_flight=1, **DECEMBER))
    assert (raised.value.where, raised.value.status) == (where, 503)
    assert "Cloudflare challenge" not in str(raised.value)


def test_one_failing_file_is_skipped_as_unavailable_and_the_others_load(site: FakeBigTopSite) -> None:
    site.events["open-mic"].status = 500
    collection = collect(browser=chromium_for_tests(), options=site.options(**DECEMBER))
    assert collection.skipped["open-mic"] == "HTTP 500: site unavailable"
    assert collection.ics_fetched == 4
    assert collection.complete is False


def test_a_slow_file_is_skipped_with_its_reason_and_the_others_load(site: FakeBigTopSite) -> None:
    site.events["open-mic"].slow = True
    collection = collect(browser=chromium_for_tests(request_timeout_s=1.0), options=site.options(**DECEMBER))
    assert collection.skipped["open-mic"] == "timed out after 1 s"
    assert "open-mic@bigtopbrewing.com" not in {event["external_id"] for event in collection.events}
    assert collection.ics_fetched == 4


def test_when_no_file_can_be_fetched_the_collection_fails(site: FakeBigTopSite) -> None:
    for event in site.events.values():
        event.slow = True
    with pytest.raises(CollectorError, match=r"no \.ics fetched \(timed out after 1 s\)") as raised:
        collect(browser=chromium_for_tests(request_timeout_s=1.0), options=site.options(max_in_flight=6, **DECEMBER))
    assert raised.value.where == "ics"


def test_a_graphql_call_beyond_the_request_timeout_fails(site: FakeBigTopSite) -> None:
    site.graphql = "slow"
    with pytest.raises(BrowserTimeoutError, match=r"GraphQL calendarEvents did not finish within 1 s"):
        collect(browser=chromium_for_tests(request_timeout_s=1.0), options=site.options(**DECEMBER))


def test_a_challenge_that_solves_itself_within_the_settle_time_is_no_challenge(site: FakeBigTopSite) -> None:
    site.page = "solvable"
    site.solve_ms = 100
    collection = collect(browser=chromium_for_tests(), options=site.options(settle_s=3.0, **DECEMBER))
    assert len(collection.events) == 6
    assert len(site.requests_to("/restaurant-brewery-2")) == 2  # the challenge, then the page after the reload
    assert "cf_clearance=passed" in site.requests_to("/graphql")[0].headers["Cookie"]


def test_a_graphql_error_is_a_collector_error(site: FakeBigTopSite) -> None:
    with pytest.raises(CollectorError, match="Restaurant not found") as raised:
        collect(browser=chromium_for_tests(), options=site.options(restaurant_id=1, **DECEMBER))
    assert raised.value.where == "graphql"


def test_future_only_and_limit(site: FakeBigTopSite) -> None:
    now = datetime(2026, 12, 9, 12, tzinfo=UTC)
    collection = collect(
        browser=chromium_for_tests(), options=site.options(future_only=True, limit=2, **DECEMBER), now=now
    )
    assert [event["external_id"] for event in collection.events] == [
        "quirky@bigtopbrewing.com/20261210T230000Z",
        "trivia@bigtopbrewing.com/20261216T000000Z",
    ]


def _rows(warehouse: WarehouseResource) -> list[dict]:
    with warehouse.engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(events).order_by(events.c.external_id))]


def test_collect_into_warehouse_stores_the_push_endpoints_row_shape(
    site: FakeBigTopSite, warehouse: WarehouseResource
) -> None:
    # Re-runs and changed titles are covered through the asset (tests/ingest_platform/assets/), which calls this.
    result = collect_into_warehouse(browser=chromium_for_tests(), warehouse=warehouse, options=site.options(**DECEMBER))
    assert result.upsert.as_metadata() == {"inserted": 6, "updated": 0, "unchanged": 0}
    rows = _rows(warehouse)
    open_mic = next(row for row in rows if row["external_id"] == "open-mic@bigtopbrewing.com")
    assert {name: value for name, value in open_mic.items() if name not in ("first_seen_at", "updated_at")} == {
        "source_id": 5,
        "external_id": "open-mic@bigtopbrewing.com",
        "title": "Open Mic",
        "start_utc": datetime(2026, 12, 5, 0, 30, tzinfo=UTC),
        "end_utc": datetime(2026, 12, 5, 3, tzinfo=UTC),
        "description": None,
        "location": "Big Top Brewing, 6111 Porter Way, Sarasota, FL",
        "external_url": f"{site.base_url}/events/open-mic",
        "categories": ["Music", "Open Mic"],
        "cancelled_at": None,
    }
    assert {row["source_id"] for row in rows} == {5}
