"""Malformed HTTP against the real server (gunicorn, raw sockets on loopback): a chunked body whose chunk size is
not hex, a body shorter than its Content-Length, and the requests gunicorn refuses itself all get a JSON error
with a 4xx on every intake route, and land nothing."""

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import gunicorn
from tests.fakes import stripe as fake_stripe
from tests.webhook_app.intake_support import APP_TOKEN, IP_HASH_KEY, STRIPE_SECRET

BIGTOP_TOKEN = "bigtop-gunicorn-errors-token"


def intake_request(intake: str) -> tuple[str, bytes, dict[str, str]]:
    if intake == "bigtop":
        body = {
            "run_id": "run-1",
            "sent_at": "2026-03-01T12:00:00Z",
            "events": [{"external_id": "uid-1", "title": "Trivia", "start_utc": "2026-03-05T23:00:00Z"}],
        }
        return "/api/ingest/bigtop/events", json.dumps(body).encode(), {"Authorization": f"Bearer {BIGTOP_TOKEN}"}
    if intake == "events":
        return "/ingest/events", b'{"events":[{"type":"COPY","ruleId":"rule-1"}]}', {"x-app-token": APP_TOKEN}
    if intake == "crawl":
        body = {"sourceId": "partner", "items": [{"externalId": "i1", "url": "https://example.org/a", "title": "A"}]}
        return "/ingest/crawl", json.dumps(body).encode(), {"x-app-token": APP_TOKEN}
    charge = fake_stripe.refunded_charge("ch_1", "pi_1", amount=5, refunded_amount=5)
    event = fake_stripe.event("charge.refunded", charge)
    body, headers = fake_stripe.signed(event, STRIPE_SECRET)
    return "/ingest/stripe/webhook", body.encode(), {"Stripe-Signature": headers["Stripe-Signature"]}


INTAKES = ("bigtop", "events", "crawl", "stripe")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    landing_dir = tmp_path_factory.mktemp("gunicorn-errors") / "landing"
    env = {
        "BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN,
        "INGEST_APP_TOKEN": APP_TOKEN,
        "INGEST_IP_HASH_SECRET": IP_HASH_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "LANDING_DIR": str(landing_dir),
    }
    with gunicorn("webhook_app:create_app()", env=env, workers=1) as base_url:
        yield int(base_url.rsplit(":", 1)[1]), landing_dir


def exchange(port: int, raw: bytes, *, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send `raw` on a fresh connection; the first response's status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(status_line.split()[1]), headers, body[:length]


def head(path: str, headers: dict[str, str], **framing: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in {**headers, **framing}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def landed_files(landing_dir: Path) -> list[Path]:
    return sorted(path for path in landing_dir.rglob("*.json") if "app_audit" not in path.parts)


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected_status: int) -> dict:
    assert status == expected_status, body
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)
    assert set(error) == {"error", "detail", "fields"}
    return error


@pytest.mark.parametrize("intake", INTAKES)
def test_a_chunk_size_that_is_not_hex_is_400(served, intake: str) -> None:
    port, landing_dir = served
    path, body, headers = intake_request(intake)
    before = landed_files(landing_dir)
    raw = head(path, headers, **{"Transfer-Encoding": "chunked"}) + b"zz\r\n" + body + b"\r\n0\r\n\r\n"

    error = assert_json_error(*exchange(port, raw), 400)

    assert error["error"] == "malformed_body"
    assert landed_files(landing_dir) == before


@pytest.mark.parametrize("intake", INTAKES)
def test_a_body_shorter_than_its_content_length_is_400_even_when_it_parses(served, intake: str) -> None:
    port, landing_dir = served
    path, body, headers = intake_request(intake)
    before = landed_files(landing_dir)
    raw = head(path, headers, **{"Content-Length": str(len(body) + 10)}) + body

    error = assert_json_error(*exchange(port, raw, half_close=True), 400)

    assert error["error"] == "incomplete_body"
    assert landed_files(landing_dir) == before


@pytest.mark.parametrize("intake", INTAKES)
def test_the_same_requests_well_framed_are_accepted(served, intake: str) -> None:
    port, landing_dir = served
    path, body, headers = intake_request(intake)
    before = len(landed_files(landing_dir))
    chunked = head(path, headers, **{"Transfer-Encoding": "chunked"}) + f"{len(body):x}\r\n".encode() + body
    chunked += b"\r\n0\r\n\r\n"

    status, _, response = exchange(port, chunked)

    assert status in (200, 202), response
    assert len(landed_files(landing_dir)) == before + 1


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"POST /ingest/events HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-F%d: v\r\n" % i for i in range(120))
            + b"\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"POST /ingest/events HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431, None),
        (b"NOT A REQUEST LINE\r\n\r\n", 400, "bad_request"),
        (b"POST /ingest/events HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n", 400, "bad_request"),
    ],
    ids=["request-line-too-long", "too-many-headers", "header-too-large", "garbage-request-line", "bad-header-name"],
)
def test_requests_gunicorn_refuses_itself_get_the_json_error_shape(served, raw: bytes, status: int, error) -> None:
    port, _ = served
    status_seen, headers, body = exchange(port, raw)
    if error is None:  # gunicorn words an oversized header as a 400 or a 431 depending on where it is cut
        assert status_seen in (400, 431)
        error_body = assert_json_error(status_seen, headers, body, status_seen)
    else:
        error_body = assert_json_error(status_seen, headers, body, status)
        assert error_body["error"] == error
    # The refused bytes are never echoed back.
    assert b"aaaa" not in body and b"vvvv" not in body and b"NOT A" not in body
