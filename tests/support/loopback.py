"""A threaded HTTP server on loopback, for the fakes tests run in-process (the Graph
API fake; the emulator tests' webhook receiver)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers with `reply`."""

    def log_message(self, *args: Any) -> None:
        pass

    def body(self) -> bytes:
        """The request body (by Content-Length; empty without one)."""
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, status: int, body: bytes = b"", content_type: str | None = None) -> None:
        """Send a complete answer; a client that already gave up is not an error."""
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out (a scripted delay) and closed the connection


class LoopbackServer:
    """Serve `handler` on 127.0.0.1 at a free port from a daemon thread until `stop`.

    Each request runs in its own daemon thread, so a slow answer (a scripted delay)
    never blocks the next request, and a test that forgets to stop does not hang exit.
    Usable as a context manager.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Self:
        # `stop` waits until the loop next looks at its flag: a short poll keeps every
        # test that starts a server from paying most of a poll interval at teardown.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
