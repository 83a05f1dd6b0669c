"""Elasticsearch as a Dagster resource: the official 9.x client, point-in-time paging and retries with backoff."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import dagster as dg
from pydantic import Field

from ingest_platform.resources import EnvironmentSettingsResource

# The client is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

# Dagster's logger: retries and reopened points in time show in the run's event log.
log = dg.get_dagster_logger(__name__)

URL_ENV = "ELASTICSEARCH_URL"
API_KEY_ENV = "ELASTICSEARCH_API_KEY"
USERNAME_ENV = "ELASTICSEARCH_USERNAME"
PASSWORD_ENV = "ELASTICSEARCH_PASSWORD"  # noqa: S105 (a variable name, not a secret)

# Statuses Elasticsearch answers when it is overloaded or a node is restarting; retrying later usually succeeds.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# An expired or unknown point in time: Elasticsearch answers 404 with this exception in the error body.
PIT_MISSING = "search_context_missing_exception"

# An index of the pattern without the field (a new, empty one) must not fail the sort; `date_nanos` indices must
# sort in the same unit (milliseconds) as `date` ones, or `search_after` values would mix units.
TIMESTAMP_SORT = {"order": "asc", "unmapped_type": "date", "numeric_type": "date"}

Result = TypeVar("Result")


def not_configured(missing: list[str]) -> str:
    return f"RTARF is not configured: set {' and '.join(missing)} (see the README's Environment table)"


class PointInTimeExpired(Exception):
    """Elasticsearch no longer knows the point in time (its keep-alive ran out between two pages)."""


@dataclass
class ScanStats:
    """What a point-in-time scan did, for the run's metadata."""

    pages: int = 0
    hits: int = 0
    retries: int = 0
    pit_reopened: int = 0


@dataclass(frozen=True)
class RangeFingerprint:
    """What the index holds for a time range, cheaply: how many documents, and the newest ingest time among them
    (None when the index has no such field), so a re-sync can tell that nothing changed without reading them."""

    count: int
    max_ingested_ms: int | None


