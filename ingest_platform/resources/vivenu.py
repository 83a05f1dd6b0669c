"""Vivenu's API as a Dagster resource: one key per region, from the variable its `api_key_env` entry names."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ingest_platform.http_retry import backoff_seconds, is_retryable_error, is_retryable_status, retry_after_seconds
from ingest_platform.resources import EnvironmentSettingsResource

# httpx is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import httpx

# The regions seed 002 names, each with the variable its key was read from there.
SEED_KEY_VARIABLES = {"DEV": "DEV_API", "PROD": "PROD_API", "ITALY": "ITALY_API", "DACH": "DACH_API"}
DEV_REGION = "DEV"
DEV_BASE_URL = "https://vivenu.dev"
PRODUCTION_BASE_URL = "https://vivenu.com"
DEV_BASE_URL_ENV = "VIVENU_DEV_BASE_URL"
PRODUCTION_BASE_URL_ENV = "VIVENU_BASE_URL"
MAX_PAGE_SIZE = 1_000

_REGION_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Vivenu ids are Mongo ObjectIds; the seed's examples are shorter, so accept any plain token.
_EVENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

PageCallback = Callable[[int, int], None]


class VivenuError(Exception):
    """A Vivenu problem with a message fit for an operator: never a key, never a ticket holder's data."""


class VivenuConfigError(VivenuError):
    """Unknown region, missing key or malformed event id: nothing was asked of Vivenu."""


class VivenuAuthError(VivenuError):
    """Vivenu refused the region's key (401/403)."""


def validate_event_id(event_id: str) -> str:
    if not _EVENT_ID_PATTERN.match(event_id or ""):
        raise VivenuConfigError(
            f"malformed Vivenu event id {event_id!r}: expected 1-64 letters, digits, '_' or '-' "
            "(e.g. 6864d4f427c2aa9b05cd17ee)"
        )
    return event_id


def normalize_region(region: str) -> str:
    return (region or "").strip().upper()


