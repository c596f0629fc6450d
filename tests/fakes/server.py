"""What every vendor fake shares: a threaded werkzeug server on 127.0.0.1, a request log, and
answers injected on demand (a 500, a 429 with Retry-After, a 500 after the change was applied).

A fake subclasses `FakeServer` and implements `handle(request) -> Response`; `answer(...)`
queues an injected answer for the next requests that match.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


@dataclass
class Injected:
    """An answer given instead of (or, with `after_apply`, after) the real one."""

    method: str  # "POST", or "*" for any
    path: re.Pattern  # searched in the request's path
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON-able; None gives a small error body
    times: int = 1
    after_apply: bool = False  # do the work, then answer `status` (the answer "lost" on the way)

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.path.search(path) is not None


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    status: int
    at: float  # time.monotonic()
    headers: dict[str, str]
    in_batch: bool = False


def json_response(status: int, body: Any = None, headers: Optional[dict[str, str]] = None) -> Response:
    if body is None and status >= 400:
        body = {"error": {"code": str(status), "message": "injected"}}
    return Response(
        "" if body is None else json.dumps(body), status=status, headers=headers or {},
        content_type="application/json",
    )


class FakeServer:
    """Start with `with Fake(...) as fake:` (or start()/stop()); `url` is http://127.0.0.1:<port>."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.log: list[Logged] = []
        self._injected: list[Injected] = []
        self.latency_s = 0.0  # added to every answer, to make concurrency observable
        self._server = None
        self._thread: Optional[threading.Thread] = None

    # ---- lifecycle
    def start(self) -> "FakeServer":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    # ---- injected answers
    def answer(
        self, method: str, path: str, status: int, *, times: int = 1, headers: Optional[dict[str, str]] = None,
        body: Any = None, after_apply: bool = False,
    ) -> None:
        """The next `times` requests matching `method` and the regex `path` get `status`."""
        with self.lock:
            self._injected.append(
                Injected(method, re.compile(path), status, dict(headers or {}), body, times, after_apply)
            )

    def clear_injected(self) -> None:
        with self.lock:
            self._injected.clear()

    def take_injected(self, method: str, path: str) -> Optional[Injected]:
        with self.lock:
            for injected in self._injected:
                if injected.matches(method, path):
                    injected.times -= 1
                    if injected.times <= 0:
                        self._injected.remove(injected)
                    return injected
        return None

    def with_injection(self, method: str, path: str, apply: Callable[[], Response]) -> Response:
        """`apply()`'s answer, unless an injected answer matches (before or after applying)."""
        injected = self.take_injected(method, path)
        if injected is None:
            return apply()
        if injected.after_apply:
            apply()
        return json_response(injected.status, injected.body, injected.headers)

    def record(self, method: str, path: str, status: int, headers: dict[str, str], in_batch: bool = False) -> None:
        # Credentials never reach a failing test's output.
        headers = {k: ("***" if k.lower() == "authorization" else v) for k, v in headers.items()}
        with self.lock:
            self.log.append(Logged(method, path, status, time.monotonic(), headers, in_batch))

    def requests(self, method: Optional[str] = None, path: Optional[str] = None, in_batch: Optional[bool] = None):
        """Logged requests, filtered by method, a path regex, and whether they were parts of a batch."""
        with self.lock:
            return [
                r for r in self.log
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))
                and (in_batch is None or r.in_batch == in_batch)
            ]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # ---- serving
    def handle(self, request: Request) -> Response:  # pragma: no cover - each fake's own
        raise NotImplementedError

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        if self.latency_s:
            time.sleep(self.latency_s)
        response = self.handle(request)
        self.record(request.method, request.path, response.status_code, dict(request.headers))
        return response(environ, start_response)
