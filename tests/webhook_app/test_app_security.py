"""Rate limits (in memory and in Redis), CORS refusal and the open health check."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.webhook_app.intake_support import (
    REDIS_URL,
    app_headers,
    ip_hash,
    landed_data,
    make_app,
    redis_prefix,
)

VIEW = {"events": [{"type": "SAVE", "ruleId": "r"}]}
CRAWL = {"sourceId": "s", "items": [{"externalId": "e", "url": "https://x.example", "title": "t"}]}
RULES = {"items": [{"ruleId": "r", "authorId": "a", "title": "t", "updatedAt": "2026-01-01T00:00:00+01:00"}]}


@pytest.fixture
def landing_dir(data_dir: Path) -> Path:
    return data_dir / "landing"


@pytest.mark.parametrize(
    ("path", "body", "default_limit"),
    [("/ingest/events", VIEW, 60), ("/ingest/crawl", CRAWL, 30), ("/ingest/rules", RULES, 30)],
    ids=["events-60-per-minute", "crawl-30-per-minute", "rules-30-per-minute"],
)
def test_default_limits_per_client_ip(landing_dir: Path, path: str, body: dict, default_limit: int) -> None:
    client = make_app(landing_dir, TRUSTED_PROXIES=1).test_client()
    headers = app_headers(**{"X-Forwarded-For": "203.0.113.9"})
    statuses = [client.post(path, json=body, headers=headers).status_code for _ in range(default_limit)]
    refused = client.post(path, json=body, headers=headers)
    other_client = client.post(path, json=body, headers=app_headers(**{"X-Forwarded-For": "203.0.113.10"}))

    assert set(statuses) == {202}
    assert refused.status_code == 429
    assert refused.get_json()["error"] == "too_many_requests"
    assert refused.headers["RateLimit-Limit"] == str(default_limit)
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 0 <= int(refused.headers["RateLimit-Reset"]) <= 61
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    assert other_client.status_code == 202
    assert sum(landed_data(landing_dir).values()) == default_limit + 1


def test_limit_headers_on_accepted_requests(landing_dir: Path) -> None:
    client = make_app(landing_dir, APP_EVENTS_RATE_LIMIT="5 per minute").test_client()
    response = client.post("/ingest/events", json=VIEW, headers=app_headers())
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == ("5", "4")
    assert "Retry-After" not in response.headers
    assert "X-RateLimit-Limit" not in response.headers


def test_unauthenticated_requests_count_against_the_limit(landing_dir: Path) -> None:
    client = make_app(landing_dir, APP_EVENTS_RATE_LIMIT="2 per minute").test_client()
    statuses = [
        client.post("/ingest/events", json=VIEW, headers={"x-app-token": "guess"}).status_code for _ in range(3)
    ]
    assert statuses == [401, 401, 429]


@pytest.fixture
def redis_key_prefix() -> Iterator[str]:
    with redis_prefix() as prefix:
        yield prefix


def test_redis_storage_shares_the_limit_between_instances(landing_dir: Path, redis_key_prefix: str) -> None:
    config = {
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "RATELIMIT_KEY_PREFIX": redis_key_prefix,
        "APP_EVENTS_RATE_LIMIT": "3 per minute",
    }
    first, second = (make_app(landing_dir, **config).test_client() for _ in range(2))
    statuses = [
        client.post("/ingest/events", json=VIEW, headers=app_headers()).status_code
        for client in (first, second, first, second)
    ]
    assert statuses == [202, 202, 202, 429]
    [key] = redis.Redis.from_url(REDIS_URL).keys(f"LIMITS:LIMITER/{config['RATELIMIT_KEY_PREFIX']}/*")
    assert ip_hash("127.0.0.1") in key.decode()
    assert "127.0.0.1" not in key.decode()


def test_memory_storage_is_per_instance(landing_dir: Path) -> None:
    first, second = (make_app(landing_dir, APP_EVENTS_RATE_LIMIT="1 per minute").test_client() for _ in range(2))
    statuses = [
        client.post("/ingest/events", json=VIEW, headers=app_headers()).status_code for client in (first, second, first)
    ]
    assert statuses == [202, 202, 429]


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_health_stays_open_to_browsers_without_cors_grants(landing_dir: Path, method: str) -> None:
    response = (
        make_app(landing_dir).test_client().open("/health", method=method, headers={"Origin": "https://x.example"})
    )
    assert response.status_code == 200
    assert not any(name.lower().startswith("access-control-") for name, _ in response.headers.items())


@pytest.mark.parametrize("path", ["/openapi.json", "/api/ingest/bigtop/events", "/no/such/route"])
def test_every_other_route_refuses_browsers(landing_dir: Path, path: str) -> None:
    response = make_app(landing_dir).test_client().get(path, headers={"Origin": "https://x.example"})
    assert response.status_code == 403
    assert response.get_json()["error"] == "cross_origin_refused"
