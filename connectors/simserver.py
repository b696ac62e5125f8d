"""A simulator (a WSGI app) served on a loopback port in a background thread, for the demo and the
benchmarks; tests use the apps in-process through httpx.WSGITransport instead."""

from __future__ import annotations

import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default backlog is 5: with dozens of hub workers connecting at once, connections
    # beyond it wait for a SYN retransmit (a second or more), which no vendor's front end does
    request_queue_size = 256


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Delayed:
    def __init__(self, app: Any, seconds: float):
        self.app, self.seconds = app, seconds

    def __call__(self, environ: Any, start_response: Any) -> Any:
        time.sleep(self.seconds)
        return self.app(environ, start_response)


class LoopbackServer:
    def __init__(self, app: Any, name: str):
        self._app = app
        self._name = name
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0) -> str:
        """Serve (port 0: a free one); returns the base URL. ``latency``: seconds every request waits
        before it is answered, as a vendor's API far away does (benchmarks)."""
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already serving")
        app = self._app if latency <= 0 else _Delayed(self._app, latency)
        server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self._name, daemon=True)
        self._thread.start()
        return f"http://{host}:{server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
