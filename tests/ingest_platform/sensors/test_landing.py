"""The landing sensors' reconciliation: every inbox file is eventually requested again, whatever the cursor says or
whatever happened to the runs, without flooding the daemon with files a live run already holds."""

import time
from datetime import UTC, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.definitions import defs
from ingest_platform.landing import LandingZone
from ingest_platform.sensors.bigtop import bigtop_landing_sensor
from ingest_platform.sensors.landing import RECONCILE_TAG, STREAM_TAG, LandingCursor
from ingest_platform.warehouse.tables import events, landing_ledger
from tests.landing_files import bigtop_batch, bigtop_event, land, loaded
from tests.support.landing_runs import tick, tick_and_launch
from tests.support.tcp_proxy import TcpProxy

STREAM = "bigtop_events"
OP = "bigtop__raw__pushed_events"
SECOND = 1_000_000_000


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def files_of(result: dg.SensorResult) -> list[str]:
    return [name for request in result.run_requests for name in request.run_config["ops"][OP]["config"]["files"]]


def cursor_at(name: str, epoch: int = 0) -> str:
    return LandingCursor(newest=name, epoch=epoch).serialize()


@pytest.mark.parametrize(
    ("below_cursor_s", "bound_minutes", "requested"),
    [
        pytest.param(3_600, None, True, id="an-hour-below-the-cursor"),
        pytest.param(5, None, False, id="5s-below-waits-for-the-bound"),
        pytest.param(5, "0", True, id="5s-below-with-a-zero-bound"),
        pytest.param(400, "5", True, id="past-a-5-minute-bound"),
    ],
)
def test_a_file_named_below_the_cursor_is_asked_for_once_it_is_overdue(
    tmp_path, instance, monkeypatch, below_cursor_s: int, bound_minutes: str | None, requested: bool
) -> None:
    if bound_minutes is not None:
        monkeypatch.setenv("LANDING_RECONCILE_MINUTES", bound_minutes)
    now = time.time_ns()
    newest = land(tmp_path, STREAM, {}, at_ns=now - 2 * SECOND)
    LandingZone(tmp_path).archive(STREAM, loaded(newest))  # requested and loaded long ago
    skewed = land(tmp_path, STREAM, {}, at_ns=now - 2 * SECOND - below_cursor_s * SECOND)

    result = tick(bigtop_landing_sensor, tmp_path, instance, cursor_at(newest, epoch=7))

    assert files_of(result) == ([skewed] if requested else [])
    if requested:
        [request] = result.run_requests
        assert request.tags[RECONCILE_TAG] == "8"
        assert "/reconcile/8-" in request.run_key
        assert LandingCursor.parse(result.cursor) == LandingCursor(newest=newest, epoch=8)


@pytest.mark.parametrize(
    ("status", "bound_minutes", "requested"),
    [
        pytest.param(dg.DagsterRunStatus.NOT_STARTED, "0", False, id="created-not-yet-launched"),
        pytest.param(dg.DagsterRunStatus.STARTED, "0", False, id="in-progress"),
        pytest.param(dg.DagsterRunStatus.FAILURE, None, False, id="failed-just-now-leaves-the-retry-its-turn"),
        pytest.param(dg.DagsterRunStatus.FAILURE, "0", True, id="failed-past-the-bound"),
        pytest.param(dg.DagsterRunStatus.SUCCESS, "0", True, id="succeeded-but-left-in-the-inbox"),
    ],
)
def test_a_file_a_live_run_holds_is_not_asked_for_again(
    tmp_path, instance, monkeypatch, status, bound_minutes: str | None, requested: bool
) -> None:
    if bound_minutes is not None:
        monkeypatch.setenv("LANDING_RECONCILE_MINUTES", bound_minutes)
    name = land(tmp_path, STREAM, {}, at_ns=time.time_ns() - 3_600 * SECOND)
    first = tick(bigtop_landing_sensor, tmp_path, instance, None)
    [request] = first.run_requests
    instance.create_run_for_job(
        job_def=defs.resolve_job_def("bigtop_push_load_job"),
        run_config=request.run_config,
        tags=request.tags,
        status=status,
    )

    again = tick(bigtop_landing_sensor, tmp_path, instance, first.cursor)

    assert files_of(again) == ([name] if requested else [])


