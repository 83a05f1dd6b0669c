"""`ingest-platform bigtop push`: the fake Big Top site → real Chromium → local SQLite platform → the real webhook app
on loopback → PostgreSQL.

Tests about collecting drive the real collector (bigtop/raw/collected_events through bigtop_collect_job) with
Chromium, loopback-only, against the fake site; tests about push mechanics start from rows already in the local
warehouse (`--no-collect`) and need no browser.
"""

import re
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.cli import build_parser, main
from ingest_platform.cli.bigtop import run_push
from ingest_platform.definitions import defs as platform_defs
from ingest_platform.jobs.bigtop import COLLECTOR_KEY
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.settings import REPO_ROOT
from ingest_platform.tags import BROWSER_POOL
from ingest_platform.warehouse.tables import events
from tests.fakes.bigtop_production import BigTopProduction, SlowAfterLanding, Status, load_landed_batches
from tests.fakes.bigtop_site import FakeBigTopSite, bigtop_site, chromium_for_tests, requires_chromium

TOKEN = "cli-token-7d2e4b1a90"
KEY = ["source_id", "external_id"]
EVENT_COLUMNS = ["external_id", "title", "start_utc", "end_utc", "description", "location", "external_url"]
VENUE = ZoneInfo("America/New_York")
TOO_LONG_UID = "x" * 600 + "@bigtopbrewing.com"


def collected_rows(count: int, *, title: str = "Bingo") -> list[dict]:
    """Rows as an earlier collection left them in the local warehouse."""
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return [
        {
            "source_id": 5,
            "external_id": f"collected-{number}@bigtopbrewing.com",
            "title": f"{title} {number}",
            "start_utc": first + timedelta(hours=number),
            "end_utc": first + timedelta(hours=number, minutes=45),
            "description": "Big Top's weekly bingo",
            "location": "Big Top Brewing",
            "external_url": f"https://www.bigtopbrewing.com/events/bingo-{number}",
            "categories": ["games"],
        }
        for number in range(count)
    ]


