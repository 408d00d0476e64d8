"""Local HTTP stand-ins for cloud APIs (not the real services).

Each stand-in is a small `http.server` on 127.0.0.1 in a thread, answering
the calls djbake makes with the shapes the providers document, including
their errors (401, 404, 429 with Retry-After, 5xx) and their pagination.
They keep state in memory, record every request, and can be told to fail
the next matching request (`fail_next`). Use them as context managers:
leaving the `with` stops the server and joins its thread.
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: object


@dataclass
class Reply:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern
    reply: Reply
    times: int


class StandIn:
    """Base class: subclasses add routes with `route(method, regex, func)`; func(req, **groups) -> Reply."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, object]] = []
        self.requests: list[Request] = []
        self.faults: list[_Fault] = []
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up -----------------------------------------------------------
    def route(self, method: str, pattern: str, func) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), func))

    def fail_next(self, method: str, pattern: str, status: int, body: object = None,
                  headers: dict[str, str] | None = None, times: int = 1) -> None:
        """The next `times` requests matching method and path regex get this answer instead."""
        self.faults.append(_Fault(method, re.compile(f"^{pattern}$"), Reply(status, body, headers or {}), times))

    @property
    def url(self) -> str:
        assert self._server is not None, "stand-in not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls(self, method: str | None = None, path_re: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if (method is None or r.method == method)
                    and (path_re is None or re.search(path_re, r.path))]

    # -- lifecycle ----------------------------------------------------------
    def start(self) -> "StandIn":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                standin._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- request handling ---------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        req = Request(h.command, parts.path, parse_qs(parts.query), {k.lower(): v for k, v in h.headers.items()}, body)
        with self.lock:
            self.requests.append(req)
            reply = self._fault_for(req)
        if reply is None:
            reply = self._route(req)
        self._send(h, reply)

    def _fault_for(self, req: Request) -> Reply | None:
        for f in self.faults:
            if f.times > 0 and f.method == req.method and f.pattern.match(req.path):
                f.times -= 1
                return f.reply
        return None

    def _route(self, req: Request) -> Reply:
        path_matched = False
        for method, pattern, func in self.routes:
            m = pattern.match(req.path)
            if not m:
                continue
            path_matched = True
            if method == req.method:
                auth = self.authorize(req)
                if auth is not None:
                    return auth
                try:
                    with self.lock:
                        return func(req, **m.groupdict())
                except KeyError:
                    return self.not_found(req)
        return self.method_not_allowed(req) if path_matched else self.not_found(req)

    def _send(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        h.send_response(reply.status)
        headers = {"Content-Type": "application/json", **reply.headers}
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    # -- per-API behaviour (override) ---------------------------------------
    def authorize(self, req: Request) -> Reply | None:
        return None

    def not_found(self, req: Request) -> Reply:
        return Reply(404, {"error": "not found"})

    def method_not_allowed(self, req: Request) -> Reply:
        return Reply(405, {"error": "method not allowed"})
