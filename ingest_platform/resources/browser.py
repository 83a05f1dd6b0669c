"""Chromium through Playwright's sync API, one short-lived browser per session, bounded in time everywhere.

Debian's Chromium is driven through `executable_path` (no `playwright install`). Every blocking call is bounded by
the smaller of its own timeout and what is left of the session's hard limit, and the browser, its context and the
Playwright driver are closed on every path out of `session()`, failures included.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

# Playwright is imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Response

DEBIAN_CHROMIUM = "/usr/lib/chromium/chromium"

# Headless in a container: no sandbox (no user namespaces), no GPU, /tmp instead of a small /dev/shm, and none of
# the background traffic (updates, sync, first-run pings) a collector has no use for.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


class BrowserError(Exception):
    """The browser could not do what was asked (not started, navigation failed, page script failed)."""


class BrowserUnavailableError(BrowserError):
    """Chromium is not installed where the resource expects it."""


class BrowserTimeoutError(BrowserError):
    """A navigation or request outlived its timeout, or the session outlived its hard limit."""

    def __init__(self, what: str, timeout_s: float, *, session_limit: bool = False) -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.session_limit = session_limit
        limit = "the session's hard limit" if session_limit else "its timeout"
        super().__init__(f"{what} did not finish within {timeout_s:g} s ({limit})")


@dataclass(frozen=True)
class PageVisit:
    """The page as it stands after navigation and the settle time (a solved challenge may have navigated on)."""

    requested_url: str
    url: str
    status: int | None
    headers: Mapping[str, str]
    title: str
    html: str


@dataclass(frozen=True)
class FetchResult:
    """One request made with the page's `fetch`: its status and body, or why there is none."""

    url: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str = ""
    error: str | None = None  # "timeout", "session", "not started" or the browser's message
    elapsed_s: float = 0.0


# Runs in the page, so requests leave through the browser's own network stack with the context's cookies.
# Starts are spaced by `delayMs` across all workers; at most `maxInFlight` are open; each is aborted at its
# timeout or at the session deadline; after a status in `stopStatuses` no new request starts.
_FETCH_ALL_JS = """
async ({requests, delayMs, maxInFlight, timeoutMs, remainingMs, stopStatuses, headerNames}) => {
  const deadline = Date.now() + remainingMs;
  const results = new Array(requests.length).fill(null);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  let next = 0;
  let nextStart = 0;
  let stopped = false;
  async function one(index) {
    const request = requests[index];
    const started = performance.now();
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      results[index] = {error: "session", elapsedMs: 0};
      return;
    }
    const timedOutBySession = remaining < timeoutMs;
    try {
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        referrer: request.referrer || undefined,
        credentials: "include",
        signal: AbortSignal.timeout(Math.min(timeoutMs, remaining)),
      });
      const headers = {};
      for (const name of headerNames) {
        const value = response.headers.get(name);
        if (value !== null) headers[name] = value;
      }
      const body = await response.text();
      results[index] = {status: response.status, headers, body, elapsedMs: performance.now() - started};
      if (stopStatuses.includes(response.status)) stopped = true;
    } catch (error) {
      const timedOut = error && error.name === "TimeoutError";
      results[index] = {
        error: timedOut ? (timedOutBySession ? "session" : "timeout") : String(error),
        elapsedMs: performance.now() - started,
      };
    }
  }
  async function worker() {
    while (!stopped && next < requests.length) {
      const index = next++;
      const now = Date.now();
      const wait = Math.max(0, nextStart - now);
      nextStart = Math.max(now, nextStart) + delayMs;
      if (wait > 0) await sleep(wait);
      if (stopped) break;
      await one(index);
    }
  }
  const workers = Math.max(1, Math.min(maxInFlight, requests.length));
  await Promise.all(Array.from({length: workers}, worker));
  return results;
}
"""

# Headers a caller may want to read back from `fetch`; the page can read all of them on same-origin responses.
RESPONSE_HEADERS = ("content-type", "cf-mitigated", "cf-ray", "server", "retry-after")


