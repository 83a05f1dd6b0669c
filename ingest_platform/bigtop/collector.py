"""The Big Top collector: the venue page, its GraphQL calendar, one .ics per event, all through one browser context.

Cloudflare lets a real browser through where a plain HTTP client is challenged (seed 001), so every request —
the page, the GraphQL call and the .ics files — leaves from the page itself and carries its cookies and
fingerprint. Parsing happens after the browser is closed.
"""

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

from ingest_platform.bigtop.challenge import STOP_STATUSES, ChallengeError, Where, classify
from ingest_platform.bigtop.ical import VENUE_TIMEZONE, IcsError, parse_ics, venue_day_bounds
from ingest_platform.resources.browser import (
    BrowserResource,
    BrowserSession,
    BrowserTimeoutError,
    FetchRequest,
    FetchResult,
)
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.result import UpsertResult

if TYPE_CHECKING:
    import sqlalchemy as sa

# The tables (and SQLAlchemy with them) are imported on first use: loading the code location must stay cheap.

BIGTOP_SOURCE_ID = 5
DEFAULT_BASE_URL = "https://www.bigtopbrewing.com"
DEFAULT_PAGE_PATH = "/restaurant-brewery-2"
DEFAULT_RESTAURANT_ID = 36499
DEFAULT_HORIZON_DAYS = 180
# How many cancelled / restored ids the run's metadata lists (the counts are always exact).
CANCELLED_IDS_SHOWN = 100

CALENDAR_EVENTS_QUERY = """query CalendarEventsQuery($restaurantId: Int!) {
  calendarEvents(restaurantId: $restaurantId) {
    count
    records { id name slug createdAt }
  }
}"""

EVENT_COLUMNS = (
    "external_id",
    "title",
    "start_utc",
    "end_utc",
    "description",
    "location",
    "external_url",
    "categories",
)

log = logging.getLogger(__name__)


class Logger(Protocol):
    def info(self, msg: str) -> Any: ...

    def warning(self, msg: str) -> Any: ...


class CollectorError(Exception):
    """The site answered something the collector cannot work with (not a challenge): where, status and why."""

    def __init__(self, *, where: Where, status: int | None, url: str, reason: str) -> None:
        self.where = where
        self.status = status
        self.url = url
        self.reason = reason
        super().__init__(f"Big Top {where} failed (HTTP {status if status is not None else '-'}) at {url}: {reason}")


class SiteUnavailableError(CollectorError):
    """The site is down or overloaded (a 5xx, or a 429 Cloudflare did not send): no challenge, retry later."""


@dataclass(frozen=True)
class CollectOptions:
    """What to collect and how gently. The defaults are the seed's (production site, 0.25 s between requests)."""

    base_url: str = DEFAULT_BASE_URL
    page_path: str = DEFAULT_PAGE_PATH
    restaurant_id: int = DEFAULT_RESTAURANT_ID
    delay_s: float = 0.25
    max_in_flight: int = 2
    settle_s: float = 3.0
    # [window_start, window_end): events starting in it are kept and recurring series are expanded over it.
    # Unset: from the start of today (venue time) for horizon_days.
    window_start: datetime | None = None
    window_end: datetime | None = None
    horizon_days: int = DEFAULT_HORIZON_DAYS
    future_only: bool = True
    limit: int | None = None

    @property
    def page_url(self) -> str:
        return self.base_url.rstrip("/") + self.page_path

    @property
    def graphql_url(self) -> str:
        return self.base_url.rstrip("/") + "/graphql"

    def ics_url(self, slug: str) -> str:
        return f"{self.base_url.rstrip('/')}/events/{quote(slug, safe='')}.ics"

    def event_url(self, slug: str) -> str:
        return f"{self.base_url.rstrip('/')}/events/{quote(slug, safe='')}"

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        if self.window_start is None:
            today = now.astimezone(VENUE_TIMEZONE).date()
            start, horizon_end = venue_day_bounds(today, today + timedelta(days=self.horizon_days - 1))
        else:
            start, horizon_end = self.window_start, self.window_start + timedelta(days=self.horizon_days)
        end = self.window_end or horizon_end
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass
class Collection:
    """The events collected (push-endpoint shape, earliest first) and what it took to get them."""

    events: list[dict[str, Any]]
    window: tuple[datetime, datetime]
    records_listed: int = 0
    ics_fetched: int = 0
    events_parsed: int = 0
    occurrences: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    # events parsed but left out because the push endpoint could not take them, by file
    events_skipped: dict[str, list[str]] = field(default_factory=dict)
    fixes: dict[str, list[str]] = field(default_factory=dict)
    elapsed_s: float = 0.0
    # Only the first `limit` events were kept: the rest of the window is unknown.
    limited: bool = False
    # Where the events kept are every event the venue lists: the window, from now on with `future_only`.
    listed_window: tuple[datetime, datetime] | None = None

    @property
    def complete(self) -> bool:
        """Every listed record became events: no file, record or event skipped, nothing cut off by `limit`.

        Only a complete collection may conclude that an event it did not see is no longer listed."""
        return not self.skipped and not self.events_skipped and not self.limited

    def metadata(self) -> dict[str, Any]:
        return {
            "records_listed": self.records_listed,
            "ics_fetched": self.ics_fetched,
            "events_parsed": self.events_parsed,
            "occurrences": self.occurrences,
            "events": len(self.events),
            "files_skipped": len(self.skipped),
            "skipped": self.skipped,
            "events_skipped": sum(len(reasons) for reasons in self.events_skipped.values()),
            "skipped_events": self.events_skipped,
            "values_sanitised": sum(len(fixes) for fixes in self.fixes.values()),
            "sanitised": self.fixes,
            "window_start": self.window[0].isoformat(),
            "window_end": self.window[1].isoformat(),
            "elapsed_s": round(self.elapsed_s, 3),
            "challenge": False,
            "complete": self.complete,
        }


