"""The rollup assets in Dagster: late data reaches every later day through the sensor with no one acting, the
materializations carry their figures, and every check fails on the rows it guards."""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa

from ingest_platform.app import rollups
from ingest_platform.assets import app as app_assets
from ingest_platform.resources.app import AppRollupResource
from ingest_platform.sensors.app import app_rollup_sensor
from ingest_platform.warehouse.tables import (
    author_donation_daily,
    author_metric_daily,
    leaderboard_entries,
    rollup_dirty_days,
    rule_metric_daily,
)
from tests.ingest_platform.app.rollup_fixture import event, insert_donation, insert_rules, load_events

TODAY = datetime.now(UTC).date()
ROLLUP = AppRollupResource(trending_half_life_days=1.0, trending_days=3, top_n=3)
ASSETS_AND_CHECKS = [*app_assets.APP_ROLLUP_ASSETS, *app_assets.APP_ROLLUP_CHECKS]


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def run_request(instance: dg.DagsterInstance, warehouse) -> dg.RunRequest | dg.SkipReason:
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse})
    result = app_rollup_sensor(context)
    return result


def execute(instance, warehouse, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """The run the request asks for, as the daemon would launch it (same tags, so the same partition or range)."""
    return dg.materialize(
        ASSETS_AND_CHECKS,
        instance=instance,
        partition_key=request.partition_key,
        tags=request.tags,
        resources={"warehouse": warehouse, "app_rollup": ROLLUP},
        raise_on_error=True,
    )


def run_checks(warehouse, check: dg.AssetChecksDefinition, rollup: AppRollupResource) -> dg.ExecuteInProcessResult:
    """A run of `check` alone on today's partition, as the UI's "execute check" launches it."""
    return dg.materialize(
        ASSETS_AND_CHECKS,
        selection=dg.AssetSelection.checks(check),
        tags={app_assets.PARTITION_TAG: TODAY.isoformat()},
        resources={"warehouse": warehouse, "app_rollup": rollup},
        raise_on_error=True,
    )


def all_time_board(warehouse, subject: str = "rule") -> list[tuple]:
    t = leaderboard_entries
    query = (
        sa.select(t.c.subject_id, t.c.rank, t.c.score, t.c.events)
        .where(t.c.day == TODAY, t.c.period == "all_time", t.c.subject == subject, t.c.scope == "global")
        .order_by(t.c.rank, t.c.subject_id)
    )
    with warehouse.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


def pending(warehouse):
    with warehouse.engine.connect() as connection:
        return rollups.pending(connection)


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict:
    materializations = result.asset_materializations_for_node(asset.op.name)
    return {name: getattr(value, "value", value) for name, value in materializations[-1].metadata.items()}


def test_late_data_reaches_every_later_day_through_the_sensor(warehouse) -> None:
    with warehouse.begin() as connection:
        insert_rules(connection)
        load_events(
            connection,
            [event(noon(TODAY - timedelta(days=3)), "r1", "A", "COPY"), event(noon(TODAY), "r2", "B", "VOTE")],
        )
    with dg.instance_for_test() as instance:
        request = run_request(instance, warehouse)
        assert isinstance(request, dg.RunRequest)
        assert request.tags[app_assets.RANGE_START_TAG] == (TODAY - timedelta(days=3)).isoformat()
        assert request.tags[app_assets.RANGE_END_TAG] == TODAY.isoformat()
        result = execute(instance, warehouse, request)
        assert pending(warehouse) is None  # the run cleared what it covered
        assert all(
            check.passed for check in result.get_asset_check_evaluations() if check.check_name != "yesterday_is_final"
        )
        assert all_time_board(warehouse) == [("r2", 1, 4.0, 1), ("r1", 2, 2.0, 1)]
        figures = materialization_metadata(result, app_assets.app_rule_metric_daily)
        assert (figures["days"], figures["events"]) == (4, 2)
        assert set(figures["per_day"]) == {(TODAY - timedelta(days=n)).isoformat() for n in range(4)}
        assert isinstance(run_request(instance, warehouse), dg.SkipReason)  # nothing changed since

        # An event lands today with a ts two days ago: that day and every later one are redone, nobody acting.
        with warehouse.begin() as connection:
            load_events(
                connection, [event(noon(TODAY - timedelta(days=2)), "r1", "A", "FORK", received_at=noon(TODAY))], "late"
            )
        request = run_request(instance, warehouse)
        assert request.tags[app_assets.RANGE_START_TAG] == (TODAY - timedelta(days=2)).isoformat()
        execute(instance, warehouse, request)
        assert all_time_board(warehouse) == [("r1", 1, 7.0, 2), ("r2", 2, 4.0, 1)]
        assert all_time_board(warehouse, "author") == [("a1", 1, 11.0, 3)]  # r1 and r2 are both a1's
        with warehouse.engine.connect() as connection:
            trending_today = connection.scalar(
                sa.select(rule_metric_daily.c.trending).where(
                    rule_metric_daily.c.day == TODAY, rule_metric_daily.c.rule_id == "r1"
                )
            )
        assert trending_today == 5 * 0.25  # the late FORK, two days old, half-life one day
        assert pending(warehouse) is None


def test_today_alone_is_one_partition_and_the_boards_show_in_the_metadata(warehouse) -> None:
    with warehouse.begin() as connection:
        insert_rules(connection)
        load_events(connection, [event(noon(TODAY), "r1", "A", "SAVE"), event(noon(TODAY), "r3", "B", "SAVE")])
    with dg.instance_for_test() as instance:
        request = run_request(instance, warehouse)
        assert request.partition_key == TODAY.isoformat()
        result = execute(instance, warehouse, request)
    boards = materialization_metadata(result, app_assets.app_leaderboards)
    assert boards["rows"] > 0
    assert (boards["events"], boards["dirty_days_cleared"]) == (2, 1)
    assert f"Global boards of {TODAY}" in boards["top_10"]
    assert "| 1 | r1 | 3 | 1 |" in boards["top_10"] and "| 1 | r3 | 3 | 1 |" in boards["top_10"]  # a tie
    rules_figures = materialization_metadata(result, app_assets.app_rule_metric_daily)
    assert (rules_figures["rows"], rules_figures["events"]) == (2, 2)


def test_the_sensor_waits_for_a_rollup_in_flight_and_retakes_a_failed_runs_days(warehouse) -> None:
    with warehouse.begin() as connection:
        load_events(connection, [event(noon(TODAY), "r1", "A", "SAVE")])
        rollups.claim_dirty(connection, run_id="failed-run", first_day=TODAY, through_id=10**9)
    with dg.instance_for_test() as instance:
        instance.add_run(
            dg.DagsterRun(job_name=app_assets.app_rollup_job.name, run_id="r" * 36, status=dg.DagsterRunStatus.STARTED)
        )
        assert "in flight" in run_request(instance, warehouse).skip_message
        instance.report_run_canceled(instance.get_run_by_id("r" * 36))
        # The claimed notes of a run that ended without clearing them are requested again.
        request = run_request(instance, warehouse)
        assert request.partition_key == TODAY.isoformat()
        execute(instance, warehouse, request)
    assert pending(warehouse) is None


def _rolled_up_today(warehouse, instance) -> None:
    with warehouse.begin() as connection:
        insert_rules(connection)
        rows = [event(noon(TODAY) + timedelta(minutes=15 * n), "r1", "A", "VIEW") for n in range(3)]
        load_events(connection, [*rows, event(noon(TODAY), "r2", "B", "VOTE"), event(noon(TODAY), "r3", "B", "COPY")])
        insert_donation(
            connection, "pi_1", made=noon(TODAY), status="succeeded", amount=700, currency="usd", rule_id="r1"
        )
    request = run_request(instance, warehouse)
    result = execute(instance, warehouse, request)
    failed = [check.check_name for check in result.get_asset_check_evaluations() if not check.passed]
    assert set(failed) <= {"yesterday_is_final"}


BREAKAGES = {
    "view_cap_holds": sa.update(rule_metric_daily).where(rule_metric_daily.c.rule_id == "r1").values(views=6),
    "metrics_reconcile_with_events": sa.update(rule_metric_daily)
    .where(rule_metric_daily.c.rule_id == "r2")
    .values(votes=2, events=2),
    "author_totals_match_rules": sa.update(author_metric_daily)
    .where(author_metric_daily.c.author_id == "a1")
    .values(events=author_metric_daily.c.events + 1),
    "donation_totals_match_donations": sa.delete(author_donation_daily),
    "board_ranks_are_dense": sa.update(leaderboard_entries).where(leaderboard_entries.c.rank == 2).values(rank=3),
}


@pytest.mark.parametrize("check_name", list(BREAKAGES), ids=list(BREAKAGES))
def test_each_check_fails_on_the_rows_it_guards(warehouse, check_name: str) -> None:
    [check] = [check for check in app_assets.APP_ROLLUP_CHECKS if check.check_key.name == check_name]
    with dg.instance_for_test() as instance:
        _rolled_up_today(warehouse, instance)
        with warehouse.begin() as connection:
            assert connection.execute(BREAKAGES[check_name]).rowcount > 0
        result = run_checks(warehouse, check, ROLLUP)
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed) == (check_name, False)


