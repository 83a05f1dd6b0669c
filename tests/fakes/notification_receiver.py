"""A notification receiver on loopback: records every POST and answers with the statuses it is told to."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.http import LoopbackServer


@dataclass
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class WebhookReceiver:
    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once they run out
    received: list[ReceivedRequest] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator["WebhookReceiver"]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append(ReceivedRequest(self.path, dict(self.headers), raw))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        server = LoopbackServer(Handler, self)
        self.url = f"{server.url}/hooks/rtarf"
        server.start()
        try:
            yield self
        finally:
            server.stop()