@dataclass(frozen=True)
class FetchRequest:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    referrer: str | None = None


class BrowserSession:
    """One browser, one fresh context, one page; every call bounded by the session's deadline."""

    def __init__(self, *, page: Page, resource: BrowserResource, deadline: float) -> None:
        self.page = page
        self._resource = resource
        self._deadline = deadline
        self._document: Response | None = None
        page.on("response", self._track_document)

    @property
    def request_timeout_s(self) -> float:
        return self._resource.request_timeout_s

    def remaining_s(self) -> float:
        return self._deadline - time.monotonic()

    def _bounded(self, what: str, timeout_s: float) -> float:
        remaining = self.remaining_s()
        if remaining <= 0:
            raise BrowserTimeoutError(what, self._resource.session_timeout_s, session_limit=True)
        return min(timeout_s, remaining)

    def _track_document(self, response: Response) -> None:
        # The last main-frame document, so a challenge that redirects to the real page is judged by the real page.
        request = response.request
        if request.is_navigation_request() and request.frame == self.page.main_frame:
            self._document = response

    def visit(self, url: str, *, settle_s: float = 0.0) -> PageVisit:
        """Open `url` (DOM ready), wait `settle_s` for scripts or a challenge to move on, and describe the result."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        timeout_s = self._bounded(f"opening {url}", self._resource.navigation_timeout_s)
        try:
            self._document = self.page.goto(url, wait_until="domcontentloaded", timeout=timeout_s * 1000)
            if settle_s > 0:
                self.page.wait_for_timeout(self._bounded("settling the page", settle_s) * 1000)
            title, html = self._read_page()
        except PlaywrightTimeoutError as error:
            raise self._timeout(f"opening {url}", timeout_s) from error
        except PlaywrightError as error:
            raise BrowserError(f"opening {url} failed: {_first_line(error)}") from error
        document = self._document
        return PageVisit(
            requested_url=url,
            url=self.page.url,
            status=document.status if document is not None else None,
            headers=dict(document.headers) if document is not None else {},
            title=title,
            html=html,
        )

    def _read_page(self) -> tuple[str, str]:
        from playwright.sync_api import Error as PlaywrightError

        try:
            return self.page.title(), self.page.content()
        except PlaywrightError:
            # A challenge that solves itself navigates while it is being read: read the page it lands on.
            self.page.wait_for_load_state("domcontentloaded")
            return self.page.title(), self.page.content()

    def fetch(self, request: FetchRequest) -> FetchResult:
        return self.fetch_all([request])[0]

    def fetch_all(
        self,
        requests: Sequence[FetchRequest],
        *,
        delay_s: float = 0.0,
        max_in_flight: int = 1,
        stop_statuses: Collection[int] = (),
    ) -> list[FetchResult]:
        """Make `requests` from the page with its cookies; results in request order, `None`-free.

        Requests never started (after a stop status, or past the session's deadline) come back with
        `error="not started"` or `error="session"`.
        """
        from playwright.sync_api import Error as PlaywrightError

        if not requests:
            return []
        remaining = self._bounded("page requests", self._resource.session_timeout_s)
        try:
            raw = self.page.evaluate(
                _FETCH_ALL_JS,
                {
                    "requests": [
                        {
                            "url": request.url,
                            "method": request.method,
                            "headers": dict(request.headers),
                            "body": request.body,
                            "referrer": request.referrer,
                        }
                        for request in requests
                    ],
                    "delayMs": max(0.0, delay_s) * 1000,
                    "maxInFlight": max(1, max_in_flight),
                    "timeoutMs": self._resource.request_timeout_s * 1000,
                    "remainingMs": remaining * 1000,
                    "stopStatuses": list(stop_statuses),
                    "headerNames": list(RESPONSE_HEADERS),
                },
            )
        except PlaywrightError as error:
            raise BrowserError(f"page requests failed: {_first_line(error)}") from error
        results = [
            FetchResult(
                url=request.url,
                status=item.get("status"),
                headers=item.get("headers") or {},
                body=item.get("body") or "",
                error=item.get("error"),
                elapsed_s=(item.get("elapsedMs") or 0) / 1000,
            )
            if item is not None
            else FetchResult(url=request.url, error="not started")
            for request, item in zip(requests, raw, strict=True)
        ]
        if any(result.error == "session" for result in results):
            raise BrowserTimeoutError("page requests", self._resource.session_timeout_s, session_limit=True)
        return results

    def _timeout(self, what: str, timeout_s: float) -> BrowserTimeoutError:
        if self.remaining_s() <= 0:
            return BrowserTimeoutError(what, self._resource.session_timeout_s, session_limit=True)
        return BrowserTimeoutError(what, timeout_s)


class BrowserResource(dg.ConfigurableResource):
    """Headless Chromium for the sources that need a real browser (Big Top, behind Cloudflare).

    Assets and ops that use it must run in the `ingest_platform.tags.BROWSER_POOL` pool, so one runs at a time.
    """

    executable_path: str = Field(default=DEBIAN_CHROMIUM, description="The Chromium binary (Debian's by default).")
    extra_args: list[str] = Field(
        default_factory=list,
        description="Chromium switches added to the fixed ones, e.g. --host-resolver-rules for tests.",
    )
    navigation_timeout_s: float = Field(default=45.0, gt=0, description="Limit for one page navigation.")
    request_timeout_s: float = Field(default=30.0, gt=0, description="Limit for one request made from the page.")
    session_timeout_s: float = Field(
        default=900.0, gt=0, description="Hard limit for a whole session: launch, navigation and every request."
    )
    launch_timeout_s: float = Field(default=30.0, gt=0, description="Limit for Chromium to start.")
    user_agent: str | None = Field(
        default=None, description="User-Agent for the context; unset keeps Chromium's own (it says HeadlessChrome)."
    )

    def launch_args(self) -> list[str]:
        return [*CHROMIUM_FLAGS, *self.extra_args]

    @contextmanager
    def session(self) -> Iterator[BrowserSession]:
        """A fresh browser and context for one run; everything is closed when the block exits, however it exits."""
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
        from playwright.sync_api import sync_playwright

        if not os.access(self.executable_path, os.X_OK):
            raise BrowserUnavailableError(
                f"Chromium not found at {self.executable_path} (Debian: apt-get install -y chromium)"
            )
        deadline = time.monotonic() + self.session_timeout_s
        with ExitStack() as cleanup:
            playwright = sync_playwright().start()
            cleanup.callback(playwright.stop)
            launch_timeout = min(self.launch_timeout_s, self.session_timeout_s)
            try:
                browser: Browser = playwright.chromium.launch(
                    executable_path=self.executable_path,
                    headless=True,
                    args=self.launch_args(),
                    timeout=launch_timeout * 1000,
                )
            except PlaywrightTimeoutError as error:
                clipped = launch_timeout < self.launch_timeout_s
                raise BrowserTimeoutError("starting Chromium", launch_timeout, session_limit=clipped) from error
            except PlaywrightError as error:
                raise BrowserError(f"starting Chromium failed: {_first_line(error)}") from error
            cleanup.callback(_quietly_close, browser)
            context = browser.new_context(user_agent=self.user_agent)
            cleanup.callback(_quietly_close, context)
            context.set_default_timeout(min(self.request_timeout_s, self.session_timeout_s) * 1000)
            context.set_default_navigation_timeout(min(self.navigation_timeout_s, self.session_timeout_s) * 1000)
            page = context.new_page()
            yield BrowserSession(page=page, resource=self, deadline=deadline)


def _quietly_close(closable: Any) -> None:
    from playwright.sync_api import Error as PlaywrightError

    # Closing after a crash or a timeout can itself fail; the next callback (browser, then driver) must still run.
    with suppress(PlaywrightError):
        closable.close()


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
