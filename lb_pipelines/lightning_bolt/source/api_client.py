"""The production way into Lightning Bolt: its HTTP API, with OAuth tokens, paging and retries.

`ApiClient` implements `LightningBoltSource`, so the raw loader reads the API exactly as it reads
a directory source. What a real network adds is handled here, once:

- OAuth 2.0 client credentials; the token is refreshed shortly before it expires and on a 401,
  and when the refresh is refused the client authenticates again.
- Retries come from tenacity, bounded in attempts and in total time: 5xx, connection errors,
  timeouts and a connection dropped mid-body are retried with exponential backoff and jitter
  (the whole page again, with the same cursor); a 429 waits exactly its `Retry-After`.
- Errors and log lines name the method, the path, the status and the attempt, never the client
  secret, a token or a header.

One client serves one thread at a time (like the `requests.Session` inside it).
"""

from __future__ import annotations

import http.client
import logging
import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests
import tenacity
import urllib3

from lb_pipelines.delivery.http import retry_after_seconds
from lb_pipelines.lightning_bolt.source.contract import ENTITIES, PATCHABLE_PERSONNEL_FIELDS, PERSONNEL, Window
from lb_pipelines.lightning_bolt.source.records import check_record

log = logging.getLogger(__name__)

TOKEN_ENDPOINT = "/oauth/token"

# Failures of the connection itself. A body cut short surfaces as ChunkedEncodingError from
# requests, or as urllib3's ProtocolError / http.client's IncompleteRead if a layer lets it through.
_CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    http.client.IncompleteRead,
)


class ApiError(RuntimeError):
    """A request to Lightning Bolt failed for good.

    The message names the method, the path, the status or exception class and the number of
    attempts; it never contains the client secret, a token or a header.
    """

    def __init__(self, method: str, path: str, problem: str, *, status: int | None = None, attempts: int = 1):
        super().__init__(f"{method} {path}: {problem}")
        self.method = method
        self.path = path
        self.status = status
        self.attempts = attempts


class AnswerLost(ApiError):
    """A write was sent, or may have been, and no answer came: whether it took effect is unknown.
    Not retried here (the caller reads the record back instead of writing it twice)."""


