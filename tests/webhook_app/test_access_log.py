"""gunicorn's access log, read from a real gunicorn serving the app with its config file: the app's own fields
(request id, route, status, size, duration, keyed IP hash), never the raw IP, the path as sent or a query value."""

import hashlib
import hmac
import re
from pathlib import Path

import httpx

from bench.common import gunicorn
from tests.webhook_app.conftest import BIGTOP_TOKEN

IP_HASH_SECRET = "ip-hash-key-for-the-access-log-test"
QUERY_SECRET = "token-put-in-a-query-string-4711"
QUERY_EMAIL = "holder@example.com"
ACCESS_LINE = re.compile(
    r"request_id=(?P<request_id>[0-9a-f]{32}) method=(?P<method>[A-Z]+) route=(?P<route>\S+) status=(?P<status>\d{3}) "
    r"size=(?P<size>\d+) duration_ms=(?P<duration_ms>\d+\.\d) ip_hash=(?P<ip_hash>[0-9a-f]{64})$"
)


def test_the_access_log_says_route_status_size_duration_and_ip_hash_and_never_the_ip_or_the_query(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "gunicorn.log"
    env = {
        "BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN,
        "INGEST_IP_HASH_SECRET": IP_HASH_SECRET,
        "LANDING_DIR": str(tmp_path / "landing"),
    }
    query = {"token": QUERY_SECRET, "email": QUERY_EMAIL}
    with gunicorn("webhook_app:create_app()", env=env, workers=1, log_path=log_path) as base_url:
        health = httpx.get(f"{base_url}/health", params=query, timeout=10)
        refused = httpx.post(f"{base_url}/api/ingest/bigtop/events", params=query, json={}, timeout=10)
        unknown = httpx.get(f"{base_url}/nowhere/{QUERY_SECRET}", params=query, timeout=10)
    # gunicorn has stopped: every line is written.

    log = log_path.read_text()
    lines = [match.groupdict() for line in log.splitlines() if (match := ACCESS_LINE.search(line))]
    expected_hash = hmac.new(IP_HASH_SECRET.encode(), b"127.0.0.1", hashlib.sha256).hexdigest()
    assert [(line["method"], line["route"], line["status"], line["size"]) for line in lines[-3:]] == [
        ("GET", "/health", "200", str(len(health.content))),
        ("POST", "/api/ingest/bigtop/events", str(refused.status_code), str(len(refused.content))),
        ("GET", "-", "404", str(len(unknown.content))),
    ]
    assert refused.status_code == 401
    assert {line["ip_hash"] for line in lines} == {expected_hash}
    assert len({line["request_id"] for line in lines}) == len(lines)
    assert QUERY_SECRET not in log and QUERY_EMAIL not in log and "holder%40example.com" not in log
    # The app's own lines carry `request_id=` too (gunicorn.conf.py's logging); access lines alone carry a route.
    access_lines = [line for line in log.splitlines() if " route=" in line]
    assert len(access_lines) == len(lines)  # every access line is in the app's format
    assert not [line for line in access_lines if "127.0.0.1" in line]
