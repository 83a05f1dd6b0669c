"""The Big Top intake under gunicorn, which ends the request body itself: the app reads it whole and enforces the
size limit on its own there, so both paths are checked over real HTTP."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.common import gunicorn
from tests.webhook_app.conftest import BIGTOP_TOKEN, landed_files
from tests.webhook_app.test_bigtop import AUTH, URL, batch, event

LIMIT = 20_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    landing_dir = tmp_path_factory.mktemp("gunicorn") / "landing"
    env = {
        "BIGTOP_INGEST_TOKEN": BIGTOP_TOKEN,
        "LANDING_DIR": str(landing_dir),
        "WEBHOOK_MAX_CONTENT_LENGTH": str(LIMIT),
    }
    with gunicorn("webhook_app:create_app()", env=env, workers=1) as base_url:
        yield base_url, landing_dir


def post(base_url: str, content) -> httpx.Response:
    return httpx.post(base_url + URL, content=content, headers={**AUTH, "Content-Type": "application/json"}, timeout=10)


def test_a_batch_with_content_length_lands_byte_for_byte(served) -> None:
    base_url, landing_dir = served
    sent = json.dumps(batch(run_id="with-length", events=[event(external_id=f"uid-{i}") for i in range(50)])).encode()
    response = post(base_url, sent)
    assert response.status_code == 202, response.text
    (landed,) = [path for path in landed_files(landing_dir) if response.json()["request_id"] in path.name]
    assert landed.read_bytes().endswith(b'"payload":' + sent + b"}")


def test_a_chunked_batch_without_content_length_lands_too(served) -> None:
    base_url, landing_dir = served
    sent = json.dumps(batch(run_id="chunked")).encode()
    response = post(base_url, iter([sent[:40], sent[40:]]))
    assert response.status_code == 202, response.text
    (landed,) = [path for path in landed_files(landing_dir) if response.json()["request_id"] in path.name]
    assert json.loads(landed.read_bytes())["payload"] == json.loads(sent)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_the_limit_is_413_and_lands_nothing(served, chunked: bool) -> None:
    base_url, landing_dir = served
    before = landed_files(landing_dir)
    sent = json.dumps(batch(events=[event(external_id=f"uid-{i}", description="x" * 200) for i in range(200)]))
    assert len(sent) > LIMIT
    response = post(base_url, iter([sent.encode()]) if chunked else sent.encode())
    assert response.status_code == 413
    assert response.json()["error"] == "request_entity_too_large"
    assert landed_files(landing_dir) == before
