"""The landing zone failing under the app: a full disk (a real 256 KiB tmpfs), a read-only volume, a landing path
that cannot be a directory, a directory fsync that fails after the rename. Accepted requests get 503
`landing_unavailable`, rejected ones keep their 4xx, nothing is left half-written, and the next request after the
fault clears lands (once)."""

import errno
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import stripe as fake_stripe
from tests.webhook_app.intake_support import STRIPE_SECRET, app_headers, make_app
from webhook_app import landing as landing_module

BIGTOP_TOKEN = "bigtop-faults-token"
STREAMS = {
    "bigtop": "bigtop_events",
    "events": "app_events",
    "crawl": "crawl_items",
    "stripe": "stripe_events",
}


def good_request(intake: str) -> tuple[str, bytes, dict[str, str]]:
    if intake == "bigtop":
        body = {
            "run_id": "run-1",
            "sent_at": "2026-03-01T12:00:00Z",
            "events": [{"external_id": "uid-1", "title": "Trivia", "start_utc": "2026-03-05T23:00:00Z"}],
        }
        return "/api/ingest/bigtop/events", json.dumps(body).encode(), {"Authorization": f"Bearer {BIGTOP_TOKEN}"}
    if intake == "events":
        body = {"events": [{"type": "COPY", "ruleId": "rule-1"}]}
        return "/ingest/events", json.dumps(body).encode(), app_headers()
    if intake == "crawl":
        body = {"sourceId": "partner", "items": [{"externalId": "i1", "url": "https://example.org/a", "title": "A"}]}
        return "/ingest/crawl", json.dumps(body).encode(), app_headers()
    event = fake_stripe.event("payment_intent.succeeded", fake_stripe.payment_intent("pi_1", amount=500))
    body, headers = fake_stripe.signed(event, STRIPE_SECRET)
    return "/ingest/stripe/webhook", body.encode(), headers


def unauthenticated(intake: str) -> tuple[str, bytes, dict[str, str]]:
    url, body, _ = good_request(intake)
    if intake == "stripe":
        return url, body, {"Stripe-Signature": "t=1,v1=00"}
    name = "Authorization" if intake == "bigtop" else "x-app-token"
    return url, body, {name: "wrong"}


def unstorable(intake: str) -> tuple[str, bytes, dict[str, str]]:
    url, body, headers = good_request(intake)
    if intake == "stripe":
        event = fake_stripe.event("payment_intent.succeeded", fake_stripe.payment_intent("pi_1", amount=2**70))
        body, headers = fake_stripe.signed(event, STRIPE_SECRET)
        return url, body.encode(), headers
    return (
        url,
        body.replace(b'"2026-03-05T23:00:00Z"', b'"1772751600"')
        .replace(b'"rule-1"', b'"rule\\u0000"')
        .replace(b'"A"', b'"A\\u0000"'),
        headers,
    )


def post(client, request: tuple[str, bytes, dict[str, str]]):
    url, body, headers = request
    return client.post(url, data=body, headers={**headers, "Content-Type": "application/json"})


def make_client(landing_dir: Path, state_dir: Path):
    # Dedup claims kept off the failing volume (as with Redis in the scale-out set-up): this test is about landing.
    app = make_app(landing_dir, BIGTOP_INGEST_TOKEN=BIGTOP_TOKEN, CLAIMS_URL=f"sqlite:///{state_dir / 'claims.sqlite'}")
    return app.test_client()


