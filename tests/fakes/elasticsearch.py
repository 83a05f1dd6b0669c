"""A small Elasticsearch on loopback: the part of the 9.x REST API a point-in-time `search_after` scan uses.

Implements `POST /<index>/_pit`, `POST /_search` (pit + query + sort on a date field or `_shard_doc` alone +
`search_after` + size), `POST /<index>/_search` without a point in time (`size: 0`, `track_total_hits`, a `max`
aggregation) and `DELETE /_pit` over an in-memory index. Queries: `range`, `exists`, `match_all` and `bool`
(`must`/`filter`/`must_not`). Fields named in `date_fields` behave as `date` fields mapped with
`ignore_malformed`: a value that is no date is not indexed, so `exists` and `range` do not see it (Elasticsearch
lists it in `_ignored`). Answers like Elasticsearch does: the `X-Elastic-Product` header on
every response (the official client refuses a server without it), errors as `{"error": {...}, "status": N}`, a
point in time as a frozen snapshot that expires after its keep-alive. Faults are injected per request kind: an
HTTP status, a delay longer than the client's timeout, or an expired point in time.
"""

import bisect
import fnmatch
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import LoopbackServer

PRODUCT_HEADERS = {
    "X-Elastic-Product": "Elasticsearch",
    "Content-Type": "application/vnd.elasticsearch+json;compatible-with=9",
}
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Fault:
    """Misbehave on the `after`-th+1 request of `kind` ("open_pit", "search", "close_pit"), `times` times."""

    kind: str
    status: int | None = None
    delay_seconds: float = 0.0
    expire_pit: bool = False
    after: int = 0
    times: int = 1


