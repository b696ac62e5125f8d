"""A simulator (a WSGI app) served on a loopback port in a background thread, for the demo and the
benchmarks; tests use the apps in-process through httpx.WSGITransport instead."""

from __future__ import annotations

import contextlib
import io
import socket
import sys
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection may idle (httpx drops its own after 5 s)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default backlog is 5: with dozens of hub workers connecting at once, connections
    # beyond it wait for a SYN retransmit (a second or more), which no vendor's front end does
    request_queue_size = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def close_connections(self) -> None:
        """Kept-alive connections end with the server: a stopped simulator answers nothing."""
        with self.connections_lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self.connections.clear()


class _KeepAliveHandler(WSGIRequestHandler):
    """HTTP/1.1 with persistent connections, as every vendor's front end speaks: wsgiref answers
    HTTP/1.0 and closes each connection, so every request of a client cost a new TCP connection (and a
    thread here), which no real API costs."""

    protocol_version = "HTTP/1.1"
    # the headers and the body go out as two writes: with Nagle on, the body waits for the client's
    # delayed ACK of the headers (40 ms a response on a kept-alive connection); servers set TCP_NODELAY
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT  # an idle connection is closed (longer than the clients' own keep-alive expiry)
    server: _ThreadingServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()
        while not self.close_connection:
            self.handle_one_request()

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except (TimeoutError, OSError):
            self.close_connection = True
            return
        if not self.raw_requestline or len(self.raw_requestline) > 65536:
            self.close_connection = True
            return
        if not self.parse_request():  # an error was sent; parse_request decided about the connection
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        environ = self.get_environ()
        environ.update({"wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
                        "wsgi.url_scheme": "http", "wsgi.multithread": True, "wsgi.multiprocess": False,
                        "wsgi.run_once": False})
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer["status"], answer["headers"] = status, headers
            return lambda data: answer.setdefault("written", []).append(data)

        result = self.server.get_app()(environ, start_response)
        try:
            payload = b"".join([*answer.get("written", []), *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        code, _, reason = answer["status"].partition(" ")
        try:
            self.send_response_only(int(code), reason)
            for name, value in answer["headers"]:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            self.wfile.flush()
        except OSError:  # the client gave up on this request (its timeout): the connection is gone
            self.close_connection = True


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
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0) -> str:
        """Serve (port 0: a free one); returns the base URL. ``latency``: seconds every request waits
        before it is answered, as a vendor's API far away does (benchmarks)."""
        if self._server is not None:
            raise RuntimeError(f"{self._name} is already serving")
        app = self._app if latency <= 0 else _Delayed(self._app, latency)
        server = make_server(host, port, app, server_class=_ThreadingServer,
                             handler_class=_KeepAliveHandler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self._name, daemon=True)
        self._thread.start()
        return f"http://{host}:{server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None
