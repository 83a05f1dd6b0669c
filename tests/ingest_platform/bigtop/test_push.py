"""The push client against the real webhook app on a loopback port."""

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ingest_platform.bigtop.push import (
    PushConfigError,
    RetryPolicy,
    endpoint_url,
    push_events,
    select_local_events,
)
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.tables import events
from tests.fakes.bigtop_production import BigTopProduction, SlowAfterLanding, Status

TOKEN = "push-token-5a1c0d3e9f"
NO_WAIT = RetryPolicy(max_attempts=5, backoff_seconds=0.0)


def pushed(count: int, *, start: datetime | None = None) -> list[dict]:
    first = start or datetime(2026, 12, 1, 23, tzinfo=UTC)
    return [
        {
            "external_id": f"uid-{number:04d}@bigtopbrewing.com",
            "title": f"Trivia night {number}",
            "start_utc": (first + timedelta(hours=number)).isoformat(),
            "end_utc": (first + timedelta(hours=number, minutes=90)).isoformat(),
            "location": "Big Top Brewing, Sarasota",
            "categories": ["trivia"],
        }
        for number in range(count)
    ]


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    return tmp_path / "prod-landing"


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sleeps: list[float] = []

    def report(self, line: str) -> None:
        self.lines.append(line)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_push_lands_every_event_once_in_batches_of_one_run(landing_dir: Path) -> None:
    recorder = Recorder()
    sent = pushed(7)
    with BigTopProduction(landing_dir, TOKEN) as production:
        summary = push_events(
            sent, api_base=production.url, token=TOKEN, batch_size=3, report=recorder.report, sleep=recorder.sleep
        )
        documents = production.landed_documents()

    assert (summary.ok, summary.sent, summary.accepted, summary.failed_batches) == (True, 7, 7, 0)
    payloads = [document["payload"] for document in documents]
    assert [len(payload["events"]) for payload in payloads] == [3, 3, 1]
    assert {payload["run_id"] for payload in payloads} == {summary.run_id}
    assert all(datetime.fromisoformat(payload["sent_at"]).tzinfo is not None for payload in payloads)
    landed = [event for payload in payloads for event in payload["events"]]
    assert [_comparable(event) for event in landed] == [_comparable(event) for event in sent]
    progress = [line for line in recorder.lines if line.startswith("batch ")]
    request_ids = [document["request_id"] for document in documents]
    assert [result.request_id for result in summary.results] == request_ids
    assert progress == [
        f"batch 1/3: 3 events -> HTTP 202, 3 accepted, request {request_ids[0]} (attempts: 1)",
        f"batch 2/3: 3 events -> HTTP 202, 3 accepted, request {request_ids[1]} (attempts: 1)",
        f"batch 3/3: 1 events -> HTTP 202, 1 accepted, request {request_ids[2]} (attempts: 1)",
    ]
    assert recorder.lines[-1] == summary.line()
    assert "7 events sent, 7 accepted; 3 batches, 0 failed, 0 not sent" in summary.line()


def _comparable(event: dict) -> tuple:
    return (
        event["external_id"],
        event["title"],
        datetime.fromisoformat(event["start_utc"]),
        datetime.fromisoformat(event["end_utc"]),
        event["location"],
        event["categories"],
    )


def test_delay_is_waited_between_batches_only(landing_dir: Path) -> None:
    recorder = Recorder()
    with BigTopProduction(landing_dir, TOKEN) as production:
        push_events(pushed(3), api_base=production.url, token=TOKEN, batch_size=1, delay=0.25, sleep=recorder.sleep)
    assert recorder.sleeps == [0.25, 0.25]


@pytest.mark.parametrize(
    "failures",
    [
        pytest.param([Status(503), Status(502)], id="5xx-twice"),
        pytest.param([Status(429, retry_after="0"), Status(429, retry_after="0")], id="429-twice"),
        pytest.param([SlowAfterLanding(0.6), SlowAfterLanding(0.6)], id="timeout-after-landing-twice"),
    ],
)
def test_transient_failures_are_retried_until_accepted(landing_dir: Path, failures: list) -> None:
    recorder = Recorder()
    with BigTopProduction(landing_dir, TOKEN, failures=failures) as production:
        summary = push_events(
            pushed(4),
            api_base=production.url,
            token=TOKEN,
            batch_size=2,
            timeout_seconds=0.3,
            retry=NO_WAIT,
            report=recorder.report,
            sleep=recorder.sleep,
        )
    assert summary.ok
    assert [result.attempts for result in summary.results] == [3, 1]
    assert len(production.requests) == 4
    assert len({request.body for request in production.requests[:3]}) == 1, "a retry re-sends the same bytes"
    retries = [line for line in recorder.lines if "retrying" in line]
    assert len(retries) == 2 and retries[0].startswith("batch 1/2: attempt 1 ")