@dataclass
class CollectionResult:
    collection: Collection
    upsert: UpsertResult
    # external ids marked cancelled by this run (no longer listed), and cancelled ones listed again
    cancelled: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        """Counts and event ids (the venue's public uids, no personal data) of what was cancelled or restored."""
        return {
            **self.upsert.as_metadata(),
            "cancelled": len(self.cancelled),
            "cancelled_ids": self.cancelled[:CANCELLED_IDS_SHOWN],
            "restored": len(self.restored),
            "restored_ids": self.restored[:CANCELLED_IDS_SHOWN],
            "cancellation_checked": self.collection.complete,
        }


def collect(
    *,
    browser: BrowserResource,
    options: CollectOptions = CollectOptions(),
    now: datetime | None = None,
    logger: Logger = log,
) -> Collection:
    """Collect Big Top's events in the options' window.

    Raises ChallengeError, SiteUnavailableError, CollectorError or BrowserError."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    window = options.window(now)
    with browser.session() as session:
        _open_venue_page(session, options)
        records, reported_count = _calendar_records(session, options)
        logger.info(f"bigtop: {len(records)} calendar records listed")
        slugs, skipped = _slugs(records)
        if reported_count is not None and reported_count != len(records):
            # The calendar says it has more (or other) records than it handed over: the listing is not whole.
            skipped["calendarEvents"] = f"count {reported_count} but {len(records)} records listed"
        fetched = session.fetch_all(
            [FetchRequest(url=options.ics_url(slug)) for slug in slugs],
            delay_s=options.delay_s,
            max_in_flight=options.max_in_flight,
            stop_statuses=STOP_STATUSES,
        )
    collection = Collection(events=[], window=window, records_listed=len(records), skipped=skipped)
    names = {str(record.get("slug")): record.get("name") for record in records}
    unavailable: set[str] = set()
    for slug, result in zip(slugs, fetched, strict=True):
        text = _ics_text(
            result,
            request_timeout_s=browser.request_timeout_s,
            skipped=collection.skipped,
            unavailable=unavailable,
            slug=slug,
        )
        if text is None:
            continue
        collection.ics_fetched += 1
        try:
            parsed = parse_ics(
                text,
                window_start=window[0],
                window_end=window[1],
                fallback_title=names.get(slug),
                fallback_url=options.event_url(slug),
            )
        except IcsError as error:
            collection.skipped[slug] = str(error)
            logger.warning(f"bigtop: skipped {slug}.ics: {error}")
            continue
        collection.events_parsed += parsed.vevents - len(parsed.skipped_vevents)
        collection.occurrences += parsed.occurrences
        if parsed.fixes:
            collection.fixes[slug] = parsed.fixes
        if parsed.skipped_vevents:
            collection.skipped[slug] = "; ".join(parsed.skipped_vevents)
        if parsed.skipped_events:
            collection.events_skipped[slug] = parsed.skipped_events
            for reason in parsed.skipped_events:
                logger.warning(f"bigtop: skipped an event of {slug}.ics: {reason}")
        collection.events.extend(parsed.events)
    if slugs and collection.ics_fetched == 0:
        # Not one file came back: a run that loads nothing must not look like a quiet day at the venue.
        first = collection.skipped.get(slugs[0], "no file fetched")
        error_type = SiteUnavailableError if slugs[0] in unavailable else CollectorError
        raise error_type(
            where="ics", status=fetched[0].status, url=options.ics_url(slugs[0]), reason=f"no .ics fetched ({first})"
        )
    collection.events = _select(collection.events, options=options, now=now)
    collection.limited = options.limit is not None
    listed_from = max(window[0], now) if options.future_only else window[0]
    collection.listed_window = (listed_from, window[1])
    collection.elapsed_s = time.monotonic() - started
    logger.info(
        f"bigtop: {collection.ics_fetched} .ics fetched, {len(collection.events)} events in window, "
        f"{len(collection.skipped)} skipped"
    )
    return collection


def load_events(
    *,
    warehouse: WarehouseResource,
    events: Sequence[Mapping[str, Any]],
    source_id: int = BIGTOP_SOURCE_ID,
    connection: "sa.Connection | None" = None,
) -> UpsertResult:
    """Upsert collected events into `events` by (source_id, external_id), the push loader's row shape.

    The collector saw each of them listed, so each row clears `cancelled_at`: an event listed again is restored."""
    from ingest_platform.warehouse.tables import events as events_table

    rows = [
        {"source_id": source_id, **{name: event[name] for name in EVENT_COLUMNS}, "cancelled_at": None}
        for event in events
    ]
    if not rows:
        return UpsertResult()
    key = [column.name for column in events_table.primary_key]
    return warehouse.upsert(table=events_table, rows=rows, key=key, connection=connection)


def collect_into_warehouse(
    *,
    browser: BrowserResource,
    warehouse: WarehouseResource,
    options: CollectOptions = CollectOptions(),
    source_id: int = BIGTOP_SOURCE_ID,
    now: datetime | None = None,
    logger: Logger = log,
) -> CollectionResult:
    """Collect with a browser and upsert into the warehouse; a failed collection writes nothing.

    A complete collection also marks cancelled the source's events in its window that the venue no longer lists;
    a partial one (any file, record or event skipped) cancels nothing, since what it missed may still be listed."""
    collection = collect(browser=browser, options=options, now=now, logger=logger)
    noticed_at = datetime.now(UTC)
    with warehouse.begin() as connection:
        listed = [event["external_id"] for event in collection.events]
        restored = _cancelled_among(connection, source_id=source_id, external_ids=listed)
        upsert = load_events(warehouse=warehouse, events=collection.events, source_id=source_id, connection=connection)
        cancelled: list[str] = []
        if collection.complete and collection.listed_window is not None:
            cancelled = cancel_unlisted(
                connection,
                source_id=source_id,
                window=collection.listed_window,
                listed=listed,
                noticed_at=noticed_at,
            )
        elif not collection.complete:
            logger.warning("bigtop: partial collection; no event is marked cancelled by this run")
    if cancelled:
        logger.info(f"bigtop: {len(cancelled)} events no longer listed, marked cancelled")
    return CollectionResult(collection=collection, upsert=upsert, cancelled=cancelled, restored=restored)


def cancel_unlisted(
    connection: "sa.Connection",
    *,
    source_id: int,
    window: tuple[datetime, datetime],
    listed: Sequence[str],
    noticed_at: datetime,
) -> list[str]:
    """Mark cancelled (soft delete, the time noticed) the source's events starting in `window` that are not in
    `listed` and not cancelled yet; returns their external ids, sorted."""
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import events as events_table

    in_window = connection.execute(
        sa.select(events_table.c.external_id).where(
            events_table.c.source_id == source_id,
            events_table.c.start_utc >= window[0],
            events_table.c.start_utc < window[1],
            events_table.c.cancelled_at.is_(None),
        )
    ).scalars()
    unlisted = sorted(set(in_window) - set(listed))
    for chunk in _chunks(unlisted):
        connection.execute(
            sa.update(events_table)
            .where(events_table.c.source_id == source_id, events_table.c.external_id.in_(chunk))
            .values(cancelled_at=noticed_at, updated_at=sa.func.current_timestamp())
        )
    return unlisted


def _cancelled_among(connection: "sa.Connection", *, source_id: int, external_ids: Sequence[str]) -> list[str]:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import events as events_table

    cancelled = connection.execute(
        sa.select(events_table.c.external_id).where(
            events_table.c.source_id == source_id, events_table.c.cancelled_at.is_not(None)
        )
    ).scalars()
    return sorted(set(cancelled) & set(external_ids))


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def raise_if_refused(
    *, where: Where, url: str, status: int | None, headers: Mapping[str, str], html: str = "", title: str | None = None
) -> None:
    """Raise ChallengeError for a challenge, SiteUnavailableError when the site is down; else return."""
    refusal = classify(status=status, headers=headers, html=html, title=title)
    if refusal is None:
        return
    error_type = ChallengeError if refusal.kind == "challenge" else SiteUnavailableError
    raise error_type(where=where, status=status, url=url, reason=refusal.reason)


def _open_venue_page(session: BrowserSession, options: CollectOptions) -> None:
    visit = session.visit(options.page_url, settle_s=options.settle_s)
    raise_if_refused(
        where="page", url=visit.url, status=visit.status, headers=visit.headers, html=visit.html, title=visit.title
    )
    if visit.status is not None and visit.status >= 400:
        raise CollectorError(where="page", status=visit.status, url=visit.url, reason="the venue page is an error")


def calendar_request(options: CollectOptions) -> FetchRequest:
    """The seed's GraphQL call. fetch() may not set Origin or Referer (forbidden header names); made from the venue
    page the browser sends the seed's values itself: Origin is the site, and `referrer` pins Referer to the page."""
    return FetchRequest(
        url=options.graphql_url,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        body=json.dumps({"query": CALENDAR_EVENTS_QUERY, "variables": {"restaurantId": options.restaurant_id}}),
        referrer=options.page_url,
    )