def test_reconciliation_run_keys_never_repeat_even_after_a_cursor_reset(tmp_path, instance) -> None:
    land(tmp_path, STREAM, {}, at_ns=time.time_ns() - 3_600 * SECOND)
    newest = land(tmp_path, STREAM, {}, at_ns=time.time_ns() - 2 * SECOND)
    keys = []
    for cursor in (cursor_at(newest), cursor_at(newest), cursor_at(newest)):  # the same cursor: a reset
        keys += [request.run_key for request in tick(bigtop_landing_sensor, tmp_path, instance, cursor).run_requests]
    assert len(keys) == len(set(keys)) == 3


def test_overdue_files_share_the_tick_cap_with_new_ones(tmp_path, instance) -> None:
    old = time.time_ns() - 3_600 * SECOND
    overdue = sorted(land(tmp_path, STREAM, {}, at_ns=old + i) for i in range(2_100))
    result = tick(bigtop_landing_sensor, tmp_path, instance, cursor_at(f"{time.time_ns():020d}-x.json"))
    assert files_of(result) == overdue[:2_000]
    assert all(len(request.run_config["ops"][OP]["config"]["files"]) <= 100 for request in result.run_requests)


@pytest.mark.parametrize(
    ("landed", "reason"),
    [
        pytest.param(
            datetime(2023, 12, 31, 23, 59, tzinfo=UTC),
            "2023-12-31, before the first partition (2024-01-01)",
            id="the-day-before-the-first-partition",
        ),
        pytest.param(datetime(1970, 1, 1, tzinfo=UTC), "1970-01-01, before the first partition", id="a-zero-clock"),
        pytest.param(datetime(2200, 1, 1, tzinfo=UTC), "s ahead of this clock", id="a-clock-far-ahead"),
    ],
)
def test_a_file_whose_name_no_partition_can_take_is_quarantined_and_the_stream_goes_on(
    tmp_path, instance, landed: datetime, reason: str
) -> None:
    early = land(tmp_path, STREAM, {}, at_ns=int(landed.timestamp() * SECOND))
    good = land(tmp_path, STREAM, {}, at_ns=time.time_ns() - 5 * SECOND)

    result = tick(bigtop_landing_sensor, tmp_path, instance, None)

    assert files_of(result) == [good]
    assert LandingZone(tmp_path).is_quarantined(STREAM, early)
    assert reason in (tmp_path / "quarantine" / STREAM / f"{early}.reason").read_text()
    assert not tick(bigtop_landing_sensor, tmp_path, instance, result.cursor).run_requests


def test_a_file_named_a_little_ahead_waits_for_its_time(tmp_path, instance) -> None:
    ahead = land(tmp_path, STREAM, {}, at_ns=time.time_ns() + 600 * SECOND)
    assert files_of(tick(bigtop_landing_sensor, tmp_path, instance, None)) == []
    assert LandingZone(tmp_path).pending(STREAM, limit=10) == [ahead]


@pytest.fixture(params=["sqlite", "postgresql"])
def flaky_warehouse(request, tmp_path, monkeypatch):
    """A warehouse the test takes down and brings back: (down, up) callables, DATABASE_URL set for the runs."""
    if request.param == "sqlite":
        path = tmp_path / "warehouse.sqlite"
        monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
        # A directory in the database file's place: SQLite cannot open it, like a volume that is not mounted.
        yield (lambda: path.mkdir()), (lambda: path.rmdir())
        return
    postgres_url = request.getfixturevalue("pg_warehouse").url
    url = sa.make_url(postgres_url)
    proxy = TcpProxy(url.host, url.port)
    monkeypatch.setenv("DATABASE_URL", url.set(port=proxy.port).render_as_string(hide_password=False))
    try:
        yield proxy.stop, proxy.start
    finally:
        proxy.stop()