def test_backoff_doubles_and_retry_after_wins(landing_dir: Path) -> None:
    recorder = Recorder()
    failures = [Status(503), Status(500), Status(429, retry_after="7"), Status(503)]
    with BigTopProduction(landing_dir, TOKEN, failures=failures) as production:
        summary = push_events(
            pushed(1),
            api_base=production.url,
            token=TOKEN,
            retry=RetryPolicy(max_attempts=5, backoff_seconds=0.5),
            sleep=recorder.sleep,
            report=recorder.report,
        )
    assert summary.ok
    assert recorder.sleeps == [0.5, 1.0, 7.0, 4.0]


def test_retry_after_as_http_date_and_capped(landing_dir: Path) -> None:
    recorder = Recorder()
    in_a_minute = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    failures = [Status(503, retry_after=in_a_minute), Status(429, retry_after="86400")]
    with BigTopProduction(landing_dir, TOKEN, failures=failures) as production:
        push_events(
            pushed(1),
            api_base=production.url,
            token=TOKEN,
            retry=RetryPolicy(max_attempts=3, backoff_seconds=0.5, max_retry_after_seconds=120),
            sleep=recorder.sleep,
            report=recorder.report,
        )
    assert 55 <= recorder.sleeps[0] <= 60
    assert recorder.sleeps[1] == 120


def test_gives_up_after_max_attempts_and_stops_the_push(landing_dir: Path) -> None:
    recorder = Recorder()
    with BigTopProduction(landing_dir, TOKEN, failures=[Status(503)] * 3) as production:
        summary = push_events(
            pushed(4),
            api_base=production.url,
            token=TOKEN,
            batch_size=2,
            retry=RetryPolicy(max_attempts=3, backoff_seconds=0.0),
            report=recorder.report,
            sleep=recorder.sleep,
        )
        documents = production.landed_documents()
    assert not summary.ok
    assert (summary.failed_batches, summary.unsent_batches, summary.sent, summary.accepted) == (1, 1, 2, 0)
    assert len(production.requests) == 3
    assert documents == []
    assert "gave up after 3 attempts" in summary.results[0].error


def invalid_event() -> dict:
    event = pushed(1)[0]
    event["end_utc"] = "2026-11-30T00:00:00+00:00"  # before its start: production answers 422
    return event


def oversized_event() -> dict:
    return {**pushed(1)[0], "description": "x" * 2000}


@pytest.mark.parametrize(
    ("token", "app_config", "events_to_send", "requests", "failed", "unsent", "status"),
    [
        pytest.param(TOKEN, {}, [*pushed(2), invalid_event(), *pushed(3)], 3, 1, 0, 422, id="422-invalid-event"),
        pytest.param(
            TOKEN, {"MAX_CONTENT_LENGTH": 1500}, [oversized_event(), *pushed(3)], 2, 1, 0, 413, id="413-too-large"
        ),
        pytest.param("wrong-token", {}, pushed(6), 1, 1, 2, 401, id="401-wrong-token-stops"),
    ],
)
def test_client_errors_are_never_retried(
    landing_dir: Path,
    token: str,
    app_config: dict,
    events_to_send: list,
    requests: int,
    failed: int,
    unsent: int,
    status: int,
) -> None:
    recorder = Recorder()
    with BigTopProduction(landing_dir, TOKEN, app_config=app_config) as production:
        summary = push_events(
            events_to_send,
            api_base=production.url,
            token=token,
            batch_size=2,
            retry=NO_WAIT,
            report=recorder.report,
            sleep=recorder.sleep,
        )
    assert len(production.requests) == requests
    assert (summary.failed_batches, summary.unsent_batches, summary.ok) == (failed, unsent, False)
    failure = next(result for result in summary.results if not result.ok)
    assert (failure.status, failure.attempts) == (status, 1)
    assert recorder.sleeps == []
    assert not any("retrying" in line for line in recorder.lines)


def test_a_validation_failure_names_the_field(landing_dir: Path) -> None:
    recorder = Recorder()
    with BigTopProduction(landing_dir, TOKEN) as production:
        push_events([invalid_event()], api_base=production.url, token=TOKEN, report=recorder.report)
    (line,) = [line for line in recorder.lines if line.startswith("batch 1/1")]
    assert "HTTP 422 validation_failed" in line and "events.0" in line and "end_utc is before start_utc" in line


@pytest.mark.parametrize("batch_size", [0, -1, 501, 10_000], ids=str)
def test_batch_size_outside_1_to_500_is_refused_before_any_request(landing_dir: Path, batch_size: int) -> None:
    with BigTopProduction(landing_dir, TOKEN) as production, pytest.raises(PushConfigError, match="between 1 and 500"):
        push_events(pushed(3), api_base=production.url, token=TOKEN, batch_size=batch_size)
    assert production.requests == []


