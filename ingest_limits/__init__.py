"""What the warehouse can store, stated once: the webhook app refuses anything else at the edge (422, naming the
field) and the warehouse tables carry the same limits as constraints, so a 2xx never acknowledges a value the loader
would fail on later. Plain Python with no imports beyond the standard library: the webhook app never imports
`ingest_platform`, and the code location must stay cheap to load.

The limits, and why:
- Text holds no NUL character (PostgreSQL `text` and `jsonb` cannot store U+0000) and no lone surrogate (not
  encodable as UTF-8, so neither backend's driver can send it).
- Times are time-zoned and, once the offset is applied, within 1900-01-01T00:00:00Z (inclusive) and
  2201-01-01T00:00:00Z (exclusive): `9999-12-31T23:59:59-14:00` is year 10000 in UTC, which PostgreSQL stores and
  Python then cannot read back, and which overflows on SQLite. A timestamp is an ISO 8601 text; a bare number in
  a string ("1700000000") is refused, so a unit mix-up (seconds or milliseconds?) never lands as a plausible time.
- Integers the loader puts in a BIGINT column (Stripe amounts) are integral and within BIGINT.
- No NaN or Infinity anywhere, not even inside free-form JSON (`jsonb` refuses them and JSON has no such value).
- Key columns are bounded in characters so that the widest possible btree index row, at four UTF-8 bytes per
  character, stays under PostgreSQL's limit of 2704 bytes per index row (a third of an 8 kB page).
"""

import math
from datetime import UTC, datetime
from typing import Any

EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
# Exclusive: the last storable instant is 2200-12-31T23:59:59.999999Z.
END_OF_TIME = datetime(2201, 1, 1, tzinfo=UTC)
# Unix seconds of the same range, for fields sent as epoch integers (Stripe's `created`).
EARLIEST_EPOCH_SECONDS = int(EARLIEST_TIME.timestamp())
LATEST_EPOCH_SECONDS = int(END_OF_TIME.timestamp()) - 1
# An ISO 8601 date and time: what a time-zoned timestamp field must start with (the offset is checked by the parser).
ZONED_TIMESTAMP_PATTERN = r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d"

BIGINT_MIN = -(2**63)
BIGINT_MAX = 2**63 - 1

BTREE_ROW_MAX_BYTES = 2704
UTF8_MAX_BYTES_PER_CHARACTER = 4

# The key columns' limits, in characters.
BIGTOP_EXTERNAL_ID_CHARS = 512  # iCal UIDs; the events primary key (source_id, external_id)
IDENTIFIER_CHARS = 191  # the app's cuids and partners' ids: rule, user, author, crawl source and item ids
IDEMPOTENCY_KEY_CHARS = 200
STRIPE_ID_CHARS = 255  # Stripe's event, payment intent, checkout session and charge ids

# Every key column an intake feeds, by table: the limit the edge enforces and the table's CHECK constraint states.
KEY_COLUMN_CHARS: dict[str, dict[str, int]] = {
    "events": {"external_id": BIGTOP_EXTERNAL_ID_CHARS},
    "app_events": {"rule_id": IDENTIFIER_CHARS, "user_id": IDENTIFIER_CHARS, "idempotency_key": IDEMPOTENCY_KEY_CHARS},
    "crawl_items": {"source_id": IDENTIFIER_CHARS, "external_id": IDENTIFIER_CHARS},
    "stripe_events": {"event_id": STRIPE_ID_CHARS, "donation_key": STRIPE_ID_CHARS},
    "donations": {"donation_key": STRIPE_ID_CHARS, "author_id": IDENTIFIER_CHARS},
}
# Every time column an intake feeds, by table: within [EARLIEST_TIME, END_OF_TIME).
TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("start_utc", "end_utc"),
    "app_events": ("ts",),
    "stripe_events": ("created",),
}

NUL_PROBLEM = "contains a NUL character (U+0000), which the warehouse cannot store"
SURROGATE_PROBLEM = "contains a lone UTF-16 surrogate, which is not Unicode text"
NOT_FINITE_PROBLEM = "is NaN or Infinity, which JSON and the warehouse cannot store"
BIGINT_PROBLEM = f"must be an integer from {BIGINT_MIN} to {BIGINT_MAX}"


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None."""
    if "\x00" in text:
        return NUL_PROBLEM
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_PROBLEM
    return None


def json_problems(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Each `(dotted path, problem)` in decoded JSON that the warehouse cannot store: text (object keys included)
    with NUL or a lone surrogate, and NaN/Infinity. Paths are like `items.0.raw.a.b`."""
    problems: list[tuple[str, str]] = []
    _walk(value, path, problems)
    return problems


def _walk(value: Any, path: str, problems: list[tuple[str, str]]) -> None:
    if isinstance(value, str):
        if problem := text_problem(value):
            problems.append((path or "(body)", problem))
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and (problem := text_problem(key)):
                # The key itself cannot be stored: name its parent and say so, since the key cannot be shown.
                problems.append((path or "(body)", f"has a key that {problem}"))
                continue
            _walk(item, child, problems)
    elif isinstance(value, list):
        for position, item in enumerate(value):
            _walk(item, f"{path}.{position}" if path else str(position), problems)
    elif isinstance(value, float) and not math.isfinite(value):
        problems.append((path or "(body)", NOT_FINITE_PROBLEM))


def fits_bigint(value: int) -> bool:
    return BIGINT_MIN <= value <= BIGINT_MAX