def test_yesterday_is_final_fails_until_yesterday_is_rolled_up_after_it_ended(warehouse) -> None:
    [check] = [check for check in app_assets.APP_ROLLUP_CHECKS if check.check_key.name == "yesterday_is_final"]
    grace_zero = AppRollupResource(final_after_hours=0)

    def evaluate() -> bool:
        [evaluation] = run_checks(warehouse, check, grace_zero).get_asset_check_evaluations()
        return evaluation.passed

    assert not evaluate()
    with warehouse.begin() as connection:
        rollups.record_day(connection, TODAY - timedelta(days=1))
        connection.execute(sa.delete(rollup_dirty_days))
    assert evaluate()


def test_one_rollup_runs_at_a_time_the_next_waits_in_the_queue() -> None:
    """dagster.yaml's limit on the rollup tag: a second app_rollup_job run (the schedule's, while the sensor's
    range runs) stays queued until the first ends, so two runs never interleave days."""
    from tests.support.dagster_queue import project_run_queue

    partition = {app_assets.PARTITION_TAG: TODAY.isoformat()}
    with project_run_queue() as queue:
        runs = [queue.submit(app_assets.app_rollup_job.name, tags=partition) for _ in range(2)]
        assert all(app_assets.ROLLUP_TAGS.items() <= queue.tags(run).items() for run in runs)
        queue.tick()
        assert [queue.status(run) for run in runs] == [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.QUEUED]
        queue.finish(runs[0])
        queue.tick()
        assert queue.status(runs[1]) == dg.DagsterRunStatus.STARTING