def test_files_of_runs_that_failed_through_every_retry_load_once_the_warehouse_is_back(
    tmp_path, instance, monkeypatch, flaky_warehouse
) -> None:
    from ingest_platform.resources.warehouse import WarehouseResource, dispose_engines

    down, up = flaky_warehouse
    monkeypatch.setenv("LANDING_RECONCILE_MINUTES", "0")
    landing_dir = tmp_path / "landing"
    monkeypatch.setenv("LANDING_DIR", str(landing_dir))
    names = [
        land(landing_dir, STREAM, bigtop_batch(bigtop_event(f"e{n}")), at_ns=time.time_ns() - 5 * SECOND - n)
        for n in range(3)
    ]
    down()
    dispose_engines()

    cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, None)
    assert outcomes == [[False, False]]  # the run and its retry
    cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, cursor)
    assert outcomes == [[False, False]]  # asked again, still down
    assert LandingZone(landing_dir).pending(STREAM, limit=10) == sorted(names)
    assert LandingZone(landing_dir).quarantined(STREAM) == []

    up()
    cursor, outcomes = tick_and_launch(bigtop_landing_sensor, landing_dir, instance, cursor)
    assert outcomes == [[True]]
    assert tick_and_launch(bigtop_landing_sensor, landing_dir, instance, cursor)[1] == []
    warehouse = WarehouseResource()
    with warehouse.engine.connect() as connection:
        assert sorted(connection.scalars(sa.select(events.c.external_id))) == ["e0", "e1", "e2"]
        assert sorted(connection.scalars(sa.select(landing_ledger.c.file_name))) == sorted(names)
    runs = instance.get_run_records(filters=dg.RunsFilter(tags={STREAM_TAG: STREAM}))
    assert len(runs) == 5


def test_a_file_just_landed_is_asked_for_at_the_next_tick_and_only_once(tmp_path, instance) -> None:
    just_now = land(tmp_path, STREAM, {}, at_ns=time.time_ns())

    first = tick(bigtop_landing_sensor, tmp_path, instance, None)
    again = tick(bigtop_landing_sensor, tmp_path, instance, first.cursor)

    assert files_of(first) == [just_now]
    assert files_of(again) == []
    assert just_now in LandingCursor.parse(first.cursor).recent


def test_a_file_renamed_late_below_a_requested_one_is_asked_for_at_the_next_tick(tmp_path, instance) -> None:
    now = time.time_ns()
    later = land(tmp_path, STREAM, {}, at_ns=now - SECOND // 10)
    first = tick(bigtop_landing_sensor, tmp_path, instance, None)
    # A writer that named its file before `later`'s but renamed it after the tick: still inside the settle window.
    stalled = land(tmp_path, STREAM, {}, at_ns=now - SECOND // 5)

    again = tick(bigtop_landing_sensor, tmp_path, instance, first.cursor)

    assert files_of(first) == [later]
    assert files_of(again) == [stalled]
    assert not any(RECONCILE_TAG in request.tags for request in again.run_requests)


@pytest.mark.parametrize(
    ("cursor", "requested", "limit", "expected"),
    [
        pytest.param(
            LandingCursor(newest="1"), ["2", "5"], None, LandingCursor(newest="2", recent=("5",)), id="settled-and-not"
        ),
        pytest.param(
            LandingCursor(newest="1", recent=("2", "6")),
            ["7"],
            None,
            LandingCursor(newest="2", recent=("6", "7")),
            id="recent-names-settle",
        ),
        pytest.param(
            LandingCursor(newest="1", recent=("3",)),
            ["2"],
            "25",
            LandingCursor(newest="2", recent=("3",)),
            id="never-past-a-file-left-for-later",
        ),
        pytest.param(LandingCursor(newest="4", epoch=3), [], None, LandingCursor(newest="4", epoch=3), id="nothing"),
    ],
)
def test_the_cursor_moves_only_over_settled_names(cursor, requested, limit, expected) -> None:
    assert cursor.after_requesting(requested, settled_below="5", limit=limit) == expected
    assert LandingCursor.parse(expected.serialize()) == expected


def test_a_cursor_of_an_earlier_release_still_parses() -> None:
    assert LandingCursor.parse('{"epoch": 2, "newest": "9"}') == LandingCursor(newest="9", epoch=2)
    assert LandingCursor.parse("9") == LandingCursor(newest="9")
