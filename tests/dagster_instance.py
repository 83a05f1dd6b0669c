"""An in-process Dagster instance configured by the project's dagster.yaml, with the queue ticked by hand.

These are Dagster's private test hooks (MockedRunLauncher, the queued-run daemon, in-process code locations); they
move between releases, so every test that needs them goes through this module.
"""

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import yaml
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def project_instance_config(**changes) -> dict:
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
    # Launched runs stay "in progress" (STARTING) in the mocked launcher, which is what a queue test needs.
    config["run_launcher"] = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    config.update(changes)
    return config


class QueueHarness:
    def __init__(self, context: WorkspaceProcessContext) -> None:
        self.context = context
        self.instance = context.instance
        self._daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)

    def submit(self, job_name: str, *, tags: Mapping[str, str] | None = None) -> str:
        """Queue a run of `job_name` from the project's code location, as the UI or a sensor would."""
        location = self.context.create_request_context().get_code_location(self.context.code_location_names[0])
        repository = next(iter(location.get_repositories().values()))
        remote_job = repository.get_full_job(job_name)
        run = create_run_for_test(
            self.instance,
            job_name=job_name,
            status=DagsterRunStatus.NOT_STARTED,
            tags={**remote_job.tags, **(tags or {})},
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
        )
        self.instance.submit_run(run.run_id, self.context.create_request_context())
        return run.run_id

    def tick(self) -> None:
        """One pass of the queued-run coordinator daemon."""
        list(self._daemon.run_iteration(self.context))

    def status(self, run_id: str) -> DagsterRunStatus:
        run: DagsterRun | None = self.instance.get_run_by_id(run_id)
        assert run is not None
        return run.status

    def finish(self, run_id: str) -> None:
        self.instance.report_run_failed(self.instance.get_run_by_id(run_id))


@contextmanager
def queue_harness(config: dict | None = None, module: str = "ingest_platform.definitions") -> Iterator[QueueHarness]:
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=module, attribute="defs"),
        location_name="ingest_platform",
    )
    with (
        dg.instance_for_test(overrides=config if config is not None else project_instance_config()) as instance,
        WorkspaceProcessContext(instance, InProcessWorkspaceLoadTarget([origin])) as context,
    ):
        yield QueueHarness(context)
