"""The simulator on the wire: routes, the request handler and the threaded server.

Stdlib `http.server` with HTTP/1.1 keep-alive, so a paged read reuses one connection; each
request is counted, may meet an injected fault, is authorized, routed to the store and logged
in one line (never a header, token or secret).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, NamedTuple
from urllib.parse import parse_qsl

import orjson

from lb_pipelines.lightning_bolt.source.contract import ENTITIES, SLOTS, Entity
from lb_pipelines.lightning_bolt.simulator.store import SimulatorError

if TYPE_CHECKING:
    from lb_pipelines.lightning_bolt.simulator import Simulator

_MAX_BODY = 10 * 1024 * 1024
Params = dict[str, str]  # query parameters


class Reply(NamedTuple):
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, payload: Any, *headers: tuple[str, str]) -> Reply:
    return Reply(status, orjson.dumps(payload), headers)


def _seconds(value: float) -> str:
    """Retry-After: whole seconds when whole (the HTTP form), else the decimal (fast tests)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def respond(sim: Simulator, method: str, path: str, query: str, body: bytes, headers: Any) -> Reply:
    """The answer of the API proper: the token endpoint, then authorized /api/ routes."""
    if path == "/oauth/token":
        return sim._token(body, headers) if method == "POST" else _method_not_allowed(("POST",))
    if not path.startswith("/api/"):
        return json_reply(404, {"error": "not_found", "message": f"no endpoint {path}"})
    if not sim._authorized(headers):
        return json_reply(
            401,
            {"error": "invalid_token", "message": "a valid bearer token is required"},
            ("WWW-Authenticate", 'Bearer error="invalid_token"'),
        )
    for pattern, methods in _ROUTES:
        match = pattern.fullmatch(path)
        if match:
            if method not in methods:
                return _method_not_allowed(tuple(methods))
            user = headers.get("X-LB-User") or "simulator"
            params = dict(parse_qsl(query, keep_blank_values=True))
            return methods[method](sim, match, params, body, user)
    return json_reply(404, {"error": "not_found", "message": f"no endpoint {path}"})


def control(sim: Simulator, method: str, path: str, body: bytes, client_host: str) -> Reply:
    """The test-only /_sim/ endpoints: the same controls as the Python API, loopback only."""
    if not _is_loopback(client_host):
        message = "simulator controls answer loopback clients only"
        return json_reply(403, {"error": "forbidden", "message": message})
    try:
        payload = orjson.loads(body) if body.strip() else {}
        if path == "/_sim/faults" and method == "POST":
            sim._add_faults(payload["rules"])
            return json_reply(200, {"rules": sim.faults})
        if path == "/_sim/faults" and method == "DELETE":
            sim.clear_faults()
            return json_reply(200, {"rules": []})
        if path == "/_sim/faults" and method == "GET":
            return json_reply(200, {"rules": sim.faults})
        if path == "/_sim/stats" and method == "GET":
            return json_reply(200, sim.stats)
        if path == "/_sim/config" and method in ("GET", "POST"):
            unknown = set(payload) - {"token_lifetime", "refuse_refresh"}
            if unknown:
                raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
            lifetime = payload.get("token_lifetime", sim.token_lifetime)
            if type(lifetime) not in (int, float) or lifetime < 0:
                raise ValueError("token_lifetime must be a number of seconds >= 0")
            if type(payload.get("refuse_refresh", False)) is not bool:
                raise ValueError("refuse_refresh must be true or false")
            sim.token_lifetime = float(lifetime)
            sim.refuse_refresh = payload.get("refuse_refresh", sim.refuse_refresh)
            config = {"token_lifetime": sim.token_lifetime, "refuse_refresh": sim.refuse_refresh}
            return json_reply(200, config)
        if path == "/_sim/expire_tokens" and method == "POST":
            return json_reply(200, {"expired": sim.expire_tokens()})
    except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        return json_reply(400, {"error": "invalid_request", "message": f"{type(exc).__name__}: {exc}"})
    return json_reply(404, {"error": "not_found", "message": f"no control {method} {path}"})


def _method_not_allowed(allowed: tuple[str, ...]) -> Reply:
    message = f"use {', '.join(allowed)}"
    return json_reply(405, {"error": "method_not_allowed", "message": message}, ("Allow", ", ".join(allowed)))


