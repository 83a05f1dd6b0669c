"""A loopback HTTP server in a background thread, shared by the fakes of external parties."""

import json
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How long a hung request is held at most when the client never gives up: longer than any test's timeout.
LONGEST_HANG_SECONDS = 60.0


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
    # Headers and body leave in two writes; with Nagle's algorithm the body would wait for the client's delayed
    # ACK (40 ms on Linux) and every small answer would look that slow.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read what the fake recorded instead."""

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def hold_until_client_leaves(self, *, release: Callable[[], bool] | None = None) -> bool:
        """Keep this request unanswered until the client hangs up (its timeout) or `release()` is true; True when
        the client left. The end is an event, not a guessed duration, so a slow machine cannot turn a request the
        client gave up on into an answered one."""
        deadline = time.monotonic() + LONGEST_HANG_SECONDS
        while time.monotonic() < deadline and not (release is not None and release()):
            readable, _, _ = select.select([self.connection], [], [], 0.02)
            if readable and self._client_closed():
                self.close_connection = True
                return True
        return False

    def _client_closed(self) -> bool:
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True


class QuietThreadingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up before its answer (a timeout, a killed sender) is what the tests provoke, not an
        error of the fake: no traceback for it. Anything else still prints."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """Serves `handler_class` on 127.0.0.1 on a free port; the handler reaches the fake as `self.server.fake`."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], fake: Any) -> None:
        self._server = QuietThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        self._server.fake = fake
        # A short poll interval keeps stop() quick; the default half second adds up over a suite.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
