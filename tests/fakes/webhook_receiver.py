"""A fake charity-webhook receiver on loopback, like HIA's worker: records every envelope with its arrival time,
drops a repeated envelope id as a duplicate, and can fail the first N tries, hang, or answer 4xx.

A hung request is held until its client gives up (then it is recorded with status 499, client closed request, and
never counted as accepted) or until the test releases it: never for a guessed time, so the outcome does not depend
on how fast the machine is."""

import json
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.fakes.http import JsonHandler, LoopbackServer


@dataclass(frozen=True)
class Arrival:
    at: float  # when the request's first bytes reached the receiver's host (kernel timestamp, epoch seconds)
    path: str
    envelope: dict[str, Any]
    status: int

    @property
    def ticket_id(self) -> str:
        return self.envelope["data"]["ticket"]["_id"]


class WebhookReceiver:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.accepted: dict[str, dict[str, Any]] = {}  # envelope id → envelope, first acknowledgement only
        self.duplicates: Counter[str] = Counter()  # envelope id → repeats acknowledged as duplicates
        self._tries: Counter[str] = Counter()
        self._fail_first: dict[str, tuple[int, int, str | None]] = {}
        self._fail_every_ticket: tuple[int, int, str | None] | None = None
        self._rejected: dict[str, tuple[int, str]] = {}
        self._hang: dict[str, int | None] = {}
        self.latency_seconds = 0.0
        self._lock = threading.Lock()
        self._server = LoopbackServer(_ReceiverHandler, self)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> "WebhookReceiver":
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()

    def fail_first(
        self, tries: int, *, status: int = 503, ticket_ids: list[str] | None = None, retry_after: str | None = None
    ) -> None:
        """Answer the first `tries` requests of each ticket (or of every ticket) with `status`."""
        if ticket_ids is None:
            self._fail_every_ticket = (tries, status, retry_after)
        for ticket_id in ticket_ids or []:
            self._fail_first[ticket_id] = (tries, status, retry_after)

    def reject(self, ticket_ids: list[str], *, status: int = 400, message: str) -> None:
        for ticket_id in ticket_ids:
            self._rejected[ticket_id] = (status, message)

    def accept(self, ticket_ids: list[str]) -> None:
        for ticket_id in ticket_ids:
            self._rejected.pop(ticket_id, None)
            self._hang.pop(ticket_id, None)

    def hang(self, ticket_ids: list[str], *, until_accepted: int | None = None) -> None:
        """Hold every request of these tickets until the client hangs up, or (then answer it) until
        `until_accepted` other envelopes have been accepted."""
        for ticket_id in ticket_ids:
            self._hang[ticket_id] = until_accepted

    def abandoned(self) -> Counter[str]:
        """Requests per ticket id whose client hung up before the answer."""
        with self._lock:
            return Counter(arrival.ticket_id for arrival in self.arrivals if arrival.status == CLIENT_CLOSED)

    def acknowledgements(self) -> Counter[str]:
        """2xx answers per ticket id, duplicates included."""
        with self._lock:
            return Counter(arrival.ticket_id for arrival in self.arrivals if 200 <= arrival.status < 300)

    def accepted_tickets(self) -> Counter[str]:
        with self._lock:
            return Counter(envelope["data"]["ticket"]["_id"] for envelope in self.accepted.values())

    def max_in_any_second(self) -> int:
        """The most requests that arrived within any window [t, t + 1 s)."""
        times = sorted(arrival.at for arrival in self.arrivals)
        most, start = 0, 0
        for end, at in enumerate(times):
            while at - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def handle(
        self, at: float, path: str, envelope: dict[str, Any], request: JsonHandler
    ) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """The answer to one request, or None when its client hung up while it was held."""
        ticket_id = envelope["data"]["ticket"]["_id"]
        with self._lock:
            self._tries[ticket_id] += 1
            tries = self._tries[ticket_id]
            hung = ticket_id in self._hang
            until_accepted = self._hang.get(ticket_id)
        release = None if until_accepted is None else lambda: len(self.accepted) >= until_accepted
        if hung and request.hold_until_client_leaves(release=release):
            with self._lock:
                self.arrivals.append(Arrival(at, path, envelope, CLIENT_CLOSED))
            return None
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self._lock:
            status, body, headers = self._answer(ticket_id, tries, envelope)
            self.arrivals.append(Arrival(at, path, envelope, status))
        return status, body, headers

    def _answer(self, ticket_id: str, tries: int, envelope: dict[str, Any]) -> tuple[int, dict[str, Any], dict]:
        if ticket_id in self._rejected:
            status, message = self._rejected[ticket_id]
            return status, {"error": message}, {}
        failing = self._fail_first.get(ticket_id) or self._fail_every_ticket
        if failing is not None and tries <= failing[0]:
            _, status, retry_after = failing
            return status, {"error": "worker overloaded"}, {"Retry-After": retry_after} if retry_after else {}
        if envelope["id"] in self.accepted:
            self.duplicates[envelope["id"]] += 1
            return 200, {"ok": True, "duplicate": True}, {}
        self.accepted[envelope["id"]] = envelope
        return 200, {"ok": True}, {}


CLIENT_CLOSED = 499  # nginx's status for a request whose client hung up before the answer

# Linux's SO_TIMESTAMPNS (asm-generic value; the socket module does not export it): the kernel stamps every
# received packet, so an arrival time does not depend on when this process got the CPU to read it.
SO_TIMESTAMPNS = 35


class _ReceiverHandler(JsonHandler):
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)

    def handle_one_request(self) -> None:
        self.arrived_at = self._kernel_arrival()
        super().handle_one_request()

    def _kernel_arrival(self) -> float:
        """The kernel's receive time of the next request's first bytes, peeked before they are read. Clients send
        one request at a time on a connection (no pipelining), so nothing of it sits in `rfile`'s buffer yet."""
        try:
            _, ancillary, _, _ = self.connection.recvmsg(1, 64, socket.MSG_PEEK)
        except OSError:
            return time.time()
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                return seconds + nanoseconds / 1e9
        return time.time()

    def do_POST(self) -> None:
        at = self.arrived_at
        try:
            envelope = json.loads(self.read_body())
            envelope["data"]["ticket"]["_id"]
        except (ValueError, KeyError, TypeError):
            self.send_json(400, {"error": "not a ticket.created envelope"})
            return
        answer = self.server.fake.handle(at, self.path, envelope, self)
        if answer is not None:
            self.send_json(*answer)
