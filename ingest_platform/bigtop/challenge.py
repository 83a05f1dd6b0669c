"""Telling a Cloudflare challenge (seed 001) from the site being unavailable, without mistaking an ordinary page
that mentions Cloudflare for either.

A challenge means Cloudflare refused this browser: the probe counts it against the browser and the collector
reports it as such. An outage (a 5xx, or a 429 that Cloudflare did not send) says nothing about the browser: the
site is down or overloaded, and the run is retried later.
"""

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Where = Literal["page", "graphql", "ics"]
RefusalKind = Literal["challenge", "unavailable"]

# Statuses after which the collector asks for no more files: Cloudflare's refusals and the site being down.
STOP_STATUSES = frozenset({403, 429, 503})
# Statuses Cloudflare's WAF and rate limiter answer with; only from Cloudflare (its headers) are they a challenge.
CLOUDFLARE_REFUSAL_STATUSES = frozenset({403, 429})
# The origin cannot serve right now; 429 only when Cloudflare did not send it (then it is the origin's own limit).
UNAVAILABLE_STATUSES = frozenset({429})

# Titles of Cloudflare's interstitials: the JS/managed challenge and the block page.
TITLE_MARKERS = ("just a moment", "attention required")
# Only Cloudflare's challenge pages carry these. The word "cloudflare" alone is no marker: ordinary pages load
# scripts from cdnjs.cloudflare.com or thank Cloudflare in their footer.
HTML_MARKERS = ("/cdn-cgi/challenge-platform/", "cf-challenge", "<title>just a moment", "<title>attention required")

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Refusal:
    """Why a response is no answer: a challenge or the site being unavailable, with the evidence."""

    kind: RefusalKind
    reason: str


class ChallengeError(Exception):
    """Cloudflare challenged the collector: where (page, graphql or ics), with which status, and the evidence."""

    def __init__(self, *, where: Where, status: int | None, url: str, reason: str) -> None:
        self.where = where
        self.status = status
        self.url = url
        self.reason = reason
        super().__init__(f"Cloudflare challenge at {where} (HTTP {status if status is not None else '-'}): {reason}")


def title_of(html: str) -> str:
    match = _TITLE.search(html or "")
    return html_lib.unescape(" ".join(match.group(1).split())) if match else ""


def from_cloudflare(headers: Mapping[str, str]) -> bool:
    """Cloudflare sent (or proxied) this response: it names itself in `server` and stamps a `cf-ray`."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return lowered.get("server", "").strip().lower() == "cloudflare" or bool(lowered.get("cf-ray", "").strip())


def classify(
    *, status: int | None, headers: Mapping[str, str], html: str = "", title: str | None = None
) -> Refusal | None:
    """A challenge, the site being unavailable, or None when the response is neither.

    Cloudflare stamps `server: cloudflare` and `cf-ray` on every response it proxies, the origin's own errors
    included, so those headers make a 403/429 Cloudflare's refusal but leave a bare 503 an outage: Cloudflare's
    own 503 challenge ("under attack" mode) is its interstitial, which the markers recognise.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if lowered.get("cf-mitigated", "").strip().lower() == "challenge":
        return Refusal("challenge", "cf-mitigated: challenge")
    page_title = (title if title is not None else title_of(html)).lower()
    for marker in TITLE_MARKERS:
        if marker in page_title:
            return Refusal("challenge", f"title contains {marker!r}")
    text = (html or "").lower()
    for marker in HTML_MARKERS:
        if marker in text:
            return Refusal("challenge", f"HTML contains {marker!r}")
    cloudflare = from_cloudflare(headers)
    if status in CLOUDFLARE_REFUSAL_STATUSES and cloudflare:
        return Refusal("challenge", f"status {status} from Cloudflare")
    if status is not None and (status >= 500 or status in UNAVAILABLE_STATUSES):
        via = " through Cloudflare" if cloudflare else ""
        return Refusal("unavailable", f"status {status}{via} without a challenge: the site is unavailable")
    return None


def challenge_reason(
    *, status: int | None, headers: Mapping[str, str], html: str = "", title: str | None = None
) -> str | None:
    """Why this response is a challenge, or None when it is not one (an outage is not)."""
    refusal = classify(status=status, headers=headers, html=html, title=title)
    return refusal.reason if refusal is not None and refusal.kind == "challenge" else None