def _surely_unsent(exc: BaseException) -> bool:
    """A failure before the request left: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if isinstance(exc, requests.ConnectionError) and exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


class _Transient(Exception):
    """A failure worth another attempt; `retry_after` is the server's own wait (429)."""

    def __init__(self, what: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(what)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Token:
    access: str
    refresh: str | None
    renew_at: float  # time.monotonic() after which the token is renewed before use


class ApiClient:
    """Reads Lightning Bolt's HTTP API (`shared/spec/lightning-bolt-source.md`)."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        *,
        page_size: int = 1000,
        timeout: float | tuple[float, float] = (5, 60),
        max_attempts: int = 6,
        max_retry_seconds: float = 120.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        refresh_margin: float = 60.0,
    ):
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.base_url = _without_credentials(base_url.rstrip("/"))
        self.description = f"api {self.base_url}"
        self.page_size = page_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_retry_seconds = max_retry_seconds
        self.refresh_margin = refresh_margin
        self._base_path = urlsplit(self.base_url).path
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: _Token | None = None
        self._backoff = tenacity.wait_exponential_jitter(
            multiplier=backoff_initial, max=backoff_max, jitter=backoff_initial
        )
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json", "User-Agent": "lb-pipelines"})

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r}, page_size={self.page_size})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # -- the source ---------------------------------------------------------------------------

    def read(
        self,
        entity: str,
        window: Window | None = None,
        since_id: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield checked records of `entity`, one page in memory at a time."""
        spec = ENTITIES[entity]
        params: dict[str, Any] = {"page_size": self.page_size}
        if window is not None and spec.read in ("date", "range"):
            params["start_date"] = window.start.isoformat()
            params["end_date"] = window.end.isoformat()
        if since_id is not None and spec.read == "since_id":
            params["since_id"] = since_id
        cursor: str | None = None
        page = 1
        while True:
            label = f"GET {spec.endpoint} page {page}"
            body = self._call("GET", spec.endpoint, params={**params, "cursor": cursor}, label=label)
            if type(body) is not dict or type(body.get("data")) is not list:
                problem = f"page {page} has no 'data' list ({_shape(body)})"
                raise ApiError("GET", self._path(spec.endpoint), problem)
            for item, record in enumerate(body["data"], start=1):
                yield check_record(spec, record, where=f"{label} item {item}")
            next_cursor = body.get("next_cursor")
            if next_cursor is None:
                return
            if next_cursor == cursor:  # a server repeating itself would page forever
                problem = f"page {page} hands back the cursor it was asked for"
                raise ApiError("GET", self._path(spec.endpoint), problem)
            cursor = next_cursor
            page += 1

    def patch_personnel(self, personnel_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change writable fields of one person; returns the updated, checked record.

        The body sets absolute values, so a retried PATCH leaves the same record behind; still, a
        PATCH whose answer was lost raises AnswerLost rather than being sent again, so the caller
        can read the person back and send it only if it did not arrive. 429, 5xx and a refused
        connection are retried as for reads (the server says, or it is sure, nothing was applied).
        """
        unknown = sorted(set(changes) - set(PATCHABLE_PERSONNEL_FIELDS))
        if unknown or not changes:
            raise ValueError(
                f"personnel {personnel_id}: can change only {', '.join(PATCHABLE_PERSONNEL_FIELDS)}"
                + (f"; not {', '.join(unknown)}" if unknown else "; nothing to change")
            )
        endpoint = f"{PERSONNEL.endpoint}/{int(personnel_id)}"
        record = self._call("PATCH", endpoint, body=dict(changes), label=f"PATCH {endpoint}")
        return check_record(PERSONNEL, record, where=f"PATCH {endpoint}")

    # -- one API call: auth, retries, classification ------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        label: str,
    ) -> Any:
        """Send one API request until it succeeds or the retry policy gives up; return its JSON."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=(
                tenacity.stop_after_attempt(self.max_attempts)
                | tenacity.stop_before_delay(self.max_retry_seconds)  # counts the coming wait too
            ),
            wait=self._wait,
            before_sleep=lambda state: self._log_retry(label, state),
            retry_error_callback=lambda state: self._give_up(method, endpoint, state),
        )
        data = orjson.dumps(body) if body is not None else None
        for attempt in retrying:
            with attempt:
                number = attempt.retry_state.attempt_number
                return self._attempt(method, endpoint, params, data, label, number)
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _attempt(self, method: str, endpoint: str, params: Any, data: Any, label: str, attempt: int) -> Any:
        access, fresh = self._bearer(attempt)
        response = self._send(method, endpoint, label, attempt, params=params, data=data, access=access)
        if response.status_code == 401 and not fresh:
            # The server has forgotten a token we still trusted (restart, revocation): renew once.
            self._renew(attempt)
            access = self._token.access
            response = self._send(method, endpoint, label, attempt, params=params, data=data, access=access)
        if response.status_code == 401:
            problem = f"HTTP 401 with a freshly issued token (attempt {attempt}); the client may lack access"
            raise ApiError(method, self._path(endpoint), problem, status=401, attempts=attempt)
        self._raise_for_status(method, endpoint, response, attempt, show_body=True)
        return self._json(method, endpoint, response, attempt)

    def _send(
        self,
        method: str,
        endpoint: str,
        label: str,
        attempt: int,
        *,
        params: Any = None,
        data: Any = None,
        access: str | None = None,
    ) -> requests.Response:
        headers = {}
        if access is not None:
            headers["Authorization"] = f"Bearer {access}"
        if isinstance(data, bytes):
            headers["Content-Type"] = "application/json"
        try:
            response = self._session.request(
                method,
                self.base_url + endpoint,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
        except _CONNECTION_FAILURES as exc:
            # The class only: requests' own messages carry the full URL.
            what = f"{type(exc).__name__} on {method} {self._path(endpoint)}"
            if method == "PATCH" and not _surely_unsent(exc):
                raise AnswerLost(method, self._path(endpoint), f"no answer ({what})", attempts=attempt) from None
            raise _Transient(what) from exc
        log.debug("%s -> HTTP %s (attempt %d)", label, response.status_code, attempt)
        return response

    def _raise_for_status(
        self, method: str, endpoint: str, response: requests.Response, attempt: int, *, show_body: bool
    ) -> None:
        status = response.status_code
        path = self._path(endpoint)
        if status < 400:
            return
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            raise _Transient(f"HTTP 429 from {method} {path}", status=status, retry_after=retry_after)
        if status >= 500:
            raise _Transient(f"HTTP {status} from {method} {path}", status=status)
        detail = _error_detail(response) if show_body else ""
        problem = f"HTTP {status} (attempt {attempt}){detail}"
        raise ApiError(method, path, problem, status=status, attempts=attempt)

    def _json(self, method: str, endpoint: str, response: requests.Response, attempt: int) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            # A body cut short fails its Content-Length check before this: this body is whole.
            status = response.status_code
            problem = f"HTTP {status} with a body that is not JSON: {exc} (attempt {attempt})"
            raise ApiError(method, self._path(endpoint), problem, status=status, attempts=attempt) from None

    # -- tokens -------------------------------------------------------------------------------

    def _bearer(self, attempt: int) -> tuple[str, bool]:
        """The access token to send, and whether it was issued just now."""
        if self._token is not None and time.monotonic() < self._token.renew_at:
            return self._token.access, False
        self._renew(attempt)
        return self._token.access, True

    def _renew(self, attempt: int) -> None:
        token = None
        if self._token is not None and self._token.refresh:
            token = self._grant("refresh_token", attempt)
            if token is None:
                log.info("POST %s: refresh refused; authenticating again", self._path(TOKEN_ENDPOINT))
        self._token = token or self._grant("client_credentials", attempt)

    def _grant(self, grant_type: str, attempt: int) -> _Token | None:
        """Ask the token endpoint for a token; None when a refresh token is refused."""
        form = {"grant_type": grant_type, "client_id": self._client_id, "client_secret": self._client_secret}
        if grant_type == "refresh_token":
            form["refresh_token"] = self._token.refresh
        issued = time.monotonic()
        path = self._path(TOKEN_ENDPOINT)
        response = self._send("POST", TOKEN_ENDPOINT, f"POST {path} ({grant_type})", attempt, data=form)
        status = response.status_code
        if status in (400, 401):
            if grant_type == "refresh_token":
                return None
            problem = (
                f"client credentials refused: HTTP {status} (attempt {attempt}); "
                "check the client id and secret (LB_CLIENT_ID, LB_CLIENT_SECRET)"
            )
            raise ApiError("POST", path, problem, status=status, attempts=attempt)
        self._raise_for_status("POST", TOKEN_ENDPOINT, response, attempt, show_body=False)
        body = self._json("POST", TOKEN_ENDPOINT, response, attempt)
        access = body.get("access_token") if type(body) is dict else None
        lifetime = body.get("expires_in", 3600) if type(body) is dict else None
        if type(access) is not str or not access or type(lifetime) not in (int, float) or lifetime < 0:
            # Name the keys only: the values are the secrets.
            problem = f"the token response lacks access_token or expires_in ({_shape(body)})"
            raise ApiError("POST", path, problem, status=status, attempts=attempt)
        refresh = body.get("refresh_token")
        margin = min(self.refresh_margin, lifetime / 2)  # short test lifetimes still renew in time
        return _Token(access, refresh if type(refresh) is str else None, issued + lifetime - margin)

    # -- the retry policy's hooks ---------------------------------------------------------------

    def _wait(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception()
        if isinstance(failure, _Transient) and failure.retry_after is not None:
            return failure.retry_after  # exactly what the server asked: never less
        return self._backoff(state)

    def _log_retry(self, label: str, state: tenacity.RetryCallState) -> None:
        log.warning(
            "%s: %s; attempt %d of %d failed, retrying in %.2f s",
            label,
            state.outcome.exception(),
            state.attempt_number,
            self.max_attempts,
            state.upcoming_sleep,
        )

    def _give_up(self, method: str, endpoint: str, state: tenacity.RetryCallState) -> Any:
        failure = state.outcome.exception()
        attempts = state.attempt_number
        elapsed = state.seconds_since_start or 0.0
        budget = self.max_retry_seconds
        tried = f"{attempts} attempt{'' if attempts == 1 else 's'}"
        if attempts >= self.max_attempts:
            why = f"after {tried} in {elapsed:.1f} s"
        elif getattr(failure, "retry_after", None) is not None:
            left = max(0.0, budget - elapsed)
            why = (
                f"after {tried}: Retry-After {failure.retry_after:g} s exceeds "
                f"the {left:.1f} s left of the {budget:g} s retry budget"
            )
        else:
            why = f"after {tried}: the next wait would pass the {budget:g} s retry budget"
        status = getattr(failure, "status", None)
        problem = f"failed {why}; last error: {failure}"
        raise ApiError(method, self._path(endpoint), problem, status=status, attempts=attempts) from failure

    def _path(self, endpoint: str) -> str:
        """The request's path as the server sees it (the base URL may carry a prefix)."""
        return self._base_path + endpoint


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if unusable."""
    return None if value is None else retry_after_seconds({"Retry-After": value})


def _error_detail(response: requests.Response) -> str:
    """The server's own short explanation of a refused API request, if it gave one."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if type(body) is not dict:
        return ""
    message = body.get("message") or body.get("error_description") or body.get("error")
    return f": {message!s:.200}" if message else ""


def _shape(body: Any) -> str:
    if type(body) is dict:
        return "keys " + ", ".join(sorted(map(str, body))[:10])
    return type(body).__name__


def _without_credentials(url: str) -> str:
    """A base URL with any user:password@ removed, so the description is safe to show."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