@pytest.mark.parametrize(("batch_size", "requests"), [(1, 3), (500, 1)], ids=["1", "500"])
def test_batch_size_limits_are_accepted(landing_dir: Path, batch_size: int, requests: int) -> None:
    count = 3 if batch_size == 1 else 500
    with BigTopProduction(landing_dir, TOKEN) as production:
        summary = push_events(pushed(count), api_base=production.url, token=TOKEN, batch_size=batch_size)
    assert summary.ok and summary.accepted == count
    assert len(production.requests) == requests


@pytest.mark.parametrize(
    ("api_base", "token", "problem"),
    [
        pytest.param("ftp://example.org", TOKEN, "http(s) URL", id="scheme"),
        pytest.param("", TOKEN, "http(s) URL", id="empty-base"),
        pytest.param("http://127.0.0.1:9", "  ", "no token", id="blank-token"),
    ],
)
def test_settings_are_checked_before_any_request(api_base: str, token: str, problem: str) -> None:
    with pytest.raises(PushConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        push_events(pushed(1), api_base=api_base, token=token)


# Connecting to 0.0.0.0 reaches this machine: an address that is not loopback yet needs no network.
NOT_LOOPBACK = "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize(
    ("host", "warned"), [("127.0.0.1", False), ("localhost", False), (NOT_LOOPBACK, True)], ids=str
)
def test_plain_http_off_loopback_is_warned_about(host: str, warned: bool) -> None:
    recorder = Recorder()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    push_events(
        pushed(1),
        api_base=f"http://{host}:{port}",
        token=TOKEN,
        retry=RetryPolicy(max_attempts=1),
        report=recorder.report,
    )
    assert any("is plain http; the token crosses the network unencrypted" in line for line in recorder.lines) is warned


def test_endpoint_url_keeps_a_path_prefix() -> None:
    assert endpoint_url("https://example.org/") == "https://example.org/api/ingest/bigtop/events"
    assert endpoint_url("https://example.org/srq") == "https://example.org/srq/api/ingest/bigtop/events"


def test_token_never_appears_in_what_the_push_reports(landing_dir: Path) -> None:
    recorder = Recorder()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    secret = "s3cret-token-that-must-not-leak"
    # The token also in the URL's path, so a message quoting the URL would carry it too.
    dead_base = f"http://127.0.0.1:{dead_port}/{secret}"
    with BigTopProduction(landing_dir, secret) as production:
        for api_base, token, events_to_send in [
            (production.url, secret, pushed(2)),
            (production.url, secret, [invalid_event()]),
            (production.url, secret + "x", pushed(1)),
            (dead_base, secret, pushed(1)),
        ]:
            summary = push_events(
                events_to_send,
                api_base=api_base,
                token=token,
                retry=RetryPolicy(max_attempts=2, backoff_seconds=0),
                report=recorder.report,
                sleep=recorder.sleep,
            )
            recorder.report(json.dumps(summary.as_metadata()))
    transcript = "\n".join(recorder.lines)
    assert "ConnectError" in transcript and "HTTP 401" in transcript and "HTTP 422" in transcript
    assert secret not in transcript


def store(warehouse: WarehouseResource, rows: list[dict]) -> None:
    warehouse.upsert(table=events, rows=rows, key=["source_id", "external_id"])


def row(source_id: int, external_id: str, start: datetime, end: datetime | None = None, **extra) -> dict:
    return {
        "source_id": source_id,
        "external_id": external_id,
        "title": extra.pop("title", external_id),
        "start_utc": start,
        "end_utc": end,
        "description": extra.pop("description", None),
        "location": None,
        "external_url": extra.pop("external_url", None),
        "categories": extra.pop("categories", None),
    }


def test_select_local_events_soonest_first_in_the_endpoint_shape(warehouse: WarehouseResource) -> None:
    now = datetime(2026, 11, 25, 12, tzinfo=UTC)
    store(
        warehouse,
        [
            row(5, "later", now + timedelta(days=2), categories=["music", "live"], external_url="https://x.test/e"),
            row(5, "past", now - timedelta(days=1), now - timedelta(hours=20)),
            row(5, "running", now - timedelta(hours=1), now + timedelta(hours=1), description="on now"),
            row(5, "soon", now + timedelta(hours=3)),
            row(7, "other-source", now + timedelta(hours=1)),
        ],
    )
    with warehouse.engine.connect() as connection:
        everything = select_local_events(connection, source_id=5)
        future = select_local_events(connection, source_id=5, future_only=True, now=now)
        limited = select_local_events(connection, source_id=5, future_only=True, limit=2, now=now)

    assert [event["external_id"] for event in everything] == ["past", "running", "soon", "later"]
    assert [event["external_id"] for event in future] == ["running", "soon", "later"]
    assert [event["external_id"] for event in limited] == ["running", "soon"]
    assert future[2] == {
        "external_id": "later",
        "title": "later",
        "start_utc": "2026-11-27T12:00:00+00:00",
        "external_url": "https://x.test/e",
        "categories": ["music", "live"],
    }
    assert future[0]["end_utc"] == "2026-11-25T13:00:00+00:00" and future[0]["description"] == "on now"
