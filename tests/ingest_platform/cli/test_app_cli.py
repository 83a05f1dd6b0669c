"""`ingest-platform app …` against the real webhook app served on a loopback socket."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest_platform.cli import main
from tests.fakes import stripe as fake_stripe
from tests.servers import serve_wsgi
from tests.webhook_app.intake_support import IP_HASH_KEY, STRIPE_SECRET, app_headers, ip_hash, landed, make_app


@pytest.fixture
def served_app(data_dir: Path) -> Iterator[tuple[str, Path]]:
    landing_dir = data_dir / "landing"
    with serve_wsgi(make_app(landing_dir)) as base_url:
        yield base_url, landing_dir


def test_ip_hash_matches_what_the_app_stores(data_dir: Path, monkeypatch, capsys) -> None:
    landing_dir = data_dir / "landing"
    make_app(landing_dir).test_client().post(
        "/ingest/events", json={"events": [{"type": "SAVE", "ruleId": "r"}]}, headers=app_headers()
    )
    monkeypatch.setenv("INGEST_IP_HASH_SECRET", f"{IP_HASH_KEY},next-key")

    assert main(["app", "ip-hash", "127.0.0.1"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == ip_hash("127.0.0.1") == landed(landing_dir, "app_events")[0]["payload"]["ip_hash"]


def test_ip_hash_without_key(monkeypatch, capsys) -> None:
    monkeypatch.delenv("INGEST_IP_HASH_SECRET", raising=False)
    assert main(["app", "ip-hash", "127.0.0.1"]) == 2
    assert "INGEST_IP_HASH_SECRET is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("secret", "exit_code", "lands"), [(STRIPE_SECRET, 0, 1), ("whsec_wrong", 1, 0)], ids=["signed", "wrong-secret"]
)
def test_send_stripe_event(served_app, tmp_path: Path, monkeypatch, capsys, secret, exit_code, lands) -> None:
    base_url, landing_dir = served_app
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(fake_stripe.event("charge.refunded", {"id": "ch_1"})))
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)

    assert (
        main(["app", "send-stripe-event", str(event_file), "--url", f"{base_url}/ingest/stripe/webhook"]) == exit_code
    )
    assert len(landed(landing_dir, "stripe_events")) == lands
    assert capsys.readouterr().out.startswith("200" if lands else "400")