class ElasticsearchResource(EnvironmentSettingsResource):
    """An Elasticsearch cluster read with the official client.

    Authenticate with an API key, or with a user name and password (basic auth); neither means no authentication
    (a cluster without security). A credential left unset here is read from its ELASTICSEARCH_* variable when the
    run starts, never when the definitions load: a cluster uses one kind, the other or neither, and an unset
    `dg.EnvVar` would be an error. Transient failures (connection errors, timeouts, 429 and 5xx answers)
    are retried with exponential backoff and jitter by this resource, not by the client (which retries at once by
    default).
    """

    url: str | None = Field(
        default=None,
        description="Cluster URL, e.g. https://es.internal:9200; unset, ELASTICSEARCH_URL read when a run uses it.",
    )
    api_key: str | None = Field(default=None, description="API key, base64 'id:key' (ELASTICSEARCH_API_KEY).")
    username: str | None = Field(default=None, description="Basic auth user (ELASTICSEARCH_USERNAME).")
    password: str | None = Field(default=None, description="Basic auth password (ELASTICSEARCH_PASSWORD).")
    index: str = Field(default="rtarf-events*", description="Index, alias or pattern the events live in.")
    request_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of each request.")
    max_retries: int = Field(default=4, ge=0, description="Retries of a request that failed transiently.")
    retry_backoff_seconds: float = Field(default=1.0, ge=0, description="First retry delay; doubles each retry.")
    retry_backoff_max_seconds: float = Field(default=30.0, ge=0, description="Upper bound of a retry delay.")
    pit_keep_alive: str = Field(default="2m", description="How long a point in time lives between two pages.")
    max_pit_reopens: int = Field(default=3, ge=0, description="Times a scan may reopen an expired point in time.")
    verify_certs: bool = Field(default=True, description="Verify the cluster's TLS certificate.")
    ca_certs: str | None = Field(default=None, description="CA bundle path for a private certificate authority.")

    def variables(self) -> Mapping[str, str | None]:
        # A cluster without security needs no credential: an unset one is not a missing setting; the URL is.
        return {
            URL_ENV: "the cluster RTARF syncs from; without it the sync schedule skips and a run fails at once",
            API_KEY_ENV: None,
            USERNAME_ENV: None,
            PASSWORD_ENV: None,
        }

    def missing_settings(self) -> dict[str, str]:
        return {} if self.url else super().missing_settings()

    def cluster_url(self) -> str:
        """The cluster's URL: the field, else ELASTICSEARCH_URL as the run started; a one-line Failure when neither
        is set, so a run without it fails at its first step with what to set, not with a stack trace from the config
        system."""
        url = self.url or self.variable(URL_ENV)
        if not url:
            raise dg.Failure(description=not_configured([URL_ENV]), allow_retries=False)
        return url

    def credentials(self) -> tuple[str | None, str | None, str | None]:
        """(api_key, username, password): each field, else its variable as the run started."""
        return (
            self.api_key or self.variable(API_KEY_ENV),
            self.username or self.variable(USERNAME_ENV),
            self.password or self.variable(PASSWORD_ENV),
        )

    def client(self) -> Elasticsearch:
        from elasticsearch import Elasticsearch

        api_key, username, password = self.credentials()
        if api_key and username:
            raise dg.Failure(f"Set either {API_KEY_ENV} or {USERNAME_ENV}/{PASSWORD_ENV}, not both.")
        if bool(username) != bool(password):
            raise dg.Failure(f"Basic auth needs both {USERNAME_ENV} and {PASSWORD_ENV}.")
        return Elasticsearch(
            self.cluster_url(),
            api_key=api_key,
            basic_auth=(username, password) if username and password else None,
            request_timeout=self.request_timeout_seconds,
            # Retries live in `call_with_retries`: it backs off (the client retries at once by default) and counts
            # the retries for the run's metadata.
            max_retries=0,
            retry_on_timeout=False,
            verify_certs=self.verify_certs,
            ca_certs=self.ca_certs,
        )

    def call_with_retries(self, request: Callable[[], Result], *, what: str, stats: ScanStats | None = None) -> Result:
        """Run `request`, retrying transient failures with exponential backoff and full jitter."""
        import elastic_transport
        from elasticsearch import ApiError

        for attempt in range(self.max_retries + 1):
            try:
                return request()
            except (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout, ApiError) as error:
                if not is_transient(error) or attempt == self.max_retries:
                    raise
                # Full jitter spreads the retries of parallel runs; not a security use of randomness.
                delay = random.uniform(  # noqa: S311
                    0, min(self.retry_backoff_max_seconds, self.retry_backoff_seconds * 2**attempt)
                )
                log.warning(
                    "elasticsearch %s failed (%s), retry %d/%d in %.2fs",
                    what,
                    describe(error),
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                if stats is not None:
                    stats.retries += 1
                time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    @contextmanager
    def time_range_pages(
        self,
        *,
        timestamp_field: str,
        start: datetime,
        end: datetime,
        page_size: int,
        stats: ScanStats,
    ) -> Iterator[Iterator[list[dict[str, Any]]]]:
        """Pages of the hits whose `timestamp_field` is in [start, end), oldest first, from one point in time.

        Paging is `search_after` over a sort on the timestamp with `_shard_doc` as the tiebreaker. The point in
        time is closed when the block exits, however it exits. If it expires mid-scan, a new one is opened and the
        scan resumes from the last timestamp seen (inclusive: hits sharing it are fetched again, which the
        caller's upsert absorbs), since `_shard_doc` values mean nothing across points in time.
        """
        scan = _PointInTimeScan(self, timestamp_field=timestamp_field, page_size=page_size, stats=stats)
        try:
            yield scan.pages(start_ms=to_epoch_ms(start), end_ms=to_epoch_ms(end))
        finally:
            scan.close()

    @contextmanager
    def undated_pages(
        self, *, timestamp_field: str, page_size: int, stats: ScanStats
    ) -> Iterator[Iterator[list[dict[str, Any]]]]:
        """Pages of the documents a time-range scan never returns: `timestamp_field` missing, or a value the
        mapping rejected (a `date` field with `ignore_malformed` does not index it, so it does not `exist`).

        Same point-in-time `search_after` paging, sorted on `_shard_doc` alone (there is no time to sort by). If the
        point in time expires the scan starts over, since `_shard_doc` values mean nothing across points in time:
        a document may then come twice, which the caller's upsert by `_id` absorbs.
        """
        scan = _PointInTimeScan(self, timestamp_field=timestamp_field, page_size=page_size, stats=stats)
        try:
            yield scan.undated_pages()
        finally:
            scan.close()

    def range_fingerprint(
        self, *, timestamp_field: str, start: datetime, end: datetime, ingest_time_field: str | None
    ) -> RangeFingerprint:
        """One `size: 0` search: the exact number of documents in [start, end) and their newest ingest time."""
        body: dict[str, Any] = {
            "query": _range_query(timestamp_field, to_epoch_ms(start), to_epoch_ms(end)),
            "size": 0,
            "track_total_hits": True,
        }
        if ingest_time_field:
            body["aggs"] = {"max_ingested": {"max": {"field": ingest_time_field}}}
        es = self.client()
        try:
            response = self.call_with_retries(lambda: es.search(index=self.index, **body), what="count", stats=None)
        finally:
            es.close()
        maximum = ((response.get("aggregations") or {}).get("max_ingested") or {}).get("value")
        return RangeFingerprint(
            count=int(response["hits"]["total"]["value"]),
            max_ingested_ms=int(maximum) if maximum is not None else None,
        )


class _PointInTimeScan:
    def __init__(self, resource: ElasticsearchResource, *, timestamp_field: str, page_size: int, stats: ScanStats):
        self.resource = resource
        self.es = resource.client()
        self.timestamp_field = timestamp_field
        self.page_size = page_size
        self.stats = stats
        self.pit_id: str | None = None

    def pages(self, *, start_ms: int, end_ms: int) -> Iterator[list[dict[str, Any]]]:
        # Resumes from the last timestamp seen (inclusive): hits sharing it come again.
        return self._paged(
            lambda lower_ms: _range_query(self.timestamp_field, lower_ms, end_ms),
            [{self.timestamp_field: TIMESTAMP_SORT}, {"_shard_doc": "asc"}],
            start=start_ms,
            resume=lambda search_after: int(search_after[0]),
        )

    def undated_pages(self) -> Iterator[list[dict[str, Any]]]:
        # Without a time to resume from, an expired point in time starts the sweep over.
        query = {"bool": {"must_not": [{"exists": {"field": self.timestamp_field}}]}}
        return self._paged(lambda _: query, [{"_shard_doc": "asc"}], start=None, resume=lambda _: None)

    def _paged(
        self,
        query_from: Callable[[Any], dict[str, Any]],
        sort: list[dict[str, Any]],
        *,
        start: Any,
        resume: Callable[[list[Any]], Any],
    ) -> Iterator[list[dict[str, Any]]]:
        """`search_after` pages of `query_from(bound)`; when the point in time expires, a new one is opened and the
        scan goes on from `resume(last sort values)` (or from `start` before the first page)."""
        bound = start
        search_after: list[Any] | None = None
        reopens_left = self.resource.max_pit_reopens
        self._open()
        while True:
            try:
                hits = self._query(query_from(bound), sort, search_after)
            except PointInTimeExpired:
                if reopens_left == 0:
                    raise
                reopens_left -= 1
                self.stats.pit_reopened += 1
                if search_after is not None:
                    bound = resume(search_after)
                search_after = None
                log.warning("point in time expired; reopening and resuming from %s", bound or "the start")
                self._release()
                self._open()
                continue
            if not hits:
                return
            self.stats.pages += 1
            self.stats.hits += len(hits)
            search_after = hits[-1]["sort"]
            yield hits
            if len(hits) < self.page_size:
                return

    def _open(self) -> None:
        response = self.resource.call_with_retries(
            lambda: self.es.open_point_in_time(index=self.resource.index, keep_alive=self.resource.pit_keep_alive),
            what="open point in time",
            stats=self.stats,
        )
        self.pit_id = response["id"]

    def _search(self, lower_ms: int, end_ms: int, search_after: list[Any] | None) -> list[dict[str, Any]]:
        return self._query(
            _range_query(self.timestamp_field, lower_ms, end_ms),
            [{self.timestamp_field: TIMESTAMP_SORT}, {"_shard_doc": "asc"}],
            search_after,
        )

    def _query(
        self, query: dict[str, Any], sort: list[dict[str, Any]], search_after: list[Any] | None
    ) -> list[dict[str, Any]]:
        from elasticsearch import NotFoundError

        def request() -> Any:
            return self.es.search(
                pit={"id": self.pit_id, "keep_alive": self.resource.pit_keep_alive},
                query=query,
                sort=sort,
                search_after=search_after,
                size=self.page_size,
                track_total_hits=False,
            )

        try:
            response = self.resource.call_with_retries(request, what="search", stats=self.stats)
        except NotFoundError as error:
            if PIT_MISSING in str(error.body):
                raise PointInTimeExpired(describe(error)) from error
            raise
        # Elasticsearch may hand back a new id for the same point in time; the next page must use it.
        self.pit_id = response.get("pit_id") or self.pit_id
        return response["hits"]["hits"]

    def _release(self) -> None:
        import elastic_transport
        from elasticsearch import ApiError

        pit_id, self.pit_id = self.pit_id, None
        if pit_id is None:
            return
        try:
            self.resource.call_with_retries(
                lambda: self.es.close_point_in_time(id=pit_id), what="close point in time", stats=self.stats
            )
        except (elastic_transport.TransportError, ApiError) as error:
            # Never mask the scan's own outcome: an unclosed point in time expires after its keep-alive anyway.
            log.warning(
                "could not close the point in time (it expires after %s): %s",
                self.resource.pit_keep_alive,
                describe(error),
            )

    def close(self) -> None:
        try:
            self._release()
        finally:
            self.es.close()


def is_transient(error: Exception) -> bool:
    import elastic_transport
    from elasticsearch import ApiError

    if isinstance(error, elastic_transport.ConnectionError | elastic_transport.ConnectionTimeout):
        return True
    return isinstance(error, ApiError) and error.meta.status in TRANSIENT_STATUSES


def describe(error: Exception) -> str:
    from elasticsearch import ApiError

    if isinstance(error, ApiError):
        return f"HTTP {error.meta.status} {error.message}"
    return f"{type(error).__name__}: {error}"


def _range_query(timestamp_field: str, start_ms: int, end_ms: int) -> dict[str, Any]:
    return {"range": {timestamp_field: {"gte": start_ms, "lt": end_ms, "format": "epoch_millis"}}}


def to_epoch_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware time")
    return int(moment.timestamp() * 1000)