def _calendar_records(session: BrowserSession, options: CollectOptions) -> tuple[list[dict[str, Any]], int | None]:
    """The calendar's records, and the `count` it reports (None when it reports none)."""
    result = session.fetch(calendar_request(options))
    url = options.graphql_url
    if result.error == "timeout":
        raise BrowserTimeoutError("GraphQL calendarEvents", session.request_timeout_s)
    if result.error is not None:
        raise CollectorError(where="graphql", status=None, url=url, reason=f"request failed: {result.error}")
    is_json = "json" in result.headers.get("content-type", "")
    raise_if_refused(
        where="graphql", url=url, status=result.status, headers=result.headers, html="" if is_json else result.body
    )
    if result.status != 200:
        raise CollectorError(where="graphql", status=result.status, url=url, reason=result.body[:200])
    try:
        document = json.loads(result.body)
    except ValueError as error:
        raise CollectorError(where="graphql", status=result.status, url=url, reason=f"not JSON: {error}") from error
    if not isinstance(document, dict):
        raise CollectorError(where="graphql", status=result.status, url=url, reason="not a GraphQL response")
    if document.get("errors"):
        messages = "; ".join(str(error.get("message", error)) for error in document["errors"])
        raise CollectorError(where="graphql", status=result.status, url=url, reason=f"GraphQL errors: {messages}")
    calendar = (document.get("data") or {}).get("calendarEvents") or {}
    records = calendar.get("records")
    if not isinstance(records, list):
        raise CollectorError(where="graphql", status=result.status, url=url, reason="no calendarEvents.records")
    count = calendar.get("count")
    reported = count if isinstance(count, int) and not isinstance(count, bool) else None
    return [record for record in records if isinstance(record, dict)], reported


