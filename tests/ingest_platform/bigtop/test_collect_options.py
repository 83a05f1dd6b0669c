from datetime import UTC, datetime

from ingest_platform.bigtop.collector import CollectOptions


def test_the_default_window_starts_at_the_venues_midnight_and_spans_the_horizon() -> None:
    # 03:00 UTC on Dec 1 is 22:00 on Nov 30 in New York: the venue's today is Nov 30.
    start, end = CollectOptions(horizon_days=7).window(datetime(2026, 12, 1, 3, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 11, 30, 5, tzinfo=UTC), datetime(2026, 12, 7, 5, tzinfo=UTC))


def test_the_default_window_ends_at_the_venues_midnight_across_a_clock_change() -> None:
    # Summer time starts on 2027-03-14: the window ends at 00:00 EDT, which is 04:00 UTC.
    start, end = CollectOptions(horizon_days=7).window(datetime(2027, 3, 10, 12, tzinfo=UTC))
    assert (start, end) == (datetime(2027, 3, 10, 5, tzinfo=UTC), datetime(2027, 3, 17, 4, tzinfo=UTC))


def test_urls_hang_off_the_base_url_and_slugs_are_escaped() -> None:
    options = CollectOptions(base_url="https://www.bigtopbrewing.com/")
    assert options.page_url == "https://www.bigtopbrewing.com/restaurant-brewery-2"
    assert options.graphql_url == "https://www.bigtopbrewing.com/graphql"
    assert options.ics_url("trivia night/2") == "https://www.bigtopbrewing.com/events/trivia%20night%2F2.ics"
