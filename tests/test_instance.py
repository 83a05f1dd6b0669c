"""The Dagster instance as dagster.yaml configures it."""

import yaml
from dagster._core.storage.dagster_run import DagsterRunStatus

from tests.support.dagster_queue import PROJECT_DAGSTER_YAML, project_instance_config, project_run_queue


def test_without_the_pools_block_both_browser_runs_start() -> None:
    """Proves tests/ingest_platform/test_browser_queue.py measures dagster.yaml, not a default of Dagster's."""
    config = project_instance_config()
    del config["concurrency"]["pools"]
    with project_run_queue(config) as queue:
        runs = [queue.submit("bigtop_probe") for _ in range(2)]
        queue.tick()
        assert [queue.status(run) for run in runs] == [DagsterRunStatus.STARTING, DagsterRunStatus.STARTING]


def test_dagster_yaml_gives_pools_one_slot_monitors_runs_and_retries_only_runs_that_died() -> None:
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    # The browser pool replaced the browser run tag; the one tag limit left keeps the rollups to one run at a time.
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": "ingest_platform/rollup", "value": "app", "limit": 1}
    ]
    assert config["run_monitoring"]["enabled"] is True, "dagster/max_runtime needs run monitoring"
    assert config["run_retries"]["enabled"] is True
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["telemetry"]["enabled"] is False
    assert "QueuedRunCoordinator" in config["run_coordinator"]["class"]


def test_dagster_postgres_variables_switch_instance_storage_to_postgresql(
    fresh_postgres_url, tmp_path, monkeypatch
) -> None:
    """scripts/run appends docker/dagster.storage-postgres.yaml when DAGSTER_POSTGRES_* is set; it must work with
    psycopg2 (SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not installed)."""
    import dagster as dg
    import sqlalchemy as sa

    url = sa.make_url(fresh_postgres_url)
    for name, value in {
        "HOST": url.host,
        "PORT": str(url.port),
        "USER": url.username,
        "PASSWORD": "",
        "DB": url.database,
    }.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{name}", value)
    storage = PROJECT_DAGSTER_YAML.parent / "docker" / "dagster.storage-postgres.yaml"
    (tmp_path / "dagster.yaml").write_text(PROJECT_DAGSTER_YAML.read_text() + "\n" + storage.read_text())
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        run = instance.create_run_for_job(dg.GraphDefinition(name="noop").to_job())
        assert instance.get_run_by_id(run.run_id) is not None
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_a_run_whose_step_fails_is_not_retried_and_a_run_that_died_is() -> None:
    """A step failure is bad configuration or data (a second try fails the same way); a dead run worker is not."""
    import dagster as dg
    from dagster._core.events import RunFailureReason
    from dagster._daemon.auto_run_reexecution.auto_run_reexecution import auto_reexecution_should_retry_run

    @dg.op
    def misconfigured() -> None:
        raise dg.Failure("ELASTICSEARCH_URL is not set")

    @dg.job
    def needs_settings() -> None:
        misconfigured()

    with dg.instance_for_test(overrides=project_instance_config()) as instance:
        result = needs_settings.execute_in_process(instance=instance, raise_on_error=False)
        run = instance.get_run_by_id(result.run_id)
        assert run.status == DagsterRunStatus.FAILURE
        assert run.tags.get("dagster/will_retry") == "false"
        assert auto_reexecution_should_retry_run(instance, run, RunFailureReason.UNEXPECTED_TERMINATION)


def test_the_instance_dequeues_every_second_and_ticks_sensors_on_threads(tmp_path) -> None:
    """The daemon settings behind P5's 202 → rows (README), read back through Dagster so a misspelt key fails."""
    import dagster as dg

    with dg.instance_for_test(overrides=project_instance_config(), temp_dir=str(tmp_path)) as instance:
        assert instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.run_coordinator.dequeue_use_threads is True
        assert instance.get_settings("sensors")["use_threads"] is True
        assert instance.get_settings("sensors")["num_workers"] >= 7, "a thread for each sensor of the definitions"
