"""A fake Big Top site (Popmenu page, /graphql, /events/<slug>.ics) on a loopback port, with Cloudflare's failures.

    with bigtop_site() as site:
        site.add_event("trivia-night", "Trivia Night", datetime(2026, 12, 1, 19))
        site.page = "challenge"            # 403 + cf-mitigated: challenge + the interstitial's HTML
        site.page_script.extend(["normal", "challenge"])   # the next page visits, in order (the probe)
        collect(browser=chromium_for_tests(), options=site.options())

Behaviours per endpoint (`page`, `graphql`, `ics`): "normal", "challenge" (403, cf-mitigated, the interstitial),
"blocked" (Cloudflare's 403 with only its `server`/`cf-ray` headers), "rate_limited" (Cloudflare's 429 "error code:
1015"), "unavailable" (a plain 503 from the origin, no Cloudflare header), "origin_down" (a 503 proxied by Cloudflare:
its headers, no challenge), "slow" (answers after `slow_s`, beyond the test's timeouts); for the page also
"solvable" (a challenge whose script sets `cf_clearance` and reloads after `solve_ms`, as a passed managed challenge
does). Answers carry Cloudflare's `server: cloudflare` and `cf-ray`, as a site behind it does, except "unavailable"
and a failing file's (`SiteEvent.status`), which come bare from the origin. `ics_latency_s` makes files overlap in
flight; the site records every request and the most .ics requests it had open at once.
"""

import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import unquote

import pytest

from ingest_platform.bigtop.collector import DEFAULT_PAGE_PATH, DEFAULT_RESTAURANT_ID, CollectOptions
from ingest_platform.resources.browser import DEBIAN_CHROMIUM, BrowserResource
from tests.fakes.http import LoopbackServer

Behaviour = Literal["normal", "challenge", "blocked", "rate_limited", "solvable", "unavailable", "origin_down", "slow"]

# Chromium may resolve nothing but the loopback: no test can reach the internet through the browser.
LOOPBACK_ONLY = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"

requires_chromium = pytest.mark.skipif(
    not os.access(DEBIAN_CHROMIUM, os.X_OK) and not os.environ.get("CI"),
    reason=f"Chromium is not installed at {DEBIAN_CHROMIUM} (Debian: apt-get install -y chromium)",
)


def chromium_for_tests(**overrides: Any) -> BrowserResource:
    """The platform's BrowserResource, loopback-only, with timeouts short enough for tests."""
    settings: dict[str, Any] = {
        "extra_args": [LOOPBACK_ONLY],
        "navigation_timeout_s": 10.0,
        "request_timeout_s": 10.0,
        "session_timeout_s": 60.0,
    }
    settings.update(overrides)
    return BrowserResource(**settings)


CHALLENGE_HTML = """<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="360"></head><body><div class="main-wrapper" role="main">
<h1>www.bigtopbrewing.com</h1><p>Verifying you are human. This may take a few seconds.</p>
<noscript><div>Enable JavaScript and cookies to continue</div></noscript></div>
<script>window._cf_chl_opt={cvId: '3', cType: 'managed'};</script>
<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=8f1b2c3d4e5f6a7b"></script>
</body></html>"""

SOLVING_SCRIPT = """<script>setTimeout(() => { document.cookie = "cf_clearance=passed; path=/"; location.reload(); },
{solve_ms});</script>"""

# An ordinary page that names Cloudflare twice (a CDN script and the footer): it must not read as a challenge.
VENUE_HTML = """<!DOCTYPE html><html><head><title>Restaurant &amp; Brewery | Big Top Brewing Co.</title>
<script async src="https://cdnjs.cloudflare.com/ajax/libs/jquery/3.7.1/jquery.min.js"></script></head>
<body><h1>Big Top Brewing Co. — Restaurant &amp; Brewery</h1><div id="calendar">Upcoming events</div>
<footer>Performance and security by Cloudflare</footer></body></html>"""


