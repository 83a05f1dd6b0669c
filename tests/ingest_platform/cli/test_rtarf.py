"""`ingest-platform rtarf …` against the fake Elasticsearch and the data directory's SQLite warehouse."""

from collections.abc import Iterator
from datetime import date

import pytest

from ingest_platform.cli import main
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.fakes.rtarf_documents import INDEX, day_documents

DAY = date(2025, 11, 14)


@pytest.fixture
def es(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch().running() as server:
        monkeypatch.setenv("ELASTICSEARCH_URL", server.url)
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        yield server


def test_sync_loads_a_day_and_prints_the_figures(es: FakeElasticsearch, capsys: pytest.CaptureFixture):
    es.index_many(INDEX, day_documents(DAY, 7))

    assert main(["rtarf", "sync", "--day", DAY.isoformat(), "--page-size", "3"]) == 0
    assert main(["rtarf", "sync", "--day", DAY.isoformat()]) == 0

    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("rtarf ")]
    assert lines[0].startswith(f"rtarf {DAY}: full_day sync, 7 documents in 3 pages, inserted 7, updated 0")
    assert "inserted 0, updated 0, unchanged 7, bad 0" in lines[1]


def test_sync_without_a_cluster_url_says_so(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)

    assert main(["rtarf", "sync"]) == 2
    assert "ELASTICSEARCH_URL is not set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "code", "output"),
    [
        pytest.param({"RTARF_SYNC_INTERVAL_SECONDS": "300"}, 0, "every 300 s (cron '*/5 * * * *'", id="valid"),
        pytest.param({"RTARF_SYNC_INTERVAL_SECONDS": "45"}, 2, "must be at least 60", id="too-short"),
        pytest.param({"RTARF_SYNC_ENABLED": "sometimes"}, 2, "must be true or false", id="bad-enabled"),
        pytest.param({}, 0, "default status STOPPED, hourly look-back of 3 days", id="default-look-back"),
        pytest.param({"RTARF_LOOKBACK_DAYS": "0"}, 0, "no look-back", id="no-look-back"),
        pytest.param({"RTARF_LOOKBACK_DAYS": "99"}, 2, "RTARF_LOOKBACK_DAYS must be between 0", id="bad-look-back"),
    ],
)
def test_schedule_checks_the_environment(
    env: dict[str, str], code: int, output: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    for name in ("RTARF_SYNC_INTERVAL_SECONDS", "RTARF_SYNC_ENABLED", "RTARF_LOOKBACK_DAYS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    assert main(["rtarf", "schedule"]) == code
    captured = capsys.readouterr()
    assert output in (captured.out if code == 0 else captured.err)
