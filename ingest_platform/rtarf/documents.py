"""RTARF documents as rows: each field checked and named when it is wrong, and the window a sync reads."""

import functools
import ipaddress
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

# `rtarf_rejected_events.partition_day` of the documents no time-range scan returns: no usable timestamp, no day.
UNDATED_PARTITION = "undated"

# Elasticsearch's `long`, and the warehouse's BIGINT.
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


class BadDocument(ValueError):
    """A document that cannot become a row; the reason names the field and the problem."""


def _text(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    raise BadDocument(f"{path}: expected a string, got {_type_name(value)}")


def _text_or_list(value: Any, path: str) -> str:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    if isinstance(value, str):
        return value
    raise BadDocument(f"{path}: expected a string or a list of strings, got {_type_name(value)}")


def _integer(value: Any, path: str) -> int:
    # Elasticsearch coerces numeric strings into a long field; so does the mapping, and nothing else.
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise BadDocument(f"{path}: expected an integer, got {_type_name(value)}")
    if not LONG_MIN <= number <= LONG_MAX:
        raise BadDocument(f"{path}: {number} does not fit a 64-bit integer")
    return number


def _ip(value: Any, path: str) -> str:
    text = _text(value, path)
    normalized = _normalized_ip(text)
    if normalized is None:
        raise BadDocument(f"{path}: {text!r} is not an IP address")
    return normalized


@functools.lru_cache(maxsize=65_536)
def _normalized_ip(text: str) -> str | None:
    # Events repeat a small set of addresses; parsing each one once keeps the mapping off the sync's profile.
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


# Column ← ECS field path; each field either absent/null or of the type its converter accepts.
KNOWN_FIELDS: Sequence[tuple[str, str, Any]] = (
    ("event_action", "event.action", _text),
    ("event_category", "event.category", _text_or_list),
    ("event_severity", "event.severity", _integer),
    ("message", "message", _text),
    ("host_name", "host.name", _text),
    ("source_ip", "source.ip", _ip),
    ("destination_ip", "destination.ip", _ip),
    ("user_name", "user.name", _text),
    ("rule_name", "rule.name", _text),
)


def event_row(hit: Mapping[str, Any], *, timestamp_field: str) -> dict[str, Any]:
    """The `rtarf_events` row of one search hit, or BadDocument naming what is wrong with it."""
    source = hit.get("_source")
    if not isinstance(source, dict):
        raise BadDocument("_source: missing (is _source disabled on the index?)")
    row: dict[str, Any] = {
        "es_id": hit["_id"],
        "es_index": hit["_index"],
        "event_timestamp": parse_timestamp(lookup(source, timestamp_field), timestamp_field),
    }
    for column, path, convert in KNOWN_FIELDS:
        value = lookup(source, path)
        row[column] = None if value is None else convert(value, path)
    # json.dumps (in C) writes a NUL as \u0000: without that text no key or string holds one, and the walk in
    # Python, which was 40 % of the mapping's time, runs only for the rare document that may.
    nul_path = nul_character_path(source) if "\\u0000" in json.dumps(source) else None
    if nul_path is not None:
        # PostgreSQL's text and jsonb cannot hold U+0000; one such document would fail its whole page.
        printable = nul_path.replace("\x00", "\\u0000")
        raise BadDocument(f"{printable}: contains a NUL character (U+0000), which the warehouse cannot store")
    row["source_document"] = source
    return row


def nul_character_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first key or string holding U+0000, if any."""
    if isinstance(value, str):
        return (path or "_source") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            item_path = f"{path}.{key}" if path else key
            if "\x00" in key:
                return item_path
            found = nul_character_path(item, item_path)
            if found is not None:
                return found
    elif isinstance(value, list):
        for position, item in enumerate(value):
            found = nul_character_path(item, f"{path}.{position}")
            if found is not None:
                return found
    return None


def parse_timestamp(value: Any, path: str) -> datetime:
    """Read a date as Elasticsearch's default `strict_date_optional_time||epoch_millis` format does (naive = UTC)."""
    if value is None:
        raise BadDocument(f"{path}: missing")
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadDocument(f"{path}: {value} epoch milliseconds is out of range") from None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        except ValueError:
            raise BadDocument(f"{path}: {value!r} is not an ISO 8601 date") from None
        except OverflowError:
            raise BadDocument(f"{path}: {value!r} is out of range") from None
    raise BadDocument(f"{path}: expected an ISO 8601 date or epoch milliseconds, got {_type_name(value)}")


def undated_reason(value: Any, path: str) -> str:
    """Why a document the index holds without a usable `path` is in no partition."""
    if value is None:
        return f"{path}: missing, so the document is in no day"
    try:
        parse_timestamp(value, path)
    except BadDocument as problem:
        return f"{problem}; the mapping did not index it, so the document is in no day"
    # Python reads it, Elasticsearch did not: no range query returns it, so it cannot be synced by day.
    return (
        f"{path}: {_type_name(value)} is not a date the index accepted (ignored by the mapping), "
        "so the document is in no day"
    )


def lookup(source: dict[str, Any], path: str) -> Any:
    """An ECS field, whether the document nests it (`{"host": {"name": …}}`) or spells it flat (`"host.name"`)."""
    if path in source:
        return source[path]
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _type_name(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:120]


def sync_window(
    *, day: date, now: datetime, last_loaded: datetime | None, overlap: timedelta, full_day: bool
) -> tuple[datetime, datetime, str]:
    """The [start, end) event-time window a run reads, and its mode.

    Today's partition is incremental: from the newest event already loaded minus the overlap, but never later than
    now minus the overlap, so one future-dated document cannot hide the rest of the day. Any other day (a backfill,
    or yesterday's run in the first hour) is re-read whole, so late documents of past days converge.
    """
    start = datetime.combine(day, datetime.min.time(), UTC)
    end = start + timedelta(days=1)
    if full_day or day != now.astimezone(UTC).date() or last_loaded is None:
        return start, end, "full_day"
    return max(start, min(last_loaded, now) - overlap), end, "incremental"
