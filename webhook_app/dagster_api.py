"""The Dagster webserver's GraphQL API as the routes backed by Dagster use it (/scheduler/*, /cron/*).

`dagster-graphql`'s client: its typed calls where it has them (launching a run, a run's status), its underlying
GraphQL execution for the rest. An unreachable webserver (refused connection, timeout, 5xx) is a 503 the caller
may retry; an error Dagster answers with is a 502. The webhook app never imports `ingest_platform`, so job, schedule
and asset names are the callers' constants.
"""

import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from webhook_app.errors import ApiError

GRAPHQL_URL_ENV = "DAGSTER_GRAPHQL_URL"
DEFAULT_GRAPHQL_URL = "http://127.0.0.1:3000/graphql"
FINISHED = {"SUCCESS": "success", "FAILURE": "failed", "CANCELED": "canceled"}
IN_FLIGHT = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED"]


class DagsterApi:
    """The Dagster deployment at DAGSTER_GRAPHQL_URL."""

    def __init__(self) -> None:
        self.url = current_app.config.get(GRAPHQL_URL_ENV) or DEFAULT_GRAPHQL_URL
        parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
        path = parts.path.rstrip("/")
        path = path.removesuffix("/graphql")
        # Imported here, not at module level: dagster_graphql loads Dagster itself (~0.7 s), which the other
        # endpoints and every worker's start-up should not pay.
        from dagster_graphql import DagsterGraphQLClient

        self.client = DagsterGraphQLClient(
            parts.hostname or "127.0.0.1",
            port_number=parts.port,
            use_https=parts.scheme == "https",
            path_prefix=path,
            timeout=int(current_app.config["DAGSTER_TIMEOUT_SECONDS"]),
        )

    def find_repository(self, *, holds: Callable[[dict[str, Any]], bool], wanted: str, error: str) -> dict[str, str]:
        """The repository (of WORKSPACE_QUERY's shape) for which `holds` is true; 503 `error` naming `wanted` if none.

        Found in the workspace, so the code location's name need not be configured.
        """
        data = self.execute(WORKSPACE_QUERY)
        repositories = data["repositoriesOrError"]
        if repositories["__typename"] != "RepositoryConnection":
            raise dagster_error("Dagster could not list its repositories", repositories)
        for repository in repositories["nodes"]:
            if holds(repository):
                return {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}
        problems = [
            f"{entry['name']}: {_root_cause(entry['locationOrLoadError'])}"
            for entry in data["workspaceOrError"].get("locationEntries", [])
            if (entry.get("locationOrLoadError") or {}).get("__typename") == "PythonError"
        ]
        raise ApiError(
            503,
            error,
            f"Dagster at {self.url} has no {wanted}"
            + (f"; code locations failing to load: {'; '.join(problems)}" if problems else ""),
        )

    def launch(self, job_name: str, selector: dict[str, str], *, tags: dict[str, str]) -> str:
        return self.call(
            lambda: self.client.submit_job_execution(
                job_name,
                repository_location_name=selector["repositoryLocationName"],
                repository_name=selector["repositoryName"],
                run_config={},
                tags=tags,
            )
        )

    def run_status(self, run_id: str) -> str:
        return self.call(lambda: self.client.get_run_status(run_id)).value

    def wait_for_runs(self, run_ids: Iterable[str], *, timeout: float, poll: float) -> dict[str, str]:
        """Each run's final status (FINISHED's words), or "running" for those still going after `timeout` s."""
        deadline = time.monotonic() + timeout
        waiting = list(run_ids)
        outcomes: dict[str, str] = {}
        while True:
            for run_id in list(waiting):
                status = self.run_status(run_id)
                if status in FINISHED:
                    outcomes[run_id] = FINISHED[status]
                    waiting.remove(run_id)
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        return {**outcomes, **dict.fromkeys(waiting, "running")}

    def materialization_figures(self, run_id: str) -> dict[str, dict[str, int]]:
        """The integer metadata of each asset (`a/b/c`) the run materialized."""
        data = self.execute(RUN_QUERY, {"runId": run_id})["runOrError"]
        figures: dict[str, dict[str, int]] = {}
        for materialization in data.get("assetMaterializations") or []:
            entries = figures.setdefault("/".join(materialization["assetKey"]["path"]), {})
            for entry in materialization["metadataEntries"]:
                if "intRepr" in entry:
                    entries[entry["label"]] = int(entry["intRepr"])
        return figures

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        # The client's typed methods do not cover schedules, assets or run metadata; its own execution path does,
        # with the same error handling.
        return self.call(lambda: self.client._execute(query, variables))

    def call(self, operation):
        from dagster_graphql import DagsterGraphQLClientError

        try:
            return operation()
        except DagsterGraphQLClientError as error:
            cause = _unreachable_cause(error)
            if cause is not None:
                raise ApiError(
                    503,
                    "dagster_unavailable",
                    f"Dagster is not reachable at {self.url} ({type(cause).__name__}); is the webserver running? "
                    "Retry later.",
                ) from None
            raise ApiError(502, "dagster_error", f"Dagster answered with an error: {_first_line(error)}") from None


def dagster_error(what: str, result: dict[str, Any]) -> ApiError:
    return ApiError(502, "dagster_error", f"{what}: {result['__typename']}: {result.get('message', '')}".strip())


def _unreachable_cause(error: BaseException) -> BaseException | None:
    """The network failure or webserver 5xx behind a client error, if that is what it is."""
    # Imported here like the client itself: the GraphQL stack stays out of every worker's start-up.
    import requests
    from gql.transport.exceptions import TransportConnectionFailed, TransportServerError

    unreachable = (requests.ConnectionError, requests.Timeout, TransportConnectionFailed, TransportServerError)
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, unreachable):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _root_cause(python_error: dict[str, Any]) -> str:
    """The innermost error's first line: for a failing import, the exception the project raised, not the wrapper."""
    innermost = (python_error.get("causes") or [python_error])[-1]
    return innermost["message"].strip().splitlines()[0][:500]


def _first_line(error: Exception) -> str:
    text = " ".join(str(part) for part in error.args) or type(error).__name__
    return text.strip().splitlines()[0][:300]


WORKSPACE_QUERY = """
query Workspace {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } schedules { name } jobs { name } } }
    ... on PythonError { message }
  }
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError { __typename ... on PythonError { message causes { message } } }
      }
    }
  }
}
"""

RUN_QUERY = """
query RunMaterializations($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      assetMaterializations {
        assetKey { path }
        metadataEntries { label ... on IntMetadataEntry { intRepr } }
      }
    }
  }
}
"""
