"""The Big Top probe (seed 001, phase 1): can a real browser from this host reach Big Top reliably?

Each attempt opens a fresh browser on the venue page and makes the GraphQL call from it; an attempt passes when
the page is no challenge and GraphQL answers 200. The verdict follows the seed's gate (PASS ≥ 4/5, BORDERLINE
2-3/5, FAIL 0-1/5) scaled to N attempts; only PASS lets the run succeed, since the seed proceeds only on PASS.
"""

import time
from dataclasses import dataclass
from typing import Literal

from ingest_platform.bigtop.challenge import challenge_reason
from ingest_platform.bigtop.collector import (
    CollectOptions,
    calendar_request,
)
from ingest_platform.resources.browser import BrowserError, BrowserResource

Verdict = Literal["PASS", "BORDERLINE", "FAIL"]


@dataclass(frozen=True)
class ProbeAttempt:
    number: int
    is_challenge: bool
    graphql_status: int | None
    title: str
    final_url: str
    elapsed_s: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and not self.is_challenge and self.graphql_status == 200


def verdict(passed: int, attempts: int) -> Verdict:
    """PASS from 80 % of attempts, BORDERLINE from 40 %, else FAIL (for 5 attempts: 4-5, 2-3, 0-1)."""
    if attempts < 1 or not 0 <= passed <= attempts:
        raise ValueError(f"{passed} passed out of {attempts} attempts")
    if passed * 5 >= attempts * 4:
        return "PASS"
    if passed * 5 >= attempts * 2:
        return "BORDERLINE"
    return "FAIL"


def probe_once(*, browser: BrowserResource, options: CollectOptions, number: int) -> ProbeAttempt:
    """One attempt; a browser failure (timeout, refused connection) is a failed attempt, not a crash."""
    started = time.monotonic()
    try:
        with browser.session() as session:
            visit = session.visit(options.page_url, settle_s=options.settle_s)
            reason = challenge_reason(status=visit.status, headers=visit.headers, html=visit.html, title=visit.title)
            graphql = session.fetch(calendar_request(options))
    except BrowserError as error:
        return ProbeAttempt(number, False, None, "", "", time.monotonic() - started, error=str(error))
    return ProbeAttempt(
        number=number,
        is_challenge=reason is not None,
        graphql_status=graphql.status,
        title=visit.title,
        final_url=visit.url,
        elapsed_s=time.monotonic() - started,
        error=graphql.error,
    )


def markdown_table(attempts: list[ProbeAttempt]) -> str:
    lines = [
        "| # | IS_CHALLENGE | GRAPHQL_STATUS | title | final URL | elapsed (s) | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for attempt in attempts:
        result = "pass" if attempt.passed else f"fail: {attempt.error}" if attempt.error else "fail"
        lines.append(
            f"| {attempt.number} | {attempt.is_challenge} | {attempt.graphql_status or '-'} "
            f"| {_cell(attempt.title)} | {_cell(attempt.final_url)} | {attempt.elapsed_s:.2f} | {_cell(result)} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")[:200]
