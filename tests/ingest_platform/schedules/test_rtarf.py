"""The RTARF sync schedule: interval validation, partitions requested per tick, overlap protection."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from ingest_platform.assets.rtarf import rtarf_events_asset, rtarf_sync_job
from ingest_platform.resources.elasticsearch import ElasticsearchResource
from ingest_platform.resources.rtarf import RtarfSettingsResource, lookback_days
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.schedules.rtarf import (
    TRIGGER_TAG,
    build_rtarf_sync_schedule,
    cron_for_interval,
    interval_seconds,
    sync_enabled,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, 300, id="unset-defaults-to-300"),
        pytest.param("", 300, id="empty-defaults-to-300"),
        pytest.param("60", 60, id="one-minute"),
        pytest.param(" 600 ", 600, id="whitespace"),
        pytest.param("420", 420, id="seven-minutes"),
    ],
)
def test_valid_intervals(raw: str | None, expected: int):
    assert interval_seconds(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param("30", "must be at least 60", id="too-short"),
        pytest.param("90", "must be a whole number of minutes .* use 60 or 120", id="not-whole-minutes"),
        pytest.param("5m", "must be a number of seconds, got '5m'", id="not-a-number"),
        pytest.param("-60", "must be at least 60", id="negative"),
    ],
)
def test_invalid_intervals_name_the_variable_and_the_problem(raw: str, problem: str):
    with pytest.raises(ValueError, match=f"RTARF_SYNC_INTERVAL_SECONDS {problem}"):
        interval_seconds(raw)


@pytest.mark.parametrize(
    ("seconds", "cron"),
    [
        pytest.param(60, "* * * * *", id="1m"),
        pytest.param(300, "*/5 * * * *", id="5m"),
        pytest.param(1800, "*/30 * * * *", id="30m"),
        pytest.param(3600, "0 * * * *", id="1h"),
        pytest.param(5400, "* * * * *", id="90m-filtered-per-tick"),
        pytest.param(172800, "* * * * *", id="2d-filtered-per-tick"),
        pytest.param(21600, "0 */6 * * *", id="6h"),
        pytest.param(86400, "0 0 * * *", id="1d"),
        pytest.param(420, "* * * * *", id="7m-filtered-per-tick"),
    ],
)
def test_cron_for_interval(seconds: int, cron: str):
    assert cron_for_interval(seconds) == cron


@pytest.mark.parametrize(
    ("raw", "enabled"),
    [pytest.param("true", True, id="true"), pytest.param("1", True, id="1"), pytest.param(None, False, id="unset")],
)
def test_enabled_sets_the_default_status(raw: str | None, enabled: bool, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RTARF_SYNC_INTERVAL_SECONDS", raising=False)
    if raw is None:
        monkeypatch.delenv("RTARF_SYNC_ENABLED", raising=False)
    else:
        monkeypatch.setenv("RTARF_SYNC_ENABLED", raw)
    expected = dg.DefaultScheduleStatus.RUNNING if enabled else dg.DefaultScheduleStatus.STOPPED
    assert build_rtarf_sync_schedule().default_status == expected


def test_an_invalid_enabled_value_is_an_error():
    with pytest.raises(ValueError, match="RTARF_SYNC_ENABLED must be true or false, got 'maybe'"):
        sync_enabled("maybe")


def test_the_interval_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RTARF_SYNC_INTERVAL_SECONDS", "600")
    schedule = build_rtarf_sync_schedule()
    assert (schedule.cron_schedule, schedule.metadata["interval_seconds"].value) == ("*/10 * * * *", 600)


def repository_with(schedule: dg.ScheduleDefinition) -> dg.RepositoryDefinition:
    return dg.Definitions(
        assets=[rtarf_events_asset],
        jobs=[rtarf_sync_job],
        schedules=[schedule],
        resources={
            "elasticsearch": ElasticsearchResource(url="http://127.0.0.1:9"),
            "warehouse": WarehouseResource(),
            "rtarf_settings": RtarfSettingsResource(),
        },
    ).get_repository_def()


def tick(
    schedule: dg.ScheduleDefinition,
    at: datetime,
    instance: dg.DagsterInstance,
    repository: dg.RepositoryDefinition | None = None,
    elasticsearch: ElasticsearchResource | None = None,
):
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=at,
        repository_def=repository or repository_with(schedule),
        resources={
            "rtarf_settings": RtarfSettingsResource(),
            "elasticsearch": elasticsearch or ElasticsearchResource(url="http://127.0.0.1:9"),
        },
    ) as context:
        return schedule.evaluate_tick(context)


LOOKBACK = "lookback"
SCHEDULE = "schedule"


@pytest.mark.parametrize(
    ("at", "lookback", "requested"),
    [
        pytest.param(datetime(2025, 11, 14, 10, 5, tzinfo=UTC), 3, [("2025-11-14", SCHEDULE)], id="during-the-day"),
        pytest.param(
            datetime(2025, 11, 14, 0, 55, tzinfo=UTC),
            3,
            [("2025-11-14", SCHEDULE), ("2025-11-13", SCHEDULE)],
            id="first-hour",
        ),
        pytest.param(
            datetime(2025, 11, 14, 1, 5, tzinfo=UTC), 3, [("2025-11-14", SCHEDULE)], id="after-the-first-hour"
        ),
        pytest.param(
            datetime(2025, 11, 14, 10, 0, tzinfo=UTC),
            3,
            [("2025-11-14", SCHEDULE), ("2025-11-13", LOOKBACK), ("2025-11-12", LOOKBACK), ("2025-11-11", LOOKBACK)],
            id="first-tick-of-an-hour-looks-back",
        ),
        pytest.param(
            datetime(2025, 11, 14, 10, 4, tzinfo=UTC),
            2,
            [("2025-11-14", SCHEDULE), ("2025-11-13", LOOKBACK), ("2025-11-12", LOOKBACK)],
            id="look-back-of-two-days",
        ),
        pytest.param(
            datetime(2025, 11, 14, 0, 0, tzinfo=UTC),
            3,
            [("2025-11-14", SCHEDULE), ("2025-11-13", SCHEDULE), ("2025-11-12", LOOKBACK), ("2025-11-11", LOOKBACK)],
            id="midnight-yesterday-whole-then-the-look-back",
        ),
        pytest.param(datetime(2025, 11, 14, 10, 0, tzinfo=UTC), 0, [("2025-11-14", SCHEDULE)], id="look-back-off"),
        pytest.param(
            datetime(2024, 1, 1, 0, 0, tzinfo=UTC),
            3,
            [("2024-01-01", SCHEDULE)],
            id="no-partition-before-the-start",
        ),
    ],
)
def test_a_tick_requests_today_yesterday_in_the_first_hour_and_hourly_the_look_back(
    at: datetime, lookback: int, requested: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RTARF_LOOKBACK_DAYS", str(lookback))
    with dg.instance_for_test() as instance:
        result = tick(build_rtarf_sync_schedule(300, True), at, instance)

    assert [(request.partition_key, request.tags[TRIGGER_TAG]) for request in result.run_requests] == requested
    for request in result.run_requests:
        config = request.run_config.get("ops", {}).get("rtarf__raw__events", {}).get("config", {})
        assert config.get("only_if_changed", False) is (request.tags[TRIGGER_TAG] == LOOKBACK)
    assert len({request.run_key for request in result.run_requests}) == len(requested)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, 3, id="unset-defaults-to-3"),
        pytest.param(" 7 ", 7, id="seven"),
        pytest.param("0", 0, id="off"),
    ],
)
def test_look_back_days(raw: str | None, expected: int):
    assert lookback_days(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param("three", "whole number of days", id="not-a-number"),
        pytest.param("-1", "between 0 and 31", id="negative"),
        pytest.param("90", "between 0 and 31", id="too-many"),
    ],
)
def test_invalid_look_back_days_name_the_variable(raw: str, problem: str):
    with pytest.raises(ValueError, match=problem) as raised:
        lookback_days(raw)
    assert "RTARF_LOOKBACK_DAYS" in str(raised.value)


def test_the_look_back_is_read_when_the_tick_starts_not_when_the_schedule_is_built(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RTARF_LOOKBACK_DAYS", "5")
    schedule = build_rtarf_sync_schedule(300, True)
    monkeypatch.setenv("RTARF_LOOKBACK_DAYS", "1")
    with dg.instance_for_test() as instance:
        result = tick(schedule, datetime(2025, 11, 14, 10, 0, tzinfo=UTC), instance)
    assert [request.partition_key for request in result.run_requests] == ["2025-11-14", "2025-11-13"]


def test_an_invalid_look_back_fails_the_tick_naming_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RTARF_LOOKBACK_DAYS", "forty")
    with dg.instance_for_test() as instance, pytest.raises(dg.DagsterUserCodeExecutionError) as raised:
        tick(build_rtarf_sync_schedule(300, True), datetime(2025, 11, 14, 10, 0, tzinfo=UTC), instance)
    assert str(raised.value.user_exception) == "RTARF_LOOKBACK_DAYS must be a whole number of days, got 'forty'"


def test_a_day_whose_sync_is_still_running_is_not_requested_again():
    at = datetime(2025, 11, 14, 0, 10, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        instance.add_run(
            dg.DagsterRun(
                job_name=rtarf_sync_job.name,
                run_id="still-running",
                status=dg.DagsterRunStatus.STARTED,
                tags={"dagster/partition": "2025-11-14"},
            )
        )
        result = tick(build_rtarf_sync_schedule(300, True), at, instance)

    assert [request.partition_key for request in result.run_requests] == ["2025-11-13"]


def test_an_interval_cron_cannot_express_is_kept_exactly_by_skipping_ticks():
    schedule = build_rtarf_sync_schedule(420, True)
    repository = repository_with(schedule)
    due = []
    with dg.instance_for_test() as instance:
        for minute in range(15):
            at = datetime(2025, 11, 14, 10, minute, tzinfo=UTC)
            if tick(schedule, at, instance, repository).run_requests:
                due.append(minute)

    # Every 7 minutes, counted from the epoch so the rhythm survives hour and day boundaries.
    assert len(due) == 2
    assert due[1] - due[0] == 7


def test_without_the_cluster_url_a_tick_skips_saying_what_to_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ELASTICSEARCH_URL", raising=False)
    schedule = build_rtarf_sync_schedule(interval=300, enabled=True)
    repository = dg.Definitions(
        assets=[rtarf_events_asset],
        jobs=[rtarf_sync_job],
        schedules=[schedule],
        resources={
            "elasticsearch": ElasticsearchResource(),
            "rtarf_settings": RtarfSettingsResource(),
            "warehouse": WarehouseResource(),
        },
    ).get_repository_def()

    with dg.instance_for_test() as instance:
        result = tick(
            schedule, datetime(2025, 11, 14, 10, 5, tzinfo=UTC), instance, repository, ElasticsearchResource()
        )

    assert result.run_requests == []
    assert result.skip_message == "RTARF is not configured: set ELASTICSEARCH_URL (see the README's Environment table)"