def _slugs(records: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    slugs: list[str] = []
    skipped: dict[str, str] = {}
    for record in records:
        slug = str(record.get("slug") or "").strip()
        if not slug:
            skipped[f"record {record.get('id')}"] = "calendar record without a slug"
        elif slug not in slugs:
            slugs.append(slug)
    return slugs, skipped


def _ics_text(
    result: FetchResult, *, request_timeout_s: float, skipped: dict[str, str], unavailable: set[str], slug: str
) -> str | None:
    """The file's text, or None with the reason in `skipped` (and the slug in `unavailable` when the site was down);
    raises ChallengeError if Cloudflare challenged: one refused file means the session is refused."""
    if result.error == "timeout":
        skipped[slug] = f"timed out after {request_timeout_s:g} s"
        return None
    if result.error == "not started":
        skipped[slug] = "not requested: an earlier request was refused"
        return None
    if result.error is not None:
        skipped[slug] = f"request failed: {result.error}"
        return None
    is_calendar = result.body.lstrip().upper().startswith("BEGIN:VCALENDAR")
    refusal = classify(status=result.status, headers=result.headers, html="" if is_calendar else result.body)
    if refusal is not None and refusal.kind == "challenge":
        raise ChallengeError(where="ics", status=result.status, url=result.url, reason=refusal.reason)
    if refusal is not None:
        skipped[slug] = f"HTTP {result.status}: site unavailable"
        unavailable.add(slug)
        return None
    if result.status != 200:
        skipped[slug] = f"HTTP {result.status}"
        return None
    return result.body


def _select(events: list[dict[str, Any]], *, options: CollectOptions, now: datetime) -> list[dict[str, Any]]:
    selected = sorted(events, key=lambda event: (event["start_utc"], event["external_id"]))
    if options.future_only:
        selected = [event for event in selected if event["start_utc"] >= now]
    # One row per id: a file listed twice, or an override repeated in two files, must not become two rows.
    unique = list({event["external_id"]: event for event in selected}.values())
    unique.sort(key=lambda event: (event["start_utc"], event["external_id"]))
    return unique[: options.limit] if options.limit is not None else unique
