import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from pydantic import TypeAdapter

from ingest_platform.bigtop.ical import IcsError, parse_ics
from ingest_platform.bigtop.push import event_payload
from tests.fakes.bigtop_site import SiteEvent
from webhook_app.bigtop import PushedEvent, ends_before_start

PUSHED_EVENT = TypeAdapter(PushedEvent)

BASE = "https://www.bigtopbrewing.com"
DECEMBER = {"window_start": datetime(2026, 12, 1, 5, tzinfo=UTC), "window_end": datetime(2027, 1, 1, 5, tzinfo=UTC)}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_a_single_event_is_converted_from_venue_time_to_utc() -> None:
    event = SiteEvent(
        slug="open-mic",
        title="Open Mic; Night, Live",
        start=datetime(2026, 12, 4, 19, 30),
        end=datetime(2026, 12, 4, 22),
        description="Sign up\nat the bar",
        categories=["Music", "Live"],
    )
    parsed = parse_ics(event.ics(BASE), **DECEMBER)
    assert parsed.events == [
        {
            "external_id": "open-mic@bigtopbrewing.com",
            "title": "Open Mic; Night, Live",
            "start_utc": utc(2026, 12, 5, 0, 30),  # 19:30 EST is 00:30 UTC the next day
            "end_utc": utc(2026, 12, 5, 3),
            "description": "Sign up\nat the bar",
            "location": "Big Top Brewing, 6111 Porter Way, Sarasota, FL",
            "external_url": f"{BASE}/events/open-mic",
            "categories": ["Music", "Live"],
        }
    ]


def test_summer_time_is_four_hours_behind_utc() -> None:
    event = SiteEvent(slug="summer", title="Summer", start=datetime(2026, 7, 4, 18))
    parsed = parse_ics(event.ics(BASE), window_start=utc(2026, 7, 1), window_end=utc(2026, 8, 1))
    assert parsed.events[0]["start_utc"] == utc(2026, 7, 4, 22)


def test_a_series_expands_with_exdate_and_a_moved_occurrence() -> None:
    event = SiteEvent(
        slug="trivia",
        title="Trivia",
        start=datetime(2026, 12, 1, 19),
        end=datetime(2026, 12, 1, 21),
        rrule="FREQ=WEEKLY;COUNT=5",
        exdates=[datetime(2026, 12, 8, 19)],
        overrides={
            datetime(2026, 12, 15, 19): (datetime(2026, 12, 16, 20), datetime(2026, 12, 16, 22), "Trivia (Wed)")
        },
    )
    parsed = parse_ics(event.ics(BASE), **DECEMBER)
    assert [(e["external_id"], e["title"], e["start_utc"]) for e in parsed.events] == [
        ("trivia@bigtopbrewing.com/20261202T000000Z", "Trivia", utc(2026, 12, 2)),
        # moved to Wednesday 20:00 but still identified by its original Tuesday start
        ("trivia@bigtopbrewing.com/20261216T000000Z", "Trivia (Wed)", utc(2026, 12, 17, 1)),
        ("trivia@bigtopbrewing.com/20261223T000000Z", "Trivia", utc(2026, 12, 23)),
        ("trivia@bigtopbrewing.com/20261230T000000Z", "Trivia", utc(2026, 12, 30)),
    ]
    assert parsed.occurrences == 4


def test_expansion_is_bounded_by_the_window() -> None:
    event = SiteEvent(slug="weekly", title="Weekly", start=datetime(2026, 1, 6, 19), rrule="FREQ=WEEKLY")
    parsed = parse_ics(event.ics(BASE), window_start=utc(2026, 12, 8, 5), window_end=utc(2026, 12, 15, 5))
    assert [e["start_utc"] for e in parsed.events] == [utc(2026, 12, 9)]


def test_the_venue_generators_invalid_values_are_sanitised_and_the_event_loads() -> None:
    event = SiteEvent(
        slug="quirky",
        title="Quirky",
        start=datetime(2026, 12, 3, 18),
        venue_quirks=True,
        rrule="FREQ=WEEKLY;UNTIL=;COUNT=2",
    )
    text = event.ics(BASE)
    assert "DTEND:-47120101T235959" in text
    assert "UNTIL=;" in text
    parsed = parse_ics(text, **DECEMBER)
    assert [(e["start_utc"], e["end_utc"]) for e in parsed.events] == [
        (utc(2026, 12, 3, 23), None),
        (utc(2026, 12, 10, 23), None),
    ]
    assert parsed.fixes == [
        "quirky@bigtopbrewing.com: dropped invalid DTEND '-47120101T235959'",
        "quirky@bigtopbrewing.com: repaired invalid RRULE 'FREQ=WEEKLY;UNTIL=;COUNT=2'",
    ]


def test_an_event_without_a_usable_start_is_skipped_and_its_neighbours_load() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        "BEGIN:VEVENT\r\nUID:bad@x\r\nDTSTART:not-a-date\r\nSUMMARY:Bad\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:good@x\r\nDTSTART;TZID=America/New_York:20261205T200000\r\nSUMMARY:Good\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    parsed = parse_ics(text, **DECEMBER)
    assert [e["external_id"] for e in parsed.events] == ["good@x"]
    assert parsed.skipped_vevents == ["bad@x: invalid DTSTART 'not-a-date'"]