@dataclass
class SiteEvent:
    """One calendar record and its .ics file. Times are venue-local (America/New_York)."""

    slug: str
    title: str
    start: datetime
    end: datetime | None = None
    record_id: int = 0
    description: str | None = None
    location: str | None = "Big Top Brewing, 6111 Porter Way, Sarasota, FL"
    categories: list[str] = field(default_factory=list)
    rrule: str | None = None
    exdates: list[datetime] = field(default_factory=list)
    # original start → (new start, new end, title): RECURRENCE-ID overrides of a series
    overrides: dict[datetime, tuple[datetime, datetime, str]] = field(default_factory=dict)
    # the venue generator's invalid values: DTEND:-47120101T235959 and an RRULE with `UNTIL=;`
    venue_quirks: bool = False
    slow: bool = False  # this file alone answers after the site's slow_s
    status: int | None = None  # this file alone answers with this status and a plain body (a broken file)
    raw_ics: str | None = None  # served verbatim instead of the generated file

    @property
    def uid(self) -> str:
        return f"{self.slug}@bigtopbrewing.com"

    def ics(self, base_url: str) -> str:
        if self.raw_ics is not None:
            return self.raw_ics
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Popmenu//Events//EN", "BEGIN:VEVENT"]
        lines += [f"UID:{self.uid}", f"DTSTAMP:{datetime(2026, 1, 1):%Y%m%dT%H%M%S}Z", _local("DTSTART", self.start)]
        if self.venue_quirks:
            lines.append("DTEND:-47120101T235959")
        elif self.end is not None:
            lines.append(_local("DTEND", self.end))
        if self.rrule:
            lines.append(f"RRULE:{self.rrule}")
        lines += [_local("EXDATE", exdate) for exdate in self.exdates]
        lines.append(f"SUMMARY:{_escape(self.title)}")
        if self.description:
            lines.append(f"DESCRIPTION:{_escape(self.description)}")
        if self.location:
            lines.append(f"LOCATION:{_escape(self.location)}")
        if self.categories:
            lines.append("CATEGORIES:" + ",".join(_escape(name) for name in self.categories))
        lines += [f"URL:{base_url}/events/{self.slug}", "END:VEVENT"]
        for original, (start, end, title) in self.overrides.items():
            lines += ["BEGIN:VEVENT", f"UID:{self.uid}", _local("RECURRENCE-ID", original)]
            lines += [_local("DTSTART", start), _local("DTEND", end), f"SUMMARY:{_escape(title)}", "END:VEVENT"]
        lines.append("END:VCALENDAR")
        return "\r\n".join(lines) + "\r\n"


def _local(name: str, value: datetime) -> str:
    return f"{name};TZID=America/New_York:{value:%Y%m%dT%H%M%S}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: str
    at: float


