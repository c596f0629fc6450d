"""A local Lightning Bolt API: the contract over HTTP, served from a directory source.

Lets the pipeline run end to end without the real service: OAuth client credentials with
expiring tokens and refresh, cursor paging, window filters, schedule and personnel writes
(in memory; the files are never modified), and faults injected on request (429 with
Retry-After, 500, a 422 refusal, slow answers, connections dropped mid-body).

    with Simulator("data/sample") as sim:
        sim.inject(path="/api/v1/slots", kind="429", times=1, retry_after=1.0)
        ... point the client at sim.url ...

From the command line (`lb-simulator --port 8765`), the same controls are HTTP endpoints under
`/_sim/` (faults, stats, config, expire_tokens). They have no authentication and answer only
loopback clients: the simulator is a test tool, never to be exposed.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import os
import re
import secrets
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl

from lb_pipelines.lightning_bolt.simulator.http_api import Reply, Server, json_reply
from lb_pipelines.lightning_bolt.simulator.store import SimulatorStore, SourceLoadError

__all__ = ["FaultRule", "Simulator", "SourceLoadError", "main"]

FAULT_KINDS = ("429", "500", "422", "slow", "drop")  # 422: a refusal (a write the server will not take)
_SENSITIVE_PARAM = re.compile(r'(?i)((?:[a-z_]*token|[a-z_]*secret|password|code)=)[^&\s"]*')


@dataclass
class FaultRule:
    """Fault `kind` on requests whose path starts with `path`, after letting `after` through."""

    path: str
    kind: str
    times: int | None = 1  # None: forever
    retry_after: float = 1.0
    after: int = 0
    delay: float = 0.0
    passed: int = 0  # matching requests let through so far because of `after`

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        if type(self.path) is not str or not self.path.startswith("/"):
            raise ValueError(f"fault path must be a path prefix starting with '/', got {self.path!r}")
        if self.times is not None and (type(self.times) is not int or self.times < 1):
            raise ValueError(f"times must be a positive integer or null, got {self.times!r}")
        if type(self.after) is not int or self.after < 0:
            raise ValueError(f"after must be an integer >= 0, got {self.after!r}")
        for name in ("retry_after", "delay"):
            value = getattr(self, name)
            if type(value) not in (int, float) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


class Simulator:
    """The contract's HTTP API over a directory source, on a loopback port of its own."""

    def __init__(
        self,
        source_dir: str | Path,
        client_id: str = "lb-demo",
        client_secret: str = "lb-demo-secret",
        token_lifetime: float = 3600.0,
        max_page_size: int = 5000,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        verbose: bool = False,
        log_stream: TextIO | None = None,
    ):
        self.store = SimulatorStore(source_dir)
        self.client_id = client_id
        self._client_secret = client_secret
        self.token_lifetime = token_lifetime  # applies to tokens issued afterwards
        self.refuse_refresh = False
        self.max_page_size = max_page_size
        self.host = host
        self.port = port
        self.verbose = verbose
        self.log_stream = log_stream if log_stream is not None else sys.stderr
        self._lock = threading.Lock()  # tokens, faults, stats (the store has its own)
        self._access: dict[str, float] = {}  # access token -> monotonic expiry
        self._refresh: set[str] = set()
        self._faults: list[FaultRule] = []
        self._stats: dict[str, Any] = {
            "client_credentials_grants": 0,
            "refresh_grants": 0,
            "refresh_refused": 0,
            "unauthorized": 0,
            "requests": {},
            "faults_fired": 0,
        }
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Simulator:
        if self._server is None:
            self._server = Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # the default 0.5 s makes every stop slow
                name="lb-simulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()  # kept-alive clients must not reach a stopped simulator
            if self._thread is not None:
                self._thread.join(timeout=5)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls -------------------------------------------------------------------

    def inject(
        self,
        path: str,
        kind: str,
        times: int | None = 1,
        retry_after: float = 1.0,
        after: int = 0,
        delay: float = 0.0,
    ) -> FaultRule:
        rule = FaultRule(path, kind, times=times, retry_after=retry_after, after=after, delay=delay)
        with self._lock:
            self._faults.append(rule)
        return rule

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._faults]

    @property
    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self._stats, "requests": dict(self._stats["requests"])}

    def expire_tokens(self) -> int:
        """Expire every access token issued so far; returns how many there were."""
        with self._lock:
            for token in self._access:
                self._access[token] = float("-inf")
            return len(self._access)

    # -- called by the HTTP layer (simulator_http) ----------------------------------------

    def _add_faults(self, rules: list[dict[str, Any]]) -> None:
        """Add every rule or none (the /_sim/faults endpoint)."""
        parsed = [FaultRule(**{k: v for k, v in rule.items() if k != "passed"}) for rule in rules]
        with self._lock:
            self._faults.extend(parsed)

    def _count(self, path: str) -> None:
        with self._lock:
            self._stats["requests"][path] = self._stats["requests"].get(path, 0) + 1

    def _take_fault(self, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self._faults:
                if not path.startswith(rule.path):
                    continue
                if rule.passed < rule.after:
                    rule.passed += 1
                    continue
                if rule.times is not None:
                    rule.times -= 1
                self._faults = [r for r in self._faults if r.times is None or r.times > 0]
                self._stats["faults_fired"] += 1
                return rule
        return None

    def _issue(self) -> Reply:
        """A new token pair (called with the lock held)."""
        now = time.monotonic()
        if len(self._access) > 1000:
            self._access = {t: exp for t, exp in self._access.items() if exp > now}
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        lifetime = float(self.token_lifetime)
        self._access[access] = now + lifetime
        self._refresh.add(refresh)
        payload = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(lifetime) if lifetime.is_integer() else lifetime,
            "refresh_token": refresh,
        }
        return json_reply(200, payload, ("Cache-Control", "no-store"))

    def _client_ok(self, client_id: str | None, client_secret: str | None) -> bool:
        return hmac.compare_digest((client_id or "").encode(), self.client_id.encode()) & hmac.compare_digest(
            (client_secret or "").encode(), self._client_secret.encode()
        )

    def _token(self, body: bytes, headers: Any) -> Reply:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = headers.get("Authorization", "")
        if basic[:6].lower() == "basic ":  # RFC 6749 also allows HTTP Basic client authentication
            try:
                client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        invalid_client = json_reply(
            401, {"error": "invalid_client", "error_description": "client authentication failed"}
        )
        grant = form.get("grant_type")
        with self._lock:
            if grant == "client_credentials":
                if not self._client_ok(client_id, client_secret):
                    return invalid_client
                self._stats["client_credentials_grants"] += 1
                return self._issue()
            if grant == "refresh_token":
                if (client_id or client_secret) and not self._client_ok(client_id, client_secret):
                    return invalid_client
                token = form.get("refresh_token", "")
                if self.refuse_refresh or token not in self._refresh:
                    self._stats["refresh_refused"] += 1
                    reason = "refresh refused" if self.refuse_refresh else "unknown or used refresh token"
                    return json_reply(400, {"error": "invalid_grant", "error_description": reason})
                self._refresh.discard(token)
                self._stats["refresh_grants"] += 1
                return self._issue()
        if not grant:
            description = "grant_type is required"
            return json_reply(400, {"error": "invalid_request", "error_description": description})
        description = "use client_credentials or refresh_token"
        return json_reply(400, {"error": "unsupported_grant_type", "error_description": description})

    def _authorized(self, headers: Any) -> bool:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        with self._lock:
            expiry = self._access.get(token.strip()) if scheme.lower() == "bearer" else None
            if expiry is not None and time.monotonic() < expiry:
                return True
            self._stats["unauthorized"] += 1
            return False

    # -- logging: one line per request, never a header, token or secret --------------------

    def _log(self, line: str, always: bool = False) -> None:
        if not (self.verbose or always):
            return
        line = _SENSITIVE_PARAM.sub(r"\1***", line)
        if self._client_secret:
            line = line.replace(self._client_secret, "***")
        try:
            self.log_stream.write(line.replace("\n", " ") + "\n")
            self.log_stream.flush()
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    repo_root = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(
        prog="lb-simulator",
        description="Serve a Lightning Bolt directory source over HTTP, as the API contract describes. "
        "Test tool: the /_sim/ control endpoints (faults, stats, config, expire_tokens) have no "
        "authentication and answer loopback clients only.",
    )
    parser.add_argument(
        "--source-dir",
        default=os.environ.get("LB_SOURCE_DIR") or str(repo_root / "data" / "sample"),
        help="folder of <entity>.jsonl files (default: $LB_SOURCE_DIR, else data/sample)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--client-id", default=os.environ.get("LB_CLIENT_ID") or "lb-demo")
    parser.add_argument("--client-secret", default=os.environ.get("LB_CLIENT_SECRET") or "lb-demo-secret",
                        help="default: $LB_CLIENT_SECRET, else the demo secret (never printed)")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds an access token lasts")
    parser.add_argument("--max-page-size", type=int, default=5000)
    parser.add_argument("--verbose", action="store_true", help="log one line per request to stderr")
    args = parser.parse_args(argv)
    try:
        sim = Simulator(args.source_dir, client_id=args.client_id, client_secret=args.client_secret,
                        token_lifetime=args.token_lifetime, max_page_size=args.max_page_size,
                        port=args.port, host=args.host, verbose=args.verbose)
        sim.start()
    except (SourceLoadError, OSError) as exc:
        print(f"lb-simulator: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # interrupted while loading a large source
        return 130
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"listening on {sim.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0