def odd_ics(uid: str, start: datetime) -> str:
    """An event no push endpoint would take as the venue wrote it: every free-text field over its limit."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTART;TZID=America/New_York:{start:%Y%m%dT%H%M%S}",
        "SUMMARY:" + "Odd " * 400,
        "DESCRIPTION:" + "d" * 60_000,
        "LOCATION:" + "L" * 1500,
        "URL:ftp://bigtopbrewing.com/odd",
        "CATEGORIES:" + ",".join(f"c{number}" for number in range(150)),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
def site() -> Iterator[FakeBigTopSite]:
    """Six pushable events from tomorrow on (venue time), and one whose id production would refuse."""
    tomorrow = datetime.now(VENUE).replace(hour=19, minute=0, second=0, microsecond=0, tzinfo=None) + timedelta(days=1)
    with bigtop_site() as running:
        running.add_event("trivia", "Trivia", tomorrow, tomorrow + timedelta(hours=2), rrule="FREQ=WEEKLY;COUNT=3")
        running.add_event("open-mic", "Open Mic", tomorrow + timedelta(days=1), categories=["Music", "Open Mic"])
        running.add_event("quirky", "Quirky", tomorrow + timedelta(days=2), venue_quirks=True)
        running.add_event("odd", "Odd", tomorrow, raw_ics=odd_ics("odd@bigtopbrewing.com", tomorrow))
        running.add_event("too-long-id", "Too long", tomorrow, raw_ics=odd_ics(TOO_LONG_UID, tomorrow))
        yield running


def collecting_from(site: FakeBigTopSite) -> list[str]:
    """The CLI's options that point the collector at the fake site, with the tests' loopback-only Chromium."""
    browser = chromium_for_tests()
    return [
        *("--site-url", site.base_url, "--settle", "0", "--delay", "0"),
        f"--chromium={browser.executable_path}",
        *(f"--chromium-arg={switch}" for switch in browser.extra_args),
    ]


def without_collector() -> dg.Definitions:
    return dg.Definitions(resources={"warehouse": WarehouseResource()})


def local() -> WarehouseResource:
    """The local platform's warehouse: the SQLite file of the test's PLATFORM_DATA_DIR."""
    return WarehouseResource()


def rows_of(warehouse: WarehouseResource) -> list[dict]:
    columns = [events.c[name] for name in [*EVENT_COLUMNS, "categories"]]
    query = sa.select(*columns).where(events.c.source_id == 5).order_by(events.c.external_id)
    with warehouse.engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def push(*argv: str, defs: dg.Definitions | None = None) -> int:
    return run_push(build_parser().parse_args(["bigtop", "push", *argv]), defs=defs)


def use_persistent_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    return tmp_path / "prod-landing"


@requires_chromium
@pytest.mark.postgres
@pytest.mark.parametrize(
    "failures",
    [
        pytest.param([Status(503), Status(500)], id="5xx-twice"),
        pytest.param([SlowAfterLanding(0.8), SlowAfterLanding(0.8)], id="timeout-twice"),
    ],
)
def test_collect_from_the_site_push_and_load_into_postgres_loses_and_duplicates_nothing(
    site: FakeBigTopSite,
    landing_dir: Path,
    pg_warehouse: WarehouseResource,
    failures: list,
    capsys: pytest.CaptureFixture,
) -> None:
    with BigTopProduction(landing_dir, TOKEN, failures=failures) as production:
        code = push(
            *collecting_from(site),
            *("--api-base", production.url, "--token", TOKEN, "--batch-size", "2"),
            *("--timeout", "0.4", "--retry-backoff", "0.01"),
        )
        landed = production.landed_documents()
    output = capsys.readouterr()

    assert code == 0, output.err
    assert site.requests_to("/graphql") and len(site.requests_to("/events/")) == 5
    collected = rows_of(local())
    assert sorted(row["external_id"] for row in collected) == sorted(
        [
            *(f"trivia@bigtopbrewing.com/{start:%Y%m%dT%H%M%SZ}" for start in trivia_starts(site)),
            "open-mic@bigtopbrewing.com",
            "quirky@bigtopbrewing.com",
            "odd@bigtopbrewing.com",
        ]
    )
    # The odd event went out cut to the endpoint's limits instead of costing its batch a 422.
    odd = next(row for row in collected if row["external_id"] == "odd@bigtopbrewing.com")
    assert (len(odd["title"]), len(odd["description"]), len(odd["location"])) == (999, 50_000, 1000)
    assert odd["external_url"] == f"{site.base_url}/events/odd" and len(odd["categories"]) == 100
    assert "events_skipped=1" in output.out
    # A timed-out batch was durable already: production holds it twice, the load must still count it once.
    assert len(landed) == 3 + (2 if isinstance(failures[0], SlowAfterLanding) else 0)
    load_landed_batches(landing_dir, pg_warehouse)
    assert rows_of(pg_warehouse) == collected
    assert "6 events sent, 6 accepted; 3 batches, 0 failed" in output.out
    assert output.out.count("-> HTTP 202") == 3 and "attempts: 3" in output.out
    assert TOKEN not in output.out + output.err


def trivia_starts(site: FakeBigTopSite) -> list[datetime]:
    first = site.events["trivia"].start.replace(tzinfo=VENUE)
    return [(first + timedelta(weeks=week)).astimezone(UTC) for week in range(3)]


@requires_chromium
def test_no_push_prod_collects_on_the_persistent_instance_with_the_cli_options(
    site: FakeBigTopSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    use_persistent_instance(tmp_path, monkeypatch)

    code = push(*collecting_from(site), "--no-push-prod", "--future-only", "--limit", "4")

    output = capsys.readouterr()
    assert code == 0, output.err
    assert len(rows_of(local())) == 4
    assert "--no-push-prod: 4 events of source 5 stay local; nothing posted" in output.out
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        materialization = instance.get_latest_materialization_event(COLLECTOR_KEY).asset_materialization
    assert run.is_success and run.job_name == "bigtop_collect_job"
    assert run.tags["dagster/max_runtime"] == "1800"
    assert run.tags["dagster/asset_partition_range_start"] == datetime.now(VENUE).date().isoformat()
    # --delay is the seed's: the collector's spacing of .ics requests.
    (op_config,) = run.run_config["ops"].values()
    assert op_config["config"] == {
        "base_url": site.base_url,
        "settle_s": 0.0,
        "delay_s": 0.0,
        "future_only": True,
        "limit": 4,
    }
    assert run.run_config["resources"]["browser"]["config"] == {
        "executable_path": chromium_for_tests().executable_path,
        "extra_args": chromium_for_tests().extra_args,
    }
    assert materialization.metadata["inserted"].value == 4
    assert f"collected in run {run.run_id}" in output.out


@requires_chromium
def test_dry_run_collects_from_the_site_and_writes_and_posts_nothing(
    site: FakeBigTopSite,
    landing_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    use_persistent_instance(tmp_path, monkeypatch)
    local().upsert(table=events, rows=collected_rows(1), key=KEY)
    before = rows_of(local())
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push(
            *collecting_from(site), "--dry-run", "--api-base", production.url, "--token", TOKEN, "--batch-size", "4"
        )
    output = capsys.readouterr()

    assert code == 0, output.err
    assert len(site.requests_to("/events/")) == 5, "the dry run collects from the site"
    assert production.requests == [] and not landing_dir.exists()
    assert rows_of(local()) == before
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []
    assert "dry run: 6 events of source 5 collected, in 2 batches of up to 4; nothing written, nothing posted" in (
        output.out
    )
    assert "batch 2/2:" in output.out
    assert output.out.count('"external_id": "trivia@bigtopbrewing.com/') == 3
    assert '"external_id": "odd@bigtopbrewing.com"' in output.out
    assert "skipped (the endpoint cannot take it): " + "x" * 80 + "…: external_id of 618 characters" in output.out


@requires_chromium
@pytest.mark.parametrize("mode", [[], ["--dry-run"]], ids=["push", "dry-run"])
def test_a_challenge_stops_the_bridge_before_anything_is_written_or_posted(
    site: FakeBigTopSite, mode: list[str], landing_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    local().upsert(table=events, rows=collected_rows(2), key=KEY)
    before = rows_of(local())
    site.page = "challenge"
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push(*collecting_from(site), *mode, "--api-base", production.url, "--token", TOKEN)
    err = capsys.readouterr().err
    assert code == 2
    assert "Cloudflare challenge" in err and "page" in err and "403" in err
    assert production.requests == []
    assert rows_of(local()) == before


@pytest.mark.postgres
@pytest.mark.parametrize(
    "failures",
    [
        pytest.param([], id="no-failure"),
        pytest.param([Status(503), Status(500)], id="5xx-twice"),
        pytest.param([Status(429, retry_after="0"), Status(429, retry_after="0")], id="429-twice"),
        pytest.param([SlowAfterLanding(0.8), SlowAfterLanding(0.8)], id="timeout-twice"),
    ],
)
def test_a_receiver_failing_twice_loses_and_duplicates_nothing(
    landing_dir: Path, pg_warehouse: WarehouseResource, failures: list, capsys: pytest.CaptureFixture
) -> None:
    local().upsert(table=events, rows=collected_rows(7), key=KEY)
    with BigTopProduction(landing_dir, TOKEN, failures=failures) as production:
        code = push(
            *("--no-collect", "--api-base", production.url, "--token", TOKEN, "--batch-size", "3"),
            *("--timeout", "0.4", "--retry-backoff", "0.01"),
        )
        landed = production.landed_documents()
    output = capsys.readouterr()

    assert code == 0, output.err
    assert len(landed) == 3 + (2 if failures and isinstance(failures[0], SlowAfterLanding) else 0)
    load_landed_batches(landing_dir, pg_warehouse)
    assert rows_of(pg_warehouse) == rows_of(local())
    assert "push bigtop-push-" in output.out and "7 events sent, 7 accepted; 3 batches, 0 failed" in output.out
    assert output.out.count("-> HTTP 202") == 3
    assert TOKEN not in output.out + output.err


def test_env_variables_supply_base_and_token(landing_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local().upsert(table=events, rows=collected_rows(2), key=KEY)
    with BigTopProduction(landing_dir, TOKEN) as production:
        monkeypatch.setenv("BIGTOP_INGEST_API_BASE", production.url)
        monkeypatch.setenv("BIGTOP_INGEST_TOKEN", TOKEN)
        code = main(["bigtop", "push", "--no-collect"])
        assert [document["payload"]["source_id"] for document in production.landed_documents()] == [5]
    assert code == 0


def test_limit_and_future_only_select_what_is_pushed(landing_dir: Path) -> None:
    past = collected_rows(1, title="Past")[0] | {
        "external_id": "past@bigtopbrewing.com",
        "start_utc": datetime(2025, 1, 1, tzinfo=UTC),
        "end_utc": datetime(2025, 1, 1, 2, tzinfo=UTC),
    }
    local().upsert(table=events, rows=[past, *collected_rows(5)], key=KEY)
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push(
            *("--no-collect", "--api-base", production.url, "--token", TOKEN),
            *("--future-only", "--limit", "3"),
        )
        (document,) = production.landed_documents()
    assert code == 0
    assert [event["external_id"] for event in document["payload"]["events"]] == [
        f"collected-{number}@bigtopbrewing.com" for number in range(3)
    ]


@pytest.mark.parametrize("mode", [["--no-push-prod"], ["--dry-run"]], ids=["collect", "dry-run"])
def test_collect_refuses_while_another_run_holds_the_browser_slot(
    mode: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    use_persistent_instance(tmp_path, monkeypatch)
    with dg.DagsterInstance.get() as instance:
        job = platform_defs.resolve_job_def("bigtop_collect_job")
        busy = instance.create_run_for_job(job, status=dg.DagsterRunStatus.STARTED)
        # What the busy run's browser step holds while it runs (the step claims it through the instance).
        instance.event_log_storage.initialize_concurrency_limit_to_default(BROWSER_POOL)
        claim = instance.event_log_storage.claim_concurrency_slot(BROWSER_POOL, busy.run_id, "collect")
        assert claim.is_claimed

    assert push(*mode) == 2
    assert f"browser run {busy.run_id} holds the 'browser' pool: one browser at a time" in capsys.readouterr().err
    assert rows_of(local()) == []


def test_missing_collector_fails_with_a_clear_message(landing_dir: Path, capsys: pytest.CaptureFixture) -> None:
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--api-base", production.url, "--token", TOKEN, defs=without_collector())
    assert code == 2
    err = capsys.readouterr().err
    assert "collector asset bigtop/raw/collected_events is not in the platform's definitions" in err
    assert "--no-collect" in err
    assert production.requests == []


def test_dry_run_without_collecting_prints_what_the_local_warehouse_would_send(
    landing_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    local().upsert(table=events, rows=collected_rows(3), key=KEY)
    before = rows_of(local())
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--dry-run", "--no-collect", "--api-base", production.url, "--token", TOKEN, "--batch-size", "2")
    out = capsys.readouterr().out

    assert code == 0
    assert production.requests == [] and not landing_dir.exists()
    assert rows_of(local()) == before
    assert "dry run: 3 events of source 5 in the local warehouse, in 2 batches of up to 2" in out
    assert out.count('"external_id": "collected-') == 3 and "batch 2/2:" in out


def test_refuses_to_run_with_env_production(
    landing_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("ENV", "production")
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--api-base", production.url, "--token", TOKEN)
    assert code == 2
    assert "refusing to run with ENV=production" in capsys.readouterr().err
    assert production.requests == []
    assert rows_of(local()) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "batch size must be between 1 and 500"),
        ("501", "batch size must be between 1 and 500"),
        ("many", "invalid literal"),
    ],
)
def test_batch_size_is_validated(value: str, problem: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bigtop", "push", "--no-collect", "--batch-size", value])
    assert exit_info.value.code == 2
    assert problem in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--token", TOKEN], "no API base: set BIGTOP_INGEST_API_BASE or pass --api-base"),
        (["--api-base", "https://example.org"], "no token: set BIGTOP_INGEST_TOKEN or pass --token"),
        (["--api-base", "example.org", "--token", TOKEN], "must be an http(s) URL"),
    ],
    ids=["no-base", "no-token", "bad-base"],
)
def test_missing_settings_stop_before_collecting(argv: list[str], problem: str, capsys: pytest.CaptureFixture) -> None:
    assert push(*argv) == 2
    assert problem in capsys.readouterr().err
    assert rows_of(local()) == []


def test_a_failed_batch_gives_a_non_zero_exit_and_the_rest_still_goes(
    landing_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = collected_rows(1)[0] | {"external_id": "broken@bigtopbrewing.com", "external_url": "ftp://nope"}
    local().upsert(table=events, rows=[*collected_rows(4), broken], key=KEY)
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--no-collect", "--api-base", production.url, "--token", TOKEN, "--batch-size", "2")
        accepted = sum(len(document["payload"]["events"]) for document in production.landed_documents())
    out = capsys.readouterr().out
    assert code == 1
    assert accepted == 3
    assert "batch 1/3: 2 events FAILED after 1 attempt(s): HTTP 422 validation_failed" in out
    assert "5 events sent, 3 accepted; 3 batches, 1 failed, 0 not sent" in out


def test_token_never_printed(landing_dir: Path, capsys: pytest.CaptureFixture) -> None:
    local().upsert(table=events, rows=collected_rows(3), key=KEY)
    with BigTopProduction(landing_dir, "the-server-expects-another") as production:
        wrong = push("--no-collect", "--api-base", production.url, "--token", TOKEN)
    dead = push(
        *("--no-collect", "--api-base", f"http://127.0.0.1:9/{TOKEN}", "--token", TOKEN),
        *("--max-attempts", "2", "--retry-backoff", "0"),
    )
    output = capsys.readouterr()
    assert (wrong, dead) == (1, 1)
    assert "HTTP 401 unauthorized" in output.out and "ConnectError" in output.out
    assert TOKEN not in output.out + output.err


@pytest.mark.postgres
def test_wait_loaded_prints_each_request_id_and_returns_once_production_loaded_every_batch(
    landing_dir: Path, pg_warehouse: WarehouseResource, capsys: pytest.CaptureFixture
) -> None:
    local().upsert(table=events, rows=collected_rows(5), key=KEY)
    with BigTopProduction(landing_dir, TOKEN) as production, ThreadPoolExecutor(1) as pool:
        pushing = pool.submit(
            push,
            *("--no-collect", "--api-base", production.url, "--token", TOKEN, "--batch-size", "2"),
            *("--wait-loaded", "--wait-timeout", "120"),
        )
        # Production's side once the three batches have landed: the landing sensor and the runs it asks for.
        while len(production.landed_documents()) < 3 and not pushing.done():
            time.sleep(0.1)
        load_landed_batches(landing_dir, pg_warehouse)
        code = pushing.result(timeout=180)
    out = capsys.readouterr().out
    request_ids = re.findall(r"-> HTTP 202, \d+ accepted, request ([0-9a-f]{32})", out)
    assert code == 0, out
    assert len(request_ids) == 3
    assert all(f"request {request_id}: loaded" in out for request_id in request_ids)
    assert "wait ok: 3 batches: 3 loaded" in out
    assert TOKEN not in out


def test_wait_loaded_gives_up_after_its_timeout_with_exit_3(landing_dir: Path, capsys: pytest.CaptureFixture) -> None:
    local().upsert(table=events, rows=collected_rows(3), key=KEY)
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push(
            *("--no-collect", "--api-base", production.url, "--token", TOKEN, "--batch-size", "2"),
            *("--wait-loaded", "--wait-timeout", "0.5"),
        )
    out = capsys.readouterr().out
    assert code == 3
    assert out.count(": landed") == 2
    assert "wait FAILED: 2 batches: 2 landed" in out
