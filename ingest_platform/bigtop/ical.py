"""Big Top's iCalendar files → events in the push endpoint's shape.

The venue's generator writes values no parser accepts (`DTEND:-47120101T235959`, `RRULE:FREQ=WEEKLY;UNTIL=;`).
`icalendar` keeps those as broken properties; they are repaired or dropped here and the event still loads. Only a
file that is not iCalendar at all, or an event without a usable start, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

# The iCalendar libraries are imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import icalendar

VENUE_TIMEZONE = ZoneInfo("America/New_York")

# The push endpoint's limits (webhook_app/bigtop.py PushedEvent). A collected event must fit them, or production
# answers 422 and refuses its whole batch: free text is cut, a URL that cannot be sent is dropped, and an event whose
# id is too long is skipped (a cut id would no longer be the venue's id).
MAX_EXTERNAL_ID = 512
MAX_TITLE = 1000
MAX_DESCRIPTION = 50_000
MAX_LOCATION = 1000
MAX_URL = 2048
MAX_CATEGORIES = 100
MAX_CATEGORY = 200


class IcsError(ValueError):
    """The file cannot be understood as an iCalendar file."""


@dataclass
class ParsedCalendar:
    events: list[dict[str, Any]]
    vevents: int
    occurrences: int
    fixes: list[str] = field(default_factory=list)
    skipped_vevents: list[str] = field(default_factory=list)
    # occurrences left out because production could not take them (id too long), with the reason
    skipped_events: list[str] = field(default_factory=list)


def parse_ics(
    text: str,
    *,
    window_start: datetime,
    window_end: datetime,
    fallback_title: str | None = None,
    fallback_url: str | None = None,
    venue_timezone: ZoneInfo = VENUE_TIMEZONE,
) -> ParsedCalendar:
    """Events (one per occurrence) that start in [window_start, window_end), in the push endpoint's shape.

    Times without a zone are venue time; all-day dates start at venue midnight. A recurring series gives one event
    per occurrence, identified by UID + the occurrence's original start (its RECURRENCE-ID), so an occurrence the
    venue moves keeps its identity.
    """
    import icalendar
    import recurring_ical_events

    if "BEGIN:VCALENDAR" not in text.upper():
        raise IcsError("not an iCalendar file (no BEGIN:VCALENDAR)")
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except ValueError as error:
        raise IcsError(f"unparseable iCalendar: {_first_line(error)}") from error

    fixes: list[str] = []
    skipped: list[str] = []
    vevents = calendar.walk("VEVENT")
    for vevent in vevents:
        problem = _sanitise(vevent, fixes)
        if problem is not None:
            skipped.append(problem)
            _remove(calendar, vevent)
    recurring_uids = {
        str(vevent.get("UID"))
        for vevent in calendar.walk("VEVENT")
        if any(name in vevent for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }

    try:
        occurrences = list(recurring_ical_events.of(calendar).between(window_start, window_end))
    except Exception as error:  # the library raises many types for rules it cannot expand
        raise IcsError(f"cannot expand recurrences: {_first_line(error)}") from error

    events = []
    skipped_events: list[str] = []
    for occurrence in occurrences:
        event = _normalise(
            occurrence,
            recurring=str(occurrence.get("UID")) in recurring_uids,
            fallback_title=fallback_title,
            fallback_url=fallback_url,
            venue_timezone=venue_timezone,
        )
        if not window_start <= event["start_utc"] < window_end:
            continue
        if len(event["external_id"]) > MAX_EXTERNAL_ID:
            skipped_events.append(
                f"{event['external_id'][:80]}…: external_id of {len(event['external_id'])} characters "
                f"(the endpoint takes at most {MAX_EXTERNAL_ID})"
            )
            continue
        events.append(event)
    events.sort(key=lambda event: (event["start_utc"], event["external_id"]))
    return ParsedCalendar(
        events=events,
        vevents=len(vevents),
        occurrences=len(occurrences),
        fixes=fixes,
        skipped_vevents=skipped,
        skipped_events=skipped_events,
    )


def _sanitise(vevent: icalendar.Event, fixes: list[str]) -> str | None:
    """Repair or drop the broken properties of one VEVENT; the reason it is unusable, or None."""
    import icalendar

    uid = str(vevent.get("UID") or "").strip()
    if not uid:
        return "VEVENT without UID"
    for name in list(vevent.keys()):
        values = vevent[name] if isinstance(vevent[name], list) else [vevent[name]]
        broken = [value for value in values if isinstance(value, icalendar.vBroken)]
        if not broken:
            continue
        if name in ("DTSTART", "RECURRENCE-ID"):
            return f"{uid}: invalid {name} {str(broken[0])!r}"
        kept = [value for value in values if not isinstance(value, icalendar.vBroken)]
        for value in broken:
            repaired = _repair_rrule(str(value)) if name == "RRULE" else None
            if repaired is not None:
                kept.append(repaired)
            fixes.append(f"{uid}: {'repaired' if repaired is not None else 'dropped'} invalid {name} {str(value)!r}")
        vevent.pop(name)
        for value in kept:
            vevent.add(name, value)
    return None


def _repair_rrule(text: str) -> icalendar.vRecur | None:
    import icalendar

    # `UNTIL=;` and the like: parts with no value say nothing, so the rule without them is the rule meant.
    parts = [part for part in text.split(";") if part and not part.endswith("=")]
    try:
        return icalendar.vRecur.from_ical(";".join(parts))
    except ValueError:
        return None


def _remove(calendar: icalendar.Calendar, vevent: icalendar.Event) -> None:
    # By identity: components compare equal by content, and a file may repeat an event verbatim.
    for component in calendar.walk():
        for index, subcomponent in enumerate(component.subcomponents):
            if subcomponent is vevent:
                del component.subcomponents[index]
                return


def _normalise(
    occurrence: icalendar.Event,
    *,
    recurring: bool,
    fallback_title: str | None,
    fallback_url: str | None,
    venue_timezone: ZoneInfo,
) -> dict[str, Any]:
    uid = str(occurrence.get("UID")).strip()
    start = to_utc(occurrence["DTSTART"].dt, venue_timezone)
    end = to_utc(occurrence["DTEND"].dt, venue_timezone) if "DTEND" in occurrence else None
    if end is not None and end <= start:
        # recurring-ical-events gives an event without an end an end equal to its start; that is no end.
        end = None
    external_id = uid
    if recurring:
        original = occurrence.get("RECURRENCE-ID")
        original_start = to_utc(original.dt, venue_timezone) if original is not None else start
        external_id = f"{uid}/{original_start:%Y%m%dT%H%M%SZ}"
    title = _text(occurrence.get("SUMMARY")) or (fallback_title or "").strip() or uid
    return {
        "external_id": external_id,
        "title": _cut(title, MAX_TITLE),
        "start_utc": start,
        "end_utc": end,
        "description": _cut(_text(occurrence.get("DESCRIPTION")), MAX_DESCRIPTION),
        "location": _cut(_text(occurrence.get("LOCATION")), MAX_LOCATION),
        "external_url": _http_url(occurrence.get("URL")) or _http_url(fallback_url),
        "categories": _categories(occurrence.get("CATEGORIES")),
    }


def to_utc(value: date | datetime, venue_timezone: ZoneInfo = VENUE_TIMEZONE) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=venue_timezone)
    return value.astimezone(UTC)


def venue_day_bounds(
    first_day: date, last_day: date, venue_timezone: ZoneInfo = VENUE_TIMEZONE
) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering the venue days first_day..last_day."""
    start = datetime.combine(first_day, time.min, tzinfo=venue_timezone)
    end = datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=venue_timezone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _text(value: Any) -> str | None:
    import icalendar

    if value is None or isinstance(value, icalendar.vBroken):
        return None
    text = str(value).strip()
    return text or None


def _cut(text: str | None, limit: int) -> str | None:
    # Cut text keeps no trailing blank: the endpoint strips it and an all-blank title would be empty.
    return text[:limit].rstrip() if text is not None and len(text) > limit else text


def _http_url(value: Any) -> str | None:
    # A cut URL points elsewhere, so a URL too long to send is dropped rather than cut.
    text = _text(value)
    if not text or len(text) > MAX_URL or not text.lower().startswith(("http://", "https://")):
        return None
    return text


def _categories(value: Any) -> list[str] | None:
    if value is None:
        return None
    properties: Iterable[Any] = value if isinstance(value, list) else [value]
    names: list[str] = []
    for prop in properties:
        for category in getattr(prop, "cats", []):
            name = _cut(str(category).strip(), MAX_CATEGORY)
            if name and name not in names:
                names.append(name)
    return names[:MAX_CATEGORIES] or None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
