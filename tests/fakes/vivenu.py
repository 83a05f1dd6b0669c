"""A fake Vivenu tickets API on loopback: Bearer keys, paging with `total`, a list that changes between pages,
and scripted failures (429 with Retry-After, 5xx, 401, a request that hangs)."""

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.http import JsonHandler, LoopbackServer

MAX_TOP = 1000
SENDABLE_NAMES = ("HYROX MEN | CHARITY HIA", "CHARITY | HYROX DOUBLES WOMEN")
OTHER_NAMES = ("HYROX WOMEN", "HYROX PRO MEN")


def make_tickets(
    event_id: str, *, count: int = 1000, wrong_status: int = 50, not_charity: int = 200, seed: int = 7
) -> list[dict[str, Any]]:
    """The seed's example shape: `wrong_status` tickets RESERVED/INVALID, `not_charity` valid ones without
    "CHARITY" in the name, the rest valid charity tickets; shuffled, each with a holder's personal data."""
    tickets = []
    for index in range(count):
        if index < wrong_status:
            status, name = ("RESERVED", "INVALID")[index % 2], SENDABLE_NAMES[index % 2]
        elif index < wrong_status + not_charity:
            status, name = ("VALID", "DETAILSREQUIRED")[index % 2], OTHER_NAMES[index % 2]
        else:
            status, name = ("VALID", "DETAILSREQUIRED")[index % 2], SENDABLE_NAMES[index % 2]
        tickets.append(
            {
                "_id": f"{event_id[:8]}{index:016x}",
                "eventId": event_id,
                "sellerId": "seller-0001",
                "ticketTypeId": f"type-{index % 3}",
                "ticketName": name,
                "status": status,
                "firstname": f"Holder{index}",
                "lastname": f"Surname{index}",
                "email": f"holder{index}@example.com",
                "barcode": f"BC{index:08d}X",
                "createdAt": "2025-07-01T10:00:00.000Z",
            }
        )
    random.Random(seed).shuffle(tickets)
    return tickets


@dataclass(frozen=True)
class VivenuRequest:
    at: float
    path: str
    params: dict[str, str]
    authorization: str | None


class FakeVivenu:
    def __init__(self, *, keys: set[str]) -> None:
        self.keys = set(keys)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[VivenuRequest] = []
        self._failures: deque[tuple[int, dict[str, str]]] = deque()
        self._changes: dict[str, dict[int, list[tuple[list[str], list[tuple[int, dict[str, Any]]]]]]] = {}
        self._pages_served: dict[str, int] = {}
        self._hangs = 0
        self._lock = threading.Lock()
        self._server = LoopbackServer(_VivenuHandler, self)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> "FakeVivenu":
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()

    def fail_next(self, count: int, status: int, *, retry_after: str | None = None) -> None:
        """Answer the next `count` authorised requests with `status` (and `Retry-After` when given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._failures.extend([(status, headers)] * count)

    def hang_next(self, count: int) -> None:
        """Hold the next `count` requests unanswered until their client gives up."""
        with self._lock:
            self._hangs += count

    def take_hang(self) -> bool:
        with self._lock:
            if not self._hangs:
                return False
            self._hangs -= 1
            return True

    def change_after_page(
        self,
        event_id: str,
        page: int,
        *,
        remove: list[str] = (),
        insert: list[tuple[int, dict[str, Any]]] = (),
    ) -> None:
        """Sales and cancellations while the event is paged: once the event's `page`-th page has been served, the
        tickets `remove` are cancelled and each (position, ticket) of `insert` is sold, in the list's order."""
        self._changes.setdefault(event_id, {}).setdefault(page, []).append((list(remove), list(insert)))

    def handle(self, request: VivenuRequest) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests.append(request)
            if request.path != "/api/tickets":
                return 404, {"message": "Not Found"}, {}
            token = (request.authorization or "").removeprefix("Bearer ")
            if token not in self.keys:
                return 401, {"message": "Unauthorized"}, {}
            if self._failures:
                status, headers = self._failures.popleft()
                return status, {"message": "try again later"}, headers
            try:
                event_id = request.params["event"]
                top = int(request.params.get("top", "100"))
                skip = int(request.params.get("skip", "0"))
            except (KeyError, ValueError):
                return 400, {"message": "event, top and skip are required"}, {}
            if not 1 <= top <= MAX_TOP or skip < 0:
                return 400, {"message": f"top must be in 1..{MAX_TOP}"}, {}
            tickets = self.events.get(event_id, [])
            page = tickets[skip : skip + top]
            body = {"rows": page, "total": len(tickets)}
            served = self._pages_served[event_id] = self._pages_served.get(event_id, 0) + 1
            for remove, insert in self._changes.get(event_id, {}).pop(served, []):
                tickets[:] = [ticket for ticket in tickets if ticket["_id"] not in remove]
                for position, ticket in insert:
                    tickets.insert(position, ticket)
            return 200, body, {}


class _VivenuHandler(JsonHandler):
    def do_GET(self) -> None:
        split = urlsplit(self.path)
        params = {name: values[-1] for name, values in parse_qs(split.query).items()}
        request = VivenuRequest(time.monotonic(), split.path, params, self.headers.get("Authorization"))
        status, body, headers = self.server.fake.handle(request)
        if self.server.fake.take_hang() and self.hold_until_client_leaves():
            return
        self.send_json(status, body, headers)
