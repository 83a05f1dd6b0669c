"""The instance's run queue, in process: the project's dagster.yaml, a mocked launcher, the coordinator ticked by hand.

These are Dagster's private test helpers; they move between releases, so they stay in this one module.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import (
    InProcessTestWorkspaceLoadTarget,
    create_test_daemon_workspace_context,
    instance_for_test,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from ingest_platform.locations import prepare_pools

REPO_ROOT = Path(__file__).resolve().parents[2]
IMPLICIT_ASSET_JOB = "__ASSET_JOB"


class RunQueue:
    def __init__(self, instance: DagsterInstance, workspace: WorkspaceProcessContext) -> None:
        self.instance = instance
        self.workspace = workspace

    def submit(self, job_name: str, tags: dict[str, str] | None = None) -> str:
        """Launch as the UI does (GraphQL), so the job's own tags are merged in; with the queued coordinator
        the run is QUEUED."""
        return self._launch(job_name, tags)

    def submit_asset(self, asset_key: str, tags: dict[str, str] | None = None) -> str:
        """Materialize one asset as its asset page does: the implicit asset job with that asset selected."""
        return self._launch(IMPLICIT_ASSET_JOB, tags, asset_selection=[{"path": asset_key.split("/")}])

    def _launch(self, job_name: str, tags: dict[str, str] | None, asset_selection: list | None = None) -> str:
        context = self.workspace.create_request_context()
        location, repository = self._location_of(context, job_name, asset_selection)
        selector = {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "pipelineName": job_name,
            "assetSelection": asset_selection,
        }
        params: dict[str, Any] = {"selector": selector}
        if tags:
            params["executionMetadata"] = {"tags": [{"key": key, "value": value} for key, value in tags.items()]}
        result = execute_dagster_graphql(context, LAUNCH_PIPELINE_EXECUTION_MUTATION, {"executionParams": params})
        launched = result.data["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    @staticmethod
    def _location_of(context: Any, job_name: str, asset_selection: list | None) -> tuple[str, str]:
        for name in context.code_location_names:
            for repository in context.get_code_location(name).get_repositories().values():
                keys = {tuple(node.asset_key.path) for node in repository.get_asset_node_snaps()}
                wanted = {tuple(asset["path"]) for asset in asset_selection or ()}
                if repository.has_job(job_name) and wanted <= keys:
                    return name, repository.name
        raise AssertionError(f"no code location has the job {job_name} with {asset_selection}")

    def tick(self) -> None:
        """One pass of the daemon that dequeues runs within the instance's concurrency limits."""
        list(QueuedRunCoordinatorDaemon(interval_seconds=1).run_iteration(self.workspace))

    def status(self, run_id: str) -> DagsterRunStatus:
        return self.instance.get_run_by_id(run_id).status

    def tags(self, run_id: str) -> dict[str, str]:
        return dict(self.instance.get_run_by_id(run_id).tags)

    def finish(self, run_id: str) -> None:
        self.instance.report_run_failed(self.instance.get_run_by_id(run_id))


PROJECT_DAGSTER_YAML = REPO_ROOT / "dagster.yaml"


def project_instance_config() -> dict[str, Any]:
    """The project's dagster.yaml, with runs 'launched' into a mocked launcher where they stay in progress."""
    config = yaml.safe_load(PROJECT_DAGSTER_YAML.read_text())
    config["run_launcher"] = {"module": "dagster._core.test_utils", "class": "MockedRunLauncher"}
    return config


# The one-machine workspace (workspace.yaml) and docker/'s two code locations.
ONE_LOCATION = {"ingest_platform": ("ingest_platform.definitions", "defs")}
DOCKER_LOCATIONS = {
    "ingest_platform": ("ingest_platform.locations", "core_defs"),
    "ingest_platform_browser": ("ingest_platform.locations", "browser_defs"),
}


@contextmanager
def project_run_queue(
    config: dict[str, Any] | None = None, locations: dict[str, tuple[str, str]] = ONE_LOCATION
) -> Iterator[RunQueue]:
    """The project's code locations on an instance configured by `config` (default: the project's dagster.yaml)."""
    overrides = config if config is not None else project_instance_config()
    origins = [
        InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name=module, attribute=attribute, working_directory=str(REPO_ROOT)),
            location_name=name,
        )
        for name, (module, attribute) in locations.items()
    ]
    with (
        instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(InProcessTestWorkspaceLoadTarget(origins), instance) as workspace,
    ):
        prepare_pools(instance)
        yield RunQueue(instance, workspace)
