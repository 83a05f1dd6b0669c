"""`ingest-platform bigtop push`: local SQLite platform → the real webhook app on loopback → PostgreSQL.

The collector asset (bigtop/raw/collected_events) is built in parallel with the bridge; until it is merged, the
collect step runs a stand-in asset under the same key, partitioned and configured as the issue describes it.
"""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.bigtop.bridge import COLLECTOR_KEY
from ingest_platform.cli import build_parser, main
from ingest_platform.cli.bigtop import run_push
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.settings import REPO_ROOT
from ingest_platform.tags import BROWSER_RUN_TAGS
from ingest_platform.warehouse.tables import events
from tests.fakes.bigtop_production import BigTopProduction, SlowAfterLanding, Status, load_landed_batches

TOKEN = "cli-token-7d2e4b1a90"
KEY = ["source_id", "external_id"]
EVENT_COLUMNS = ["external_id", "title", "start_utc", "end_utc", "description", "location", "external_url"]


def collected_rows(count: int, *, title: str = "Bingo") -> list[dict]:
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


class StandInCollectorConfig(dg.Config):
    future_only: bool = False
    limit: int | None = None
    delay_s: float = 0.25


@dg.asset(
    key=COLLECTOR_KEY,
    group_name="bigtop",
    partitions_def=dg.DailyPartitionsDefinition(start_date="2026-01-01", end_offset=30, timezone="America/New_York"),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def stand_in_collector(
    context: dg.AssetExecutionContext, config: StandInCollectorConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Writes what the real collector would have found on the site: 7 future events of source 5."""
    result = warehouse.upsert(table=events, rows=collected_rows(7), key=KEY)
    key_range = context.partition_key_range
    return dg.MaterializeResult(
        metadata={
            "range": f"{key_range.start}..{key_range.end}",
            "config": dg.MetadataValue.json(config.model_dump()),
            **result.as_metadata(),
        }
    )


@dg.asset(key=COLLECTOR_KEY, group_name="bigtop")
def challenged_collector() -> None:
    raise RuntimeError("Cloudflare challenge on the page: HTTP 403")


stand_in_collect_job = dg.define_asset_job(
    "bigtop_collect_job", selection=[stand_in_collector], tags={**BROWSER_RUN_TAGS, "dagster/max_runtime": "1800"}
)


def with_collector() -> dg.Definitions:
    return dg.Definitions(
        assets=[stand_in_collector], jobs=[stand_in_collect_job], resources={"warehouse": WarehouseResource()}
    )


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
    return run_push(build_parser().parse_args(["bigtop", "push", *argv]), defs=defs or with_collector())


@pytest.fixture
def landing_dir(tmp_path: Path) -> Path:
    return tmp_path / "prod-landing"


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
def test_collect_push_and_load_into_postgres_loses_and_duplicates_nothing(
    landing_dir: Path, pg_warehouse: WarehouseResource, failures: list, capsys: pytest.CaptureFixture
) -> None:
    with BigTopProduction(landing_dir, TOKEN, failures=failures) as production:
        code = push(
            *("--api-base", production.url, "--token", TOKEN, "--batch-size", "3"),
            *("--timeout", "0.4", "--retry-backoff", "0.01"),
        )
        landed = production.landed_documents()
    output = capsys.readouterr()

    assert code == 0, output.err
    collected = rows_of(local())
    assert len(collected) == 7
    # A timed-out batch was durable already: production holds it twice, the load must still count it once.
    assert len(landed) == 3 + (2 if failures and isinstance(failures[0], SlowAfterLanding) else 0)
    load_landed_batches(landing_dir, pg_warehouse)
    assert rows_of(pg_warehouse) == collected
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


def test_collect_materializes_the_collector_on_the_persistent_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    code = push("--no-push-prod", "--future-only", "--limit", "40", "--delay", "0")

    assert code == 0, capsys.readouterr().err
    assert len(rows_of(local())) == 7
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        materialization = instance.get_latest_materialization_event(COLLECTOR_KEY).asset_materialization
    assert run.is_success
    assert run.job_name == "bigtop_collect_job"
    assert run.tags.items() >= {**BROWSER_RUN_TAGS, "dagster/max_runtime": "1800"}.items()
    today_new_york = datetime.now(ZoneInfo("America/New_York")).date()
    assert run.tags["dagster/asset_partition_range_start"] == today_new_york.isoformat()
    # --delay paces the push's batches; the collector keeps its own pacing.
    assert materialization.metadata["config"].value == {"future_only": True, "limit": 40, "delay_s": 0.25}
    assert f"collected in run {run.run_id}" in capsys.readouterr().out


def test_collect_refuses_while_another_browser_run_is_in_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        job = with_collector().resolve_implicit_global_asset_job_def()
        busy = instance.create_run_for_job(job, tags=BROWSER_RUN_TAGS, status=dg.DagsterRunStatus.STARTED)

    assert push("--no-push-prod") == 2
    assert f"browser run {busy.run_id} is started: one browser at a time" in capsys.readouterr().err
    assert rows_of(local()) == []


def test_missing_collector_fails_with_a_clear_message(landing_dir: Path, capsys: pytest.CaptureFixture) -> None:
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--api-base", production.url, "--token", TOKEN, defs=without_collector())
    assert code == 2
    err = capsys.readouterr().err
    assert "collector asset bigtop/raw/collected_events is not in the platform's definitions" in err
    assert "--no-collect" in err
    assert production.requests == []


def test_a_failed_collection_stops_before_pushing(landing_dir: Path, capsys: pytest.CaptureFixture) -> None:
    local().upsert(table=events, rows=collected_rows(2), key=KEY)
    failing = dg.Definitions(assets=[challenged_collector])
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--api-base", production.url, "--token", TOKEN, defs=failing)
    assert code == 2
    err = capsys.readouterr().err
    assert "the collector run " in err and "failed: RuntimeError: Cloudflare challenge on the page: HTTP 403" in err
    assert production.requests == []


def test_dry_run_prints_the_batches_and_collects_writes_and_posts_nothing(
    landing_dir: Path, capsys: pytest.CaptureFixture
) -> None:
    local().upsert(table=events, rows=collected_rows(3), key=KEY)
    before = rows_of(local())
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--dry-run", "--api-base", production.url, "--token", TOKEN, "--batch-size", "2")
    out = capsys.readouterr().out

    assert code == 0
    assert production.requests == [] and not landing_dir.exists()
    assert rows_of(local()) == before, "the stand-in collector would have added 4 events"
    assert "dry run: 3 events of source 5 in 2 batches of up to 2; nothing collected, written or posted" in out
    assert out.count('"external_id": "collected-') == 3 and "batch 2/2:" in out


def test_no_push_prod_collects_locally_and_posts_nothing(landing_dir: Path, capsys: pytest.CaptureFixture) -> None:
    with BigTopProduction(landing_dir, TOKEN) as production:
        code = push("--no-push-prod", "--api-base", production.url, "--token", TOKEN)
    assert code == 0
    assert production.requests == []
    assert len(rows_of(local())) == 7
    assert "--no-push-prod: 7 events of source 5 stay local; nothing posted" in capsys.readouterr().out


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
