"""A small HTTP server on 127.0.0.1 that serves files from memory and can misbehave on purpose.

Per path: `drop_after` cuts the first response after N bytes (to test resume), `status` answers an error,
`stall_s` waits before answering (to test timeouts). Every request is logged with its Range header.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    drop_after: int | None = None  # first GET only
    stall_s: float = 0.0
    honour_range: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    require_auth: str | None = None  # answer 401 (with `headers`, e.g. a Bearer challenge) without this header


class Loopback:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def paths_requested(self) -> list[str]:
        return [path for _method, path, _range in self.log]

    def __enter__(self) -> Loopback:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def handle(self) -> None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()  # a client that gave up on purpose (timeout tests) is not an error

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _answer(self, head: bool) -> None:
                path = self.path.split("?", 1)[0]
                owner.log.append((self.command, self.path, self.headers.get("Range")))
                route = owner.routes.get(path)
                if route is None:
                    return self._simple(404, b"not found")
                if route.require_auth and self.headers.get("Authorization") != route.require_auth:
                    return self._simple(401, b"unauthorized", route.headers)
                if route.stall_s:
                    time.sleep(route.stall_s)
                if route.status != 200:
                    return self._simple(route.status, b"error", route.headers)
                body, status, extra = route.body, 200, {} if route.require_auth else dict(route.headers)
                start = _range_start(self.headers.get("Range")) if route.honour_range else None
                if start is not None:
                    if start >= len(body):
                        return self._simple(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                    extra["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                    body, status = body[start:], 206
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return None
                if route.drop_after is not None and self.command == "GET":
                    cut, route.drop_after = route.drop_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body)
                return None

            def _simple(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes=") or not header.endswith("-"):
        return None
    value = header[len("bytes=") : -1]
    return int(value) if value.isdigit() else None