@dataclass
class PointInTime:
    docs: list[tuple[str, str, dict[str, Any]]]
    keep_alive_seconds: float
    expires_at: float
    # The sorted matches of each (sort, range) asked for: pages of one scan are slices of one list.
    sorted_matches: dict[tuple, tuple[list[tuple], list[tuple[int, int]]]] = field(default_factory=dict)

    def matches(
        self, sort_field: str | None, descending: bool, query: dict[str, Any] | None, date_fields: frozenset[str]
    ) -> tuple[list[tuple], list[tuple[int, int]]]:
        """Matching docs in sort order; with `sort_field` None they sort by `_shard_doc` alone."""
        cache_key = (sort_field, descending, json.dumps(query, sort_keys=True))
        cached = self.sorted_matches.get(cache_key)
        if cached is not None:
            return cached
        predicate = _predicate(query, date_fields)
        hits = []
        for shard_doc, (index_name, doc_id, source) in enumerate(self.docs):
            if not predicate(source):
                continue
            if sort_field is None:
                hits.append((shard_doc, shard_doc, index_name, doc_id, source))
                continue
            values = _epoch_ms_values(_lookup(source, sort_field))
            if not values:
                continue
            sort_value = max(values) if descending else min(values)
            hits.append((sort_value, shard_doc, index_name, doc_id, source))
        hits.sort(key=lambda hit: ((-hit[0] if descending else hit[0]), hit[1]))
        keys = [((-hit[0] if descending else hit[0]), hit[1]) for hit in hits]
        self.sorted_matches[cache_key] = (hits, keys)
        return hits, keys


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeElasticsearch:
    """The server's state. Use `running()` to serve it on a free loopback port."""

    api_key: str | None = None
    # Fields mapped as `date` with `ignore_malformed: true` (see the module docstring).
    date_fields: frozenset[str] = frozenset({"@timestamp", "event.ingested"})
    # False plays a server that is not Elasticsearch (a proxy's error page, another product).
    announce_product: bool = True
    indices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    pits: dict[str, PointInTime] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def index(self, index: str, doc_id: str, source: dict[str, Any]) -> None:
        with self.lock:
            self.indices.setdefault(index, {})[doc_id] = source

    def index_many(self, index: str, docs: Iterable[tuple[str, dict[str, Any]]]) -> None:
        with self.lock:
            target = self.indices.setdefault(index, {})
            for doc_id, source in docs:
                target[doc_id] = source

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def requests_of(self, kind: str) -> list[RecordedRequest]:
        return [request for request in self.requests if _kind(request.method, request.path) == kind]

    @contextmanager
    def running(self) -> Iterator["FakeElasticsearch"]:
        server = LoopbackServer(_handler_for(self), self)
        self.url = server.url
        server.start()
        try:
            yield self
        finally:
            server.stop()

    # --- request handling (called on the server's threads) ---

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any, headers) -> tuple[int, Any]:
        kind = _kind(method, path)
        with self.lock:
            self.requests.append(RecordedRequest(method, path, query, body))
            number = self.counts.get(kind, 0)
            self.counts[kind] = number + 1
            fault = self._take_fault(kind, number)
        if self.api_key is not None and headers.get("Authorization") != f"ApiKey {self.api_key}":
            return 401, _error(401, "security_exception", "unable to authenticate with provided credentials")
        if fault is not None:
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            if fault.status is not None:
                return fault.status, _error(fault.status, "unavailable_shards_exception", "injected fault")
            if fault.expire_pit:
                with self.lock:
                    for pit in self.pits.values():
                        pit.expires_at = 0.0
        if kind == "open_pit":
            return self._open_pit(path.split("/")[1], query)
        if kind == "search" and not (body or {}).get("pit"):
            try:
                return _search_index_of(self, path.split("/")[1] if path.count("/") == 2 else "*", body or {})
            except (ValueError, KeyError, TypeError) as error:
                return 400, _error(400, "parsing_exception", str(error))
        if kind == "search":
            try:
                return self._search(body or {})
            except (ValueError, KeyError, TypeError) as error:
                return 400, _error(400, "parsing_exception", str(error))
        if kind == "close_pit":
            return self._close_pit(body or {})
        return 404, _error(404, "unsupported_operation_exception", f"no handler for {method} {path}")

    def _take_fault(self, kind: str, number: int) -> Fault | None:
        for fault in self.faults:
            if fault.kind == kind and number >= fault.after and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _open_pit(self, index_expression: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        keep_alive = (query.get("keep_alive") or [""])[0]
        seconds = _duration_seconds(keep_alive)
        if seconds is None:
            return 400, _error(400, "illegal_argument_exception", f"failed to parse keep_alive [{keep_alive}]")
        with self.lock:
            patterns = index_expression.split(",")
            names = sorted(name for name in self.indices if any(fnmatch.fnmatch(name, p) for p in patterns))
            if not names and not any("*" in p for p in patterns):
                return 404, _error(404, "index_not_found_exception", f"no such index [{index_expression}]")
            docs = [
                (name, doc_id, json.loads(json.dumps(source)))
                for name in names
                for doc_id, source in self.indices[name].items()
            ]
            pit_id = uuid.uuid4().hex
            self.pits[pit_id] = PointInTime(docs, seconds, time.monotonic() + seconds)
        return 200, {"id": pit_id}

    def _close_pit(self, body: dict[str, Any]) -> tuple[int, Any]:
        with self.lock:
            freed = self.pits.pop(body.get("id", ""), None) is not None
        return (200 if freed else 404), {"succeeded": freed, "num_freed": int(freed)}

    def _search(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("from"):
            return 400, _error(400, "illegal_argument_exception", "this fake pages with search_after only")
        pit_request = body.get("pit") or {}
        with self.lock:
            pit = self.pits.get(pit_request.get("id", ""))
            if pit is None or pit.expires_at < time.monotonic():
                self.pits.pop(pit_request.get("id", ""), None)
                return 404, _pit_missing(pit_request.get("id", ""))
            keep_alive = _duration_seconds(pit_request.get("keep_alive", "")) or pit.keep_alive_seconds
            pit.expires_at = time.monotonic() + keep_alive
        sort = body.get("sort") or []
        if sort == [{"_shard_doc": "asc"}]:
            sort_field, descending = None, False
        elif len(sort) == 2 and list(sort[1]) == ["_shard_doc"]:
            ((sort_field, sort_spec),) = sort[0].items()
            descending = (sort_spec.get("order") if isinstance(sort_spec, dict) else sort_spec) == "desc"
        else:
            return 400, _error(
                400, "illegal_argument_exception", "this fake expects a [<field>, _shard_doc] or [_shard_doc] sort"
            )
        hits, keys = pit.matches(sort_field, descending, body.get("query"), self.date_fields)
        search_after = body.get("search_after")
        first = 0
        if search_after is not None:
            if sort_field is None:
                after_key = (search_after[0], search_after[0])
            else:
                after_key = ((-search_after[0] if descending else search_after[0]), search_after[1])
            first = bisect.bisect_right(keys, after_key)
        size = int(body.get("size", 10))
        page = hits[first : first + size]
        response: dict[str, Any] = {
            "pit_id": pit_request["id"],
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "max_score": None,
                "hits": [
                    {
                        "_index": index_name,
                        "_id": doc_id,
                        "_score": None,
                        "_source": source,
                        "sort": [shard_doc] if sort_field is None else [sort_value, shard_doc],
                    }
                    for sort_value, shard_doc, index_name, doc_id, source in page
                ],
            },
        }
        if body.get("track_total_hits", True) is not False:
            response["hits"]["total"] = {"value": len(hits), "relation": "eq"}
        return 200, response


def _search_index_of(state: FakeElasticsearch, index_expression: str, body: dict[str, Any]) -> tuple[int, Any]:
    """A plain search of the live index (no point in time): the total and the aggregations, no hits."""
    if int(body.get("size", 10)) != 0:
        raise ValueError("this fake answers a search without a point in time only with size 0")
    predicate = _predicate(body.get("query"), state.date_fields)
    patterns = index_expression.split(",")
    with state.lock:
        sources = [
            source
            for name, docs in state.indices.items()
            if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
            for source in docs.values()
            if predicate(source)
        ]
    response: dict[str, Any] = {
        "took": 1,
        "timed_out": False,
        "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
        "hits": {"max_score": None, "hits": [], "total": {"value": len(sources), "relation": "eq"}},
    }
    aggregations = {}
    for name, spec in (body.get("aggs") or body.get("aggregations") or {}).items():
        if set(spec) != {"max"}:
            raise ValueError(f"this fake only computes max aggregations, got {spec}")
        field_name = spec["max"]["field"]
        values = [
            value
            for source in sources
            for value in _indexed_values(_lookup(source, field_name), field_name in state.date_fields)
        ]
        maximum = max(values) if values else None
        aggregations[name] = {"value": float(maximum) if maximum is not None else None}
        if maximum is not None and field_name in state.date_fields:
            moment = datetime.fromtimestamp(maximum / 1000, UTC)
            aggregations[name]["value_as_string"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if aggregations:
        response["aggregations"] = aggregations
    return 200, response


def _handler_for(state: FakeElasticsearch) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, payload = state.handle(self.command, parts.path, parse_qs(parts.query), body, self.headers)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                for name, value in PRODUCT_HEADERS.items():
                    if name != "X-Elastic-Product" or state.announce_product:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout fault): nothing to answer

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


def _kind(method: str, path: str) -> str:
    if path.endswith("/_pit") and method == "POST":
        return "open_pit"
    if path == "/_pit" and method == "DELETE":
        return "close_pit"
    if path.endswith("/_search"):
        return "search"
    return "other"


def _error(status: int, error_type: str, reason: str) -> dict[str, Any]:
    return {
        "error": {"root_cause": [{"type": error_type, "reason": reason}], "type": error_type, "reason": reason},
        "status": status,
    }


def _pit_missing(pit_id: str) -> dict[str, Any]:
    cause = {"type": "search_context_missing_exception", "reason": f"No search context found for id [{pit_id}]"}
    return {
        "error": {
            "root_cause": [cause],
            "type": "search_phase_execution_exception",
            "reason": "all shards failed",
            "phase": "query",
            "grouped": True,
            "failed_shards": [{"shard": 0, "index": None, "reason": cause}],
            "caused_by": cause,
        },
        "status": 404,
    }


def _duration_seconds(text: str) -> float | None:
    match = _DURATION.match(text or "")
    return int(match[1]) * _UNIT_SECONDS[match[2]] if match else None


def _lookup(source: dict[str, Any], path: str) -> Any:
    if path in source:
        return source[path]
    value: Any = source
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _epoch_ms_values(value: Any) -> list[int]:
    """A date field's values as the default `strict_date_optional_time||epoch_millis` format indexes them."""
    values = value if isinstance(value, list) else [value]
    parsed = []
    for item in values:
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int | float):
            parsed.append(int(item))
            continue
        if isinstance(item, str):
            try:
                moment = datetime.fromisoformat(item.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            parsed.append(int(moment.timestamp() * 1000))
    return parsed


def _indexed_values(value: Any, is_date: bool) -> list[Any]:
    """What the index holds for a field: dates as epoch ms (malformed ones ignored), other values as they are."""
    if is_date:
        return _epoch_ms_values(value)
    values = value if isinstance(value, list) else [value]
    return [item for item in values if item is not None and not isinstance(item, dict)]


def _predicate(query: dict[str, Any] | None, date_fields: frozenset[str]) -> Callable[[dict[str, Any]], bool]:
    """A document filter for the query kinds the platform sends; anything else is a 400, as a typo would be."""
    if not query or set(query) == {"match_all"}:
        return lambda source: True
    if len(query) != 1:
        raise ValueError(f"one query kind per clause, got {sorted(query)}")
    ((kind, spec),) = query.items()
    if kind == "range":
        ((range_field, bounds_spec),) = spec.items()
        bounds = {}
        for operator in ("gt", "gte", "lt", "lte"):
            if operator in bounds_spec:
                values = _epoch_ms_values(bounds_spec[operator])
                if not values:
                    raise ValueError(f"unparseable bound {bounds_spec[operator]!r}")
                bounds[operator] = values[0]
        return lambda source: any(_within(value, bounds) for value in _epoch_ms_values(_lookup(source, range_field)))
    if kind == "exists":
        field_name = spec["field"]
        is_date = field_name in date_fields
        return lambda source: bool(_indexed_values(_lookup(source, field_name), is_date))
    if kind == "bool":
        unknown = set(spec) - {"must", "filter", "must_not"}
        if unknown:
            raise ValueError(f"this fake does not understand bool {sorted(unknown)}")

        def clauses(name: str) -> list[Callable[[dict[str, Any]], bool]]:
            items = spec.get(name) or []
            return [_predicate(item, date_fields) for item in (items if isinstance(items, list) else [items])]

        required = clauses("must") + clauses("filter")
        excluded = clauses("must_not")
        return lambda source: all(test(source) for test in required) and not any(test(source) for test in excluded)
    raise ValueError(f"this fake does not understand a {kind!r} query")


def _within(value: int, bounds: dict[str, int]) -> bool:
    return (
        ("gt" not in bounds or value > bounds["gt"])
        and ("gte" not in bounds or value >= bounds["gte"])
        and ("lt" not in bounds or value < bounds["lt"])
        and ("lte" not in bounds or value <= bounds["lte"])
    )