class FakeBigTopSite:
    def __init__(self, *, restaurant_id: int = DEFAULT_RESTAURANT_ID, slow_s: float = 5.0) -> None:
        self.restaurant_id = restaurant_id
        self.slow_s = slow_s
        self.events: dict[str, SiteEvent] = {}
        self.page: Behaviour = "normal"
        self.graphql: Behaviour = "normal"
        self.ics: Behaviour = "normal"
        self.page_script: deque[Behaviour] = deque()
        self.graphql_script: deque[Behaviour] = deque()
        self.ics_latency_s = 0.0
        self.count_extra = 0  # GraphQL's `count` says this many more records than it lists (a truncated listing)
        self.solve_ms = 200
        self.on_page_request: Callable[[], None] | None = None  # called while the browser waits for the page
        self.requests: list[RecordedRequest] = []
        self.max_ics_in_flight = 0
        self.session_cookie = f"__cf_bm={secrets.token_hex(8)}"
        self._in_flight = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = LoopbackServer(_handler_for(self), self)

    @property
    def base_url(self) -> str:
        return self._server.url

    @property
    def page_url(self) -> str:
        return self.base_url + DEFAULT_PAGE_PATH

    def options(self, **overrides: Any) -> CollectOptions:
        """Collector options pointed at this site, with no delay or settle time unless asked."""
        settings: dict[str, Any] = {"base_url": self.base_url, "delay_s": 0.0, "settle_s": 0.0, "future_only": False}
        settings.update(overrides)
        return CollectOptions(**settings)

    def add_event(
        self, slug: str, title: str, start: datetime, end: datetime | None = None, **fields: Any
    ) -> SiteEvent:
        event = SiteEvent(slug=slug, title=title, start=start, end=end, record_id=len(self.events) + 1, **fields)
        self.events[slug] = event
        return event

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.path.startswith(path_prefix)]

    def start(self) -> "FakeBigTopSite":
        self._server.start()
        return self

    def stop(self) -> None:
        self._released.set()  # lets "slow" handlers answer now instead of holding their threads
        self._server.stop()

    def __enter__(self) -> "FakeBigTopSite":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # Behaviour of one request: a scripted behaviour if any is left, else the standing one.
    def _behaviour(self, script: deque[Behaviour], standing: Behaviour) -> Behaviour:
        with self._lock:
            return script.popleft() if script else standing

    def _hold(self) -> None:
        self._released.wait(self.slow_s)

    def _ics_started(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_ics_in_flight = max(self.max_ics_in_flight, self._in_flight)

    def _ics_finished(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _records(self) -> list[dict[str, Any]]:
        return [
            {"id": event.record_id, "name": event.title, "slug": event.slug, "createdAt": "2026-01-01T00:00:00Z"}
            for event in self.events.values()
        ]


def _handler_for(site: FakeBigTopSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds ~40 ms to each.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self, body: str = "") -> None:
            with site._lock:
                site.requests.append(
                    RecordedRequest(self.command, self.path, dict(self.headers.items()), body, time.monotonic())
                )

        def _send(
            self,
            status: int,
            body: str,
            content_type: str,
            headers: dict[str, str] | None = None,
            *,
            cloudflare: bool = True,
        ) -> None:
            payload = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if cloudflare:
                # The site sits behind Cloudflare: every answer that passes through it carries these two.
                self.send_header("Server", "cloudflare")
                self.send_header("CF-RAY", f"{secrets.token_hex(8)}-MIA")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def _refuse(self, behaviour: Behaviour) -> bool:
            """Answer as Cloudflare or a failing origin would; False when the request should be served."""
            if behaviour == "solvable" and "cf_clearance=passed" not in (self.headers.get("Cookie") or ""):
                html = CHALLENGE_HTML.replace(
                    "</body>", SOLVING_SCRIPT.replace("{solve_ms}", str(site.solve_ms)) + "</body>"
                )
                self._send(403, html, "text/html; charset=UTF-8", {"cf-mitigated": "challenge"})
                return True
            if behaviour == "challenge":
                self._send(403, CHALLENGE_HTML, "text/html; charset=UTF-8", {"cf-mitigated": "challenge"})
                return True
            if behaviour == "blocked":
                self._send(403, "Forbidden", "text/plain")
                return True
            if behaviour == "rate_limited":
                self._send(429, "error code: 1015", "text/plain", {"Retry-After": "60"})
                return True
            if behaviour == "unavailable":
                self._send(503, "Service Temporarily Unavailable", "text/plain", cloudflare=False)
                return True
            if behaviour == "origin_down":
                self._send(503, "<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html")
                return True
            if behaviour == "slow":
                site._hold()
            return False

        def do_GET(self) -> None:
            self._record()
            path = self.path.split("?", 1)[0]
            if path == DEFAULT_PAGE_PATH:
                if site.on_page_request is not None:
                    site.on_page_request()
                if not self._refuse(site._behaviour(site.page_script, site.page)):
                    self._send(
                        200, VENUE_HTML, "text/html; charset=utf-8", {"Set-Cookie": f"{site.session_cookie}; Path=/"}
                    )
            elif path.startswith("/events/") and path.endswith(".ics"):
                self._ics(unquote(path[len("/events/") : -len(".ics")]))
            else:
                self._send(404, "Not Found", "text/plain")

        def _ics(self, slug: str) -> None:
            site._ics_started()
            try:
                if site.ics_latency_s:
                    time.sleep(site.ics_latency_s)
                event = site.events.get(slug)
                if self._refuse("slow" if event is not None and event.slow else site.ics):
                    return
                if event is None:
                    self._send(404, "Not Found", "text/plain")
                elif event.status is not None:
                    self._send(event.status, "Internal Server Error", "text/plain", cloudflare=False)
                else:
                    self._send(200, event.ics(site.base_url), "text/calendar; charset=utf-8")
            finally:
                site._ics_finished()

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            self._record(body)
            if self.path != "/graphql":
                self._send(404, "Not Found", "text/plain")
                return
            if self._refuse(site._behaviour(site.graphql_script, site.graphql)):
                return
            try:
                request = json.loads(body)
                restaurant_id = request["variables"]["restaurantId"]
                asks_calendar = "calendarEvents" in request["query"]
            except (ValueError, KeyError, TypeError):
                self._send(400, json.dumps({"errors": [{"message": "bad request"}]}), "application/json")
                return
            if not asks_calendar or restaurant_id != site.restaurant_id:
                answer = {"data": {"calendarEvents": None}, "errors": [{"message": "Restaurant not found"}]}
            else:
                records = site._records()
                count = len(records) + site.count_extra
                answer = {"data": {"calendarEvents": {"count": count, "records": records}}}
            self._send(200, json.dumps(answer), "application/json; charset=utf-8")

    return Handler


@contextmanager
def bigtop_site(**settings: Any) -> Iterator[FakeBigTopSite]:
    """A started fake Big Top site, stopped on exit."""
    with FakeBigTopSite(**settings) as site:
        yield site