def every_file(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def stream_files(landing_dir: Path, intake: str) -> list[Path]:
    return sorted((landing_dir / STREAMS[intake]).glob("*.json"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=False)
    if mounted.returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


INTAKES = list(STREAMS)


@pytest.mark.parametrize("intake", INTAKES)
def test_a_full_disk_is_503_for_accepted_requests_4xx_for_rejected_and_recovers(
    small_disk: Path, tmp_path: Path, intake: str, caplog
) -> None:
    landing_dir = small_disk / "landing"
    client = make_client(landing_dir, tmp_path)
    assert post(client, good_request(intake)).status_code in (200, 202)
    landed_before = every_file(landing_dir)
    filler = fill(small_disk)

    full = post(client, good_request(intake))
    assert (full.status_code, full.get_json()["error"]) == (503, "landing_unavailable")
    assert "Retry-After" in full.headers
    assert post(client, unauthenticated(intake)).status_code in (400, 401)
    if intake != "bigtop":  # Big Top's rejections are not audited
        assert "could not land the audit record" in caplog.text
    assert post(client, unstorable(intake)).status_code == 422
    # Nothing half-written: no new file, no temporary left behind.
    assert every_file(landing_dir) == landed_before

    filler.unlink()
    recovered = post(client, good_request(intake))
    assert recovered.status_code in (200, 202), recovered.get_data(as_text=True)
    assert len(stream_files(landing_dir, intake)) == 2


@pytest.mark.parametrize("intake", INTAKES)
def test_a_read_only_landing_volume_is_503_and_recovers_when_writable(small_disk: Path, tmp_path: Path, intake: str):
    landing_dir = small_disk / "landing"
    client = make_client(landing_dir, tmp_path)
    assert post(client, good_request(intake)).status_code in (200, 202)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    response = post(client, good_request(intake))
    assert (response.status_code, response.get_json()["error"]) == (503, "landing_unavailable")
    assert post(client, unauthenticated(intake)).status_code in (400, 401)
    assert post(client, unstorable(intake)).status_code == 422

    subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert post(client, good_request(intake)).status_code in (200, 202)
    assert len(stream_files(landing_dir, intake)) == 2
    assert every_file(landing_dir / STREAMS[intake] / landing_module.TMP_DIR) == []


@pytest.mark.parametrize("intake", INTAKES)
def test_a_landing_path_under_a_regular_file_is_503_not_500(tmp_path: Path, intake: str) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    client = make_client(blocker / "landing", tmp_path)

    response = post(client, good_request(intake))
    assert (response.status_code, response.get_json()["error"]) == (503, "landing_unavailable")
    assert post(client, unauthenticated(intake)).status_code in (400, 401)
    assert post(client, unstorable(intake)).status_code == 422


def test_the_default_claim_store_on_an_unusable_volume_is_a_503_not_a_500(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    # The dedup claims live in <landing>/.state by default; a VIEW takes one before anything lands.
    client = make_app(blocker / "landing").test_client()
    view = json.dumps({"events": [{"type": "VIEW", "ruleId": "rule-1"}]}).encode()
    response = post(client, ("/ingest/events", view, app_headers()))
    assert (response.status_code, response.get_json()["error"]) == (503, "dedup_unavailable")
    assert "Retry-After" in response.headers


@pytest.mark.parametrize("intake", INTAKES)
def test_a_failed_directory_fsync_takes_the_file_back_so_the_retry_lands_once(
    tmp_path: Path, intake: str, monkeypatch, caplog
) -> None:
    landing_dir = tmp_path / "landing"
    client = make_client(landing_dir, tmp_path)
    assert post(client, good_request(intake)).status_code in (200, 202)
    stream_dir = landing_dir / STREAMS[intake]
    real_fsync_dir = landing_module._fsync_dir
    failures = []

    # No real disk fails an fsync on demand; the failure is injected at the one call that fsyncs the directory.
    def failing_once(path: Path) -> None:
        if path == stream_dir and not failures:
            failures.append(path)
            raise OSError(errno.EIO, "Input/output error")
        real_fsync_dir(path)

    monkeypatch.setattr(landing_module, "_fsync_dir", failing_once)
    caplog.set_level(logging.ERROR)

    failed = post(client, good_request(intake))
    assert (failed.status_code, failed.get_json()["error"]) == (503, "landing_unavailable")
    assert failures == [stream_dir]
    assert len(stream_files(landing_dir, intake)) == 1
    retried = post(client, good_request(intake))
    assert retried.status_code in (200, 202)
    assert len(stream_files(landing_dir, intake)) == 2
    assert every_file(stream_dir / landing_module.TMP_DIR) == []
