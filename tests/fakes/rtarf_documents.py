"""RTARF event documents as Elasticsearch holds them (ECS fields), for the fake cluster."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

INDEX = "rtarf-events-2025.11"


def event_source(moment: datetime, number: int, **overrides: Any) -> dict[str, Any]:
    source = {
        "@timestamp": moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "event": {"action": "login", "category": ["authentication"], "severity": number % 5},
        "message": f"event {number}",
        "host": {"name": f"host-{number % 3}"},
        "source": {"ip": f"10.0.0.{number % 250 + 1}"},
        "destination": {"ip": "192.168.1.10"},
        "user": {"name": f"user{number}"},
        "rule": {"name": "failed-login"},
    }
    source.update(overrides)
    return source


def day_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def day_documents(day: date, count: int, *, prefix: str | None = None, spacing_minutes: int = 7):
    """`count` documents spread over `day`, ids `<prefix or day>-<n>`."""
    start = day_start(day)
    tag = prefix or day.isoformat()
    return [
        (f"{tag}-{number}", event_source(start + timedelta(minutes=spacing_minutes * number), number))
        for number in range(count)
    ]