def test_without_the_rollup_limit_both_runs_start() -> None:
    """Proves the test above measures dagster.yaml's rollup entry, not a default of Dagster's."""
    from tests.support.dagster_queue import project_instance_config, project_run_queue

    config = project_instance_config()
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    config["concurrency"]["runs"]["tag_concurrency_limits"] = [
        limit for limit in limits if limit["key"] != app_assets.ROLLUP_TAG_KEY
    ]
    with project_run_queue(config) as queue:
        runs = [
            queue.submit(app_assets.app_rollup_job.name, tags={app_assets.PARTITION_TAG: TODAY.isoformat()})
            for _ in range(2)
        ]
        queue.tick()
        assert [queue.status(run) for run in runs] == [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTING]


def test_a_refund_landing_days_later_reaches_the_day_of_the_donation(tmp_path, warehouse) -> None:
    """Through the real intake and loader: the refund's load notes the donation's day, the sensor redoes it."""
    from tests.fakes import stripe as fake_stripe
    from tests.ingest_platform.assets.app_support import load
    from tests.ingest_platform.assets.app_support import pending as landed
    from tests.webhook_app.intake_support import STRIPE_SECRET, make_app

    landing_dir = tmp_path / "landing"
    client = make_app(landing_dir).test_client()
    made = noon(TODAY - timedelta(days=3))
    meta = {"authorId": "a9", "ruleId": "r9"}

    def deliver(event: dict) -> None:
        body, headers = fake_stripe.signed(event, STRIPE_SECRET)
        assert client.post("/ingest/stripe/webhook", data=body, headers=headers).status_code == 200
        load(app_assets.app_raw_donations, warehouse, landing_dir, landed(landing_dir, "stripe_events"))

    def donated(connection) -> list[tuple]:
        t = author_donation_daily
        query = sa.select(t.c.day, t.c.author_id, t.c.donations, t.c.amount_refunded, t.c.amount)
        return [tuple(row) for row in connection.execute(query)]

    succeeded = fake_stripe.payment_intent("pi_9", amount=1000, **meta)
    deliver(fake_stripe.event("payment_intent.succeeded", succeeded, created=int(made.timestamp())))
    with dg.instance_for_test() as instance:
        execute(instance, warehouse, run_request(instance, warehouse))
        with warehouse.engine.connect() as connection:
            assert donated(connection) == [(made.date(), "a9", 1, 0, 1000)]

        refund = fake_stripe.refunded_charge("ch_9", "pi_9", amount=1000, refunded_amount=400)
        deliver(fake_stripe.event("charge.refunded", refund))  # created now, three days after the donation
        request = run_request(instance, warehouse)
        assert request.tags[app_assets.RANGE_START_TAG] == made.date().isoformat()
        execute(instance, warehouse, request)
        with warehouse.engine.connect() as connection:
            assert donated(connection) == [(made.date(), "a9", 1, 400, 600)]
