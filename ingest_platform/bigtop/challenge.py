"""Recognising a Cloudflare challenge (seed 001) without mistaking an ordinary page that mentions Cloudflare."""

import html as html_lib
import re
from collections.abc import Mapping
from typing import Literal

Where = Literal["page", "graphql", "ics"]

# Statuses Cloudflare answers a challenged or blocked client with (managed challenge, rate limit, "under attack").
CHALLENGE_STATUSES = frozenset({403, 429, 503})

# Titles of Cloudflare's interstitials: the JS/managed challenge and the block page.
TITLE_MARKERS = ("just a moment", "attention required")
# Only Cloudflare's challenge pages carry these. The word "cloudflare" alone is no marker: ordinary pages load
# scripts from cdnjs.cloudflare.com or thank Cloudflare in their footer.
HTML_MARKERS = ("/cdn-cgi/challenge-platform/", "cf-challenge", "<title>just a moment", "<title>attention required")

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


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


def challenge_reason(
    *, status: int | None, headers: Mapping[str, str], html: str = "", title: str | None = None
) -> str | None:
    """Why this response is a challenge, or None when it is not one."""
    mitigated = {name.lower(): value for name, value in headers.items()}.get("cf-mitigated", "")
    if mitigated.strip().lower() == "challenge":
        return "cf-mitigated: challenge"
    if status in CHALLENGE_STATUSES:
        return f"status {status}"
    page_title = (title if title is not None else title_of(html)).lower()
    for marker in TITLE_MARKERS:
        if marker in page_title:
            return f"title contains {marker!r}"
    text = (html or "").lower()
    for marker in HTML_MARKERS:
        if marker in text:
            return f"HTML contains {marker!r}"
    return None


def raise_if_challenge(
    *, where: Where, url: str, status: int | None, headers: Mapping[str, str], html: str = "", title: str | None = None
) -> None:
    reason = challenge_reason(status=status, headers=headers, html=html, title=title)
    if reason is not None:
        raise ChallengeError(where=where, status=status, url=url, reason=reason)