class VivenuResource(EnvironmentSettingsResource):
    """Read-only access to Vivenu's tickets API.

    The regions are the keys of `api_key_env`; each region's API key is the value of the variable its entry names,
    read when the run starts (an unset one fails that region's runs with a message naming it, not the others').
    DEV talks to `dev_base_url`, every other region to `production_base_url`.
    """

    api_key_env: dict[str, str] = Field(
        default=dict(SEED_KEY_VARIABLES),
        description="Each region and the environment variable holding its API key. A new region is a new entry "
        "(definitions.py or the launchpad) and its variable passed to the run containers (docker/).",
    )
    dev_base_url: str | None = Field(
        default=None, description=f"Vivenu's dev API, used by region DEV; else {DEV_BASE_URL_ENV}, else vivenu.dev."
    )
    production_base_url: str | None = Field(
        default=None,
        description=f"Vivenu's API for other regions; else {PRODUCTION_BASE_URL_ENV}, else vivenu.com.",
    )
    page_size: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE, description="Tickets per page (API max 1000).")
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, description="Tries per page on timeouts, 429 and 5xx.")
    max_passes: int = Field(
        default=5, ge=1, description="Readings of an event's list before giving up when it changes during each one."
    )
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_cap_seconds: float = Field(default=60.0, ge=0, description="Longest wait, Retry-After included.")

    def variables(self) -> Mapping[str, str | None]:
        keys = {
            variable: f"API key of Vivenu region {region}: its runs fail without it"
            for region, variable in sorted(self._key_variables().items())
        }
        return {**keys, DEV_BASE_URL_ENV: None, PRODUCTION_BASE_URL_ENV: None}

    def _key_variables(self) -> dict[str, str]:
        return {normalize_region(region): variable for region, variable in self.api_key_env.items()}

    def key_variable(self, region: str) -> str:
        """The variable holding `region`'s key."""
        return self._key_variables()[normalize_region(region)]

    def known_regions(self) -> list[str]:
        return sorted(self._key_variables())

    def configured_regions(self) -> list[str]:
        """Known regions whose key is set."""
        return [region for region in self.known_regions() if self.variable(self.key_variable(region))]

    def check_region(self, region: str) -> str:
        """The region, upper-cased, or a clear error when it is unknown or has no key."""
        region = normalize_region(region)
        if not _REGION_PATTERN.match(region) or region not in self.known_regions():
            configured = ", ".join(self.configured_regions()) or "none"
            raise VivenuConfigError(
                f"unknown Vivenu region {region!r}; configured regions: {configured} "
                "(a region is an entry of the vivenu resource's api_key_env, naming the variable of its key)"
            )
        if not self.variable(self.key_variable(region)):
            raise VivenuConfigError(
                f"no API key for Vivenu region {region}: set the {self.key_variable(region)} variable"
            )
        return region

    def base_url(self, region: str) -> str:
        if normalize_region(region) == DEV_REGION:
            url = self.dev_base_url or self.variable(DEV_BASE_URL_ENV) or DEV_BASE_URL
        else:
            url = self.production_base_url or self.variable(PRODUCTION_BASE_URL_ENV) or PRODUCTION_BASE_URL
        return url.rstrip("/")

    def fetch_tickets(
        self,
        *,
        region: str,
        event_id: str,
        page_size: int | None = None,
        on_page: PageCallback | None = None,
    ) -> list[dict[str, Any]]:
        """Every ticket of the event as one consistent reading of its list, each `_id` once.

        Vivenu pages by offset, so a ticket removed (or added) before the page boundary while the event is paged
        shifts the rest: the next page would skip (or repeat) one, and the count would still look right. Each page
        therefore starts with the previous page's last ticket; when that ticket is not where it was, or `total`
        went down, the list changed under the pager and the pass starts again, until one pass reads the list
        without a change (at most `max_passes`). `on_page(fetched, total)` is called after each page, `fetched`
        counting the current pass. An event without tickets returns [].
        """
        region = self.check_region(region)
        validate_event_id(event_id)
        size = page_size or self.page_size
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise VivenuConfigError(f"page size {size} is outside 1..{MAX_PAGE_SIZE}")
        with self._client(region) as client:
            for _ in range(self.max_passes):
                tickets = self._read_pass(client, region=region, event_id=event_id, size=size, on_page=on_page)
                if tickets is not None:
                    return tickets
        raise VivenuError(
            f"Vivenu ({region}) event {event_id}: its ticket list changed during each of {self.max_passes} passes "
            "(sales or cancellations while it was paged); run the pull again"
        )

    def _read_pass(
        self, client: httpx.Client, *, region: str, event_id: str, size: int, on_page: PageCallback | None
    ) -> list[dict[str, Any]] | None:
        """One reading of the list from the start, or None when it changed under the pager."""
        tickets: dict[str, dict[str, Any]] = {}
        # Pages of one cannot overlap and still move on; for them only a falling `total` shows a change.
        overlap = 1 if size > 1 else 0
        skip, boundary, last_total = 0, None, None
        while True:
            page = self._get_page(client, region=region, event_id=event_id, top=size, skip=skip)
            rows, total = page["rows"], page["total"]
            if boundary is not None and overlap and (not rows or rows[0]["_id"] != boundary):
                return None
            if last_total is not None and total < last_total:
                return None
            for ticket in rows:
                tickets[ticket["_id"]] = ticket
            if on_page is not None:
                on_page(len(tickets), total)
            end = skip + len(rows)
            if end >= total:
                return list(tickets.values())
            if not rows:
                return None  # the list ended before its own total: it shrank under the pager
            boundary, last_total = rows[-1]["_id"], total
            skip = end - overlap

    def _client(self, region: str) -> httpx.Client:
        import httpx

        key = self.variable(self.key_variable(region)) or ""
        timeout = httpx.Timeout(self.read_timeout_seconds, connect=self.connect_timeout_seconds)
        return httpx.Client(
            base_url=self.base_url(region),
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=timeout,
        )

    def _get_page(self, client: httpx.Client, *, region: str, event_id: str, top: int, skip: int) -> dict[str, Any]:
        import httpx

        params = {"event": event_id, "top": top, "skip": skip}
        for attempt in range(1, self.max_attempts + 1):
            retry_after = None
            try:
                response = client.get("/api/tickets", params=params)
            except httpx.HTTPError as error:
                if not is_retryable_error(error):
                    raise VivenuError(f"Vivenu ({region}) request failed: {type(error).__name__}") from None
                problem = f"{type(error).__name__} after {attempt} attempts"
            else:
                if response.status_code in (401, 403):
                    raise VivenuAuthError(
                        f"Vivenu ({region}) refused the key in {self.key_variable(region)} "
                        f"(HTTP {response.status_code}): check that it is the right key for {region}"
                    )
                if response.is_success:
                    return _parse_page(response, region)
                if not is_retryable_status(response.status_code):
                    raise VivenuError(
                        f"Vivenu ({region}) answered HTTP {response.status_code} for event {event_id}: "
                        f"{_short(response.text)}"
                    )
                retry_after = retry_after_seconds(response)
                problem = f"HTTP {response.status_code} after {attempt} attempts"
            if attempt < self.max_attempts:
                time.sleep(
                    backoff_seconds(
                        attempt, base=self.backoff_base_seconds, cap=self.backoff_cap_seconds, retry_after=retry_after
                    )
                )
        raise VivenuError(f"Vivenu ({region}) tickets of event {event_id} (skip={skip}) unavailable: {problem}")


def _parse_page(response: httpx.Response, region: str) -> dict[str, Any]:
    try:
        body = response.json()
        rows = body["rows"]
        total = int(body["total"])
    except (ValueError, KeyError, TypeError):
        raise VivenuError(f"Vivenu ({region}) answered a tickets page without 'rows' and 'total'") from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) and row.get("_id") for row in rows):
        raise VivenuError(f"Vivenu ({region}) answered ticket rows without an '_id'")
    return {"rows": rows, "total": total}


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


SEED_TEST_WEBHOOK_URL = "https://vivenu-filter.high-impact-athletes.workers.dev/test-created"
SEED_PRODUCTION_WEBHOOK_URL = "https://vivenu-filter.high-impact-athletes.workers.dev/ticket-created"


class VivenuWebhooksResource(EnvironmentSettingsResource):
    """Where the charity tickets are delivered: the URL in the variable `production_url_env` (`test_url_env` for
    test mode) names, read when the run starts, else seed 002's endpoint. A run's config may still name another."""

    production_url_env: str = Field(
        default="VIVENU_WEBHOOK_PRODUCTION_URL", description="The variable holding the production endpoint."
    )
    test_url_env: str = Field(default="VIVENU_WEBHOOK_TEST_URL", description="The variable holding the test endpoint.")

    def variables(self) -> Mapping[str, str | None]:
        # Seed 002's endpoints are the real receivers, so an unset variable is not a missing setting.
        return {self.production_url_env: None, self.test_url_env: None}

    def endpoint(self, *, mode: str) -> str:
        if mode == "test":
            return self.variable(self.test_url_env) or SEED_TEST_WEBHOOK_URL
        return self.variable(self.production_url_env) or SEED_PRODUCTION_WEBHOOK_URL