def test_floating_and_all_day_times_are_venue_time() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
        "BEGIN:VEVENT\r\nUID:float@x\r\nDTSTART:20261205T200000\r\nSUMMARY:Floating\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:day@x\r\nDTSTART;VALUE=DATE:20261224\r\nSUMMARY:Holiday hours\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    parsed = parse_ics(text, fallback_url=f"{BASE}/events/x", **DECEMBER)
    assert [(e["external_id"], e["start_utc"]) for e in parsed.events] == [
        ("float@x", utc(2026, 12, 6, 1)),
        ("day@x", utc(2026, 12, 24, 5)),
    ]
    assert {e["external_url"] for e in parsed.events} == {f"{BASE}/events/x"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("<!DOCTYPE html><html><body>Oops</body></html>", "not an iCalendar file", id="html"),
        pytest.param("", "not an iCalendar file", id="empty"),
        pytest.param("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:cut off", "unparseable iCalendar", id="truncated"),
    ],
)
def test_a_file_that_cannot_be_understood_raises_a_clear_error(text: str, problem: str) -> None:
    with pytest.raises(IcsError, match=problem):
        parse_ics(text, **DECEMBER)


def one_event(*properties: str, uid: str = "odd@bigtopbrewing.com") -> str:
    if not any(line.startswith("SUMMARY:") for line in properties):
        properties = ("SUMMARY:Odd", *properties)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", f"UID:{uid}"]
    lines += ["DTSTART;TZID=America/New_York:20261205T200000", *properties, "END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def as_pushed(event: dict) -> SimpleNamespace:
    """The event as production's endpoint reads it from the JSON the bridge sends; raises what would be a 422."""
    pushed = PUSHED_EVENT.validate_json(json.dumps(event_payload(event)))
    assert ends_before_start([pushed]) == []
    return SimpleNamespace(**pushed)


LONG_CATEGORIES = ",".join(f"{number:03d}" + "x" * 247 for number in range(150))


@pytest.mark.parametrize(
    ("prop", "field", "expected"),
    [
        pytest.param("SUMMARY:" + "T" * 1500, "title", "T" * 1000, id="title-cut-to-1000"),
        pytest.param("SUMMARY:" + "T" * 999 + " " + "T" * 50, "title", "T" * 999, id="title-cut-without-blank"),
        pytest.param("DESCRIPTION:" + "d" * 60_000, "description", "d" * 50_000, id="description-cut-to-50000"),
        pytest.param("LOCATION:" + "L" * 1200, "location", "L" * 1000, id="location-cut-to-1000"),
        pytest.param("URL:ftp://bigtopbrewing.com/x", "external_url", f"{BASE}/events/odd", id="ftp-url-dropped"),
        pytest.param("URL:javascript:alert(1)", "external_url", f"{BASE}/events/odd", id="script-url-dropped"),
        pytest.param(
            "URL:https://www.bigtopbrewing.com/?" + "q" * 2100, "external_url", f"{BASE}/events/odd", id="long-url"
        ),
        pytest.param(
            "CATEGORIES:" + LONG_CATEGORIES,
            "categories",
            [f"{number:03d}" + "x" * 197 for number in range(100)],
            id="categories-100-of-200",
        ),
    ],
)
def test_collected_events_fit_the_push_endpoints_limits(prop: str, field: str, expected: object) -> None:
    parsed = parse_ics(one_event(prop), fallback_url=f"{BASE}/events/odd", **DECEMBER)
    (event,) = parsed.events
    assert event[field] == expected
    assert getattr(as_pushed(event), field) == expected


def test_a_non_http_url_without_a_usable_fallback_is_left_out() -> None:
    (event,) = parse_ics(one_event("URL:mailto:events@bigtopbrewing.com"), **DECEMBER).events
    assert event["external_url"] is None
    assert getattr(as_pushed(event), "external_url", None) is None


def test_an_event_whose_id_is_too_long_is_skipped_and_named_and_its_neighbours_load() -> None:
    long_uid = "u" * 513
    text = one_event("SUMMARY:Too long", uid=long_uid).replace(
        "END:VCALENDAR",
        "BEGIN:VEVENT\r\nUID:fine@x\r\nDTSTART;TZID=America/New_York:20261206T200000\r\nSUMMARY:Fine\r\n"
        "END:VEVENT\r\nEND:VCALENDAR",
    )
    parsed = parse_ics(text, **DECEMBER)
    assert [event["external_id"] for event in parsed.events] == ["fine@x"]
    assert parsed.skipped_events == ["u" * 80 + "…: external_id of 513 characters (the endpoint takes at most 512)"]
    assert parsed.skipped_vevents == []
    as_pushed(parsed.events[0])


def test_an_id_of_exactly_512_characters_is_kept() -> None:
    (event,) = parse_ics(one_event("SUMMARY:Edge", uid="u" * 512), **DECEMBER).events
    assert as_pushed(event).external_id == "u" * 512
