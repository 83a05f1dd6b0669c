"""The app under gunicorn over real HTTP: VIEW and idempotency dedup across workers and a restart, on each claim
store, and Stripe deliveries."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bench.common import gunicorn
from tests.fakes import stripe as fake_stripe
from tests.webhook_app.intake_support import APP_TOKEN, IP_HASH_KEY, REDIS_URL, STRIPE_SECRET, landed, redis_prefix


@contextmanager
def gunicorn_app(env: dict[str, str], log_path: Path) -> Iterator[str]:
    # The access log names the worker that served each request, to show both workers took part.
    access_log = ("--access-logfile", "-", "--access-logformat", "worker=%(p)s %(m)s %(route)s %(s)s")
    with gunicorn("webhook_app:create_app()", env=env, log_path=log_path, extra_args=access_log) as base_url:
        yield base_url


def _post_events(base_url: str, body: dict) -> dict:
    # A new connection per request, so the workers share the requests between them.
    response = httpx.post(f"{base_url}/ingest/events", json=body, headers={"x-app-token": APP_TOKEN}, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(params=["sqlite-default", "redis"])
def claims_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite-default":
        yield {}
        return
    with redis_prefix() as prefix:
        yield {"WEBHOOK_CLAIMS_URL": REDIS_URL, "WEBHOOK_CLAIMS_KEY_PREFIX": prefix}


def test_dedup_holds_across_workers_and_restarts(data_dir: Path, claims_env: dict[str, str]) -> None:
    landing_dir = data_dir / "landing"
    env = {
        "PLATFORM_DATA_DIR": str(data_dir),
        "LANDING_DIR": str(landing_dir),
        "INGEST_APP_TOKEN": APP_TOKEN,
        "INGEST_IP_HASH_SECRET": IP_HASH_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "WEBHOOK_APP_EVENTS_RATE_LIMIT": "1000 per minute",
        **claims_env,
    }
    view = {"events": [{"type": "VIEW", "ruleId": "rule_1"}]}
    keyed = {"events": [{"type": "SAVE", "ruleId": "rule_1", "idempotencyKey": "save-1"}]}

    refund = fake_stripe.event(
        "charge.refunded", fake_stripe.refunded_charge("ch_1", "pi_1", amount=5, refunded_amount=5)
    )
    with gunicorn_app(env, data_dir / "gunicorn-1.log") as base_url, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda body: _post_events(base_url, body), [view, keyed] * 12))
        stripe_statuses = [
            fake_stripe.deliver(f"{base_url}/ingest/stripe/webhook", refund, STRIPE_SECRET).status_code,
            fake_stripe.deliver(f"{base_url}/ingest/stripe/webhook", refund, STRIPE_SECRET, timestamp=1).status_code,
        ]
    with gunicorn_app(env, data_dir / "gunicorn-2.log") as base_url:
        after_restart = [_post_events(base_url, view), _post_events(base_url, keyed)]

    assert sum(result["stored"] for result in results) == 2
    assert [result["stored"] for result in after_restart] == [0, 0]
    stored = [event for document in landed(landing_dir, "app_events") for event in document["payload"]["events"]]
    assert sorted(event["type"] for event in stored) == ["SAVE", "VIEW"]
    assert len(landed(landing_dir, "app_events")) == 26
    assert stripe_statuses == [200, 400]
    assert [document["payload"]["event"] for document in landed(landing_dir, "stripe_events")] == [refund]
    workers = {
        line.split()[0] for line in (data_dir / "gunicorn-1.log").read_text().splitlines() if "/ingest/events" in line
    }
    assert len(workers) >= 2, "the requests were not shared between workers"