def _body(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SimulatorError(400, "invalid_request", "body is not valid JSON") from None


def _read(entity: Entity) -> Callable[..., Reply]:
    def read(sim: Simulator, match: re.Match, params: Params, body: bytes, user: str) -> Reply:
        return Reply(200, sim.store.page(entity, params, sim.max_page_size))

    return read


def _create_slot(sim: Simulator, match: re.Match, params: Params, body: bytes, user: str) -> Reply:
    return json_reply(201, sim.store.create_slot(_body(body), user))


def _patch_personnel(sim: Simulator, match: re.Match, params: Params, body: bytes, user: str) -> Reply:
    return json_reply(200, sim.store.patch_personnel(int(match[1]), _body(body), user))


def _delete_slot(sim: Simulator, match: re.Match, params: Params, body: bytes, user: str) -> Reply:
    sim.store.delete_slot(int(match[1]), user)
    return Reply(204)


def _change_slot(sim: Simulator, match: re.Match, params: Params, body: bytes, user: str) -> Reply:
    slot_id, action = int(match[1]), match[2]
    if action == "assign":
        return json_reply(200, sim.store.assign_slot(slot_id, _body(body), user))
    if action == "unassign":
        return json_reply(200, sim.store.unassign_slot(slot_id, user))
    return json_reply(200, sim.store.move_slot(slot_id, _body(body), user))


def _set_status(sim: Simulator, match: re.Match, params: Params, body: bytes, user: str) -> Reply:
    return json_reply(200, sim.store.set_schedule_status(int(match[1]), match[2] == "publish", user))


_ROUTES: list[tuple[re.Pattern, dict[str, Callable[..., Reply]]]] = [
    *((re.compile(re.escape(e.endpoint)), {"GET": _read(e)}) for e in ENTITIES.values() if e is not SLOTS),
    (re.compile(re.escape(SLOTS.endpoint)), {"GET": _read(SLOTS), "POST": _create_slot}),
    (re.compile(r"/api/v1/personnel/(\d+)"), {"PATCH": _patch_personnel}),
    (re.compile(r"/api/v1/slots/(\d+)"), {"DELETE": _delete_slot}),
    (re.compile(r"/api/v1/slots/(\d+)/(assign|unassign|move)"), {"POST": _change_slot}),
    (re.compile(r"/api/v1/schedules/(\d+)/(publish|unpublish)"), {"POST": _set_status}),
]


class Handler(BaseHTTPRequestHandler):
    """One connection: every request on it counted, maybe faulted, answered and logged."""

    protocol_version = "HTTP/1.1"  # keep-alive: paging reuses one connection
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server_version = "lb-simulator"
    sys_version = ""
    server: Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise SimulatorError(411, "length_required", "send a Content-Length, not a chunked body")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise SimulatorError(400, "invalid_request", "Content-Length is not a number") from None
        if length < 0 or length > _MAX_BODY:
            raise SimulatorError(413, "too_large", f"bodies are limited to {_MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        started = time.monotonic()
        sim = self.server.sim
        path, _, query = self.path.partition("?")
        fault = None
        try:
            body = self._read_body()
            if path == "/_sim" or path.startswith("/_sim/"):
                reply = control(sim, self.command, path, body, self.client_address[0])
            else:
                sim._count(path)
                fault = sim._take_fault(path)
                if fault is not None and fault.kind == "429":
                    reply = json_reply(
                        429, {"error": "rate_limited", "message": "too many requests"},
                        ("Retry-After", _seconds(fault.retry_after)),
                    )
                elif fault is not None and fault.kind == "422":
                    reply = json_reply(422, {"error": "unprocessable", "message": "injected refusal"})
                elif fault is not None and fault.kind == "500":
                    reply = json_reply(500, {"error": "internal_error", "message": "injected fault"})
                else:
                    if fault is not None and fault.kind == "slow":
                        time.sleep(fault.delay)
                    reply = respond(sim, self.command, path, query, body, self.headers)
        except SimulatorError as exc:
            reply = Reply(exc.status, exc.body())
            if exc.status in (411, 413):
                self.close_connection = True
        except Exception as exc:  # a bug here must not look like a dropped connection
            sim._log(f"internal error on {self.command} {path}: {type(exc).__name__}: {exc}", always=True)
            reply = json_reply(500, {"error": "internal_error", "message": type(exc).__name__})
        dropped = fault is not None and fault.kind == "drop"
        self._send(reply, dropped)
        sim._log(
            f'{self.client_address[0]} "{self.command} {self.path}" {reply.status} {len(reply.body)}'
            f"{' dropped' if dropped else ''} {1000 * (time.monotonic() - started):.1f}ms"
        )

    def _send(self, reply: Reply, dropped: bool) -> None:
        if dropped and not reply.body:  # nothing to cut short: hang up before answering
            self._hang_up()
            return
        self.send_response(reply.status)
        if reply.status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if dropped:  # the full Content-Length was promised; send half, then hang up
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self._hang_up()
        elif reply.status != 204:
            self.wfile.write(reply.body)

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _handle logs one line per request

    def log_message(self, format: str, *args: Any) -> None:
        self.server.sim._log(f"{self.client_address[0]} {format % args}")


class Server(ThreadingHTTPServer):
    """A thread per connection; remembers open connections so that stop() can close them."""

    daemon_threads = True
    request_queue_size = 128  # the default listen backlog of 5 refuses a burst of parallel clients

    def __init__(self, address: tuple[str, int], sim: Simulator):
        self.sim = sim
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away (or a dropped-connection fault did its job)
        self.sim._log(f"error serving {client_address[0]}: {type(exc).__name__}: {exc}", always=True)


