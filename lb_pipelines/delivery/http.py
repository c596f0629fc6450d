"""Talking to a vendor API: a pooled session, retries by the rules of `pushes.md`, cached tokens.

- `429` and `503` wait what `Retry-After` says (seconds or an HTTP date), capped;
- other `5xx` and dropped connections back off exponentially with jitter;
- both bounded in attempts and in total time; any other `4xx` is the answer, not retried.

Retries are tenacity's; a batch of requests (Graph's `$batch`) is retried part by part: the parts
that succeeded or were refused for good are kept, only the others go again.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Mapping, Optional, Sequence, TypeVar

import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential_jitter

RETRY_AFTER_STATUSES = frozenset({429, 503})
T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # in all, the first one included
    max_seconds: float = 120.0  # no retry starts after this long
    backoff_s: float = 0.5  # first back-off; doubles, with jitter
    max_wait_s: float = 60.0  # the longest single wait, Retry-After included


@dataclass(frozen=True)
class Answer:
    """A target's answer to one request (or one part of a batch); status None: no answer came."""

    status: Optional[int]
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # parsed JSON, or text
    error: Optional[str] = None  # why no answer came (connection refused, timeout)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRY_AFTER_STATUSES or self.status >= 500


def retry_after_seconds(headers: Mapping[str, str], now: Optional[dt.datetime] = None) -> Optional[float]:
    """`Retry-After` in seconds: a number, or an HTTP date (RFC 9110); None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    # Real time, not the pinned clock: this is how long the vendor wants us to wait.
    return max(0.0, (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds())


class _StillPending(Exception):
    def __init__(self, wait_s: Optional[float]):
        self.wait_s = wait_s


class _WaitRetryAfterElseBackoff:
    """Tenacity wait: the largest Retry-After of what is still pending, else exponential jitter."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.backoff = wait_exponential_jitter(multiplier=policy.backoff_s, max=policy.max_wait_s)

    def __call__(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _StillPending) and failure.wait_s is not None:
            return min(failure.wait_s, self.policy.max_wait_s)
        return self.backoff(state)


def send_with_retries(
    items: Sequence[T], send_once: Callable[[Sequence[T]], Mapping[T, Answer]], policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[T, tuple[Answer, int]]:
    """Each item's last answer and how many times it was sent. `send_once` sends the items still
    pending (one request, or one batch) and answers each; those whose answer is retryable go again."""
    pending = list(items)
    answers: dict[T, tuple[Answer, int]] = {}
    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        wait=_WaitRetryAfterElseBackoff(policy),
        retry=retry_if_exception_type(_StillPending),
        sleep=sleep,
        retry_error_callback=lambda state: None,  # out of attempts: the last answers stand
    )
    for attempt in retrying:
        with attempt:
            got = send_once(pending)
            for item in pending:
                answers[item] = (got[item], answers.get(item, (None, 0))[1] + 1)
            pending = [item for item in pending if got[item].retryable]
            if pending:
                waits = [w for w in (retry_after_seconds(got[i].headers) for i in pending) if w is not None]
                raise _StillPending(max(waits) if waits else None)
    return answers


def session(pool_size: int = 16) -> requests.Session:
    """A session whose connection pool holds as many connections as requests run at once."""
    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


class LazySession:
    """An adapter's pooled session, made on first use and shared by its threads: `http()`."""

    def __init__(self, pool_size: int):
        self.pool_size = pool_size
        self._session: Optional[requests.Session] = None
        self._lock = threading.Lock()

    def __call__(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                self._session = session(pool_size=self.pool_size)
            return self._session


class VendorHttp:
    """What every push adapter's HTTP side starts from: the vendor's base URL (the ledger's target
    description, never a secret), its retry policy, its concurrency per target and a pooled session."""

    def __init__(self, delivery: Any, vendor: str):
        self.delivery = delivery
        self.base_url = (getattr(delivery, "base_url", None) or "").rstrip("/")
        self.description = self.base_url or f"{vendor} (no base_url set)"
        self.max_in_flight = delivery.max_in_flight
        self.policy = RetryPolicy(attempts=delivery.attempts, max_seconds=delivery.max_retry_seconds)
        self._http = LazySession(delivery.workers + 4)

    def _refused(self, answer: Answer) -> CredentialsRefused:
        """What a 401 says about the credentials (each vendor names its own)."""
        return CredentialsRefused(f"{self.description} refused the credentials ({short_error(answer)})")

    def send_each(self, changes: Sequence[Any], send_one: Callable[[Any], Answer]) -> list[tuple[Any, Answer, int]]:
        """One request per change, each retried on its own (`send_with_retries`); a 401 stops the run
        (CredentialsRefused) since every other request would be refused too."""
        by_id = {str(i): c for i, c in enumerate(changes)}
        answered = send_with_retries(list(by_id), lambda pending: {p: send_one(by_id[p]) for p in pending}, self.policy)
        for answer, _ in answered.values():
            if answer.status == 401:
                raise self._refused(answer)
        return [(by_id[p], *answered[p]) for p in by_id]


def env_secret(settings: Any, key: str) -> str:
    """The value of the environment variable a setting names (`password_env`, `token_env`), read only
    when a request is about to be sent; CredentialsRefused naming the variable, never a value."""
    name = getattr(settings, key)
    value = os.environ.get(name or "")
    if not value:
        raise CredentialsRefused(f"the environment variable {name} ({key}) is not set")
    return value


def answer_of(response: requests.Response) -> Answer:
    content_type = response.headers.get("Content-Type", "")
    body: Any = response.text
    if "json" in content_type and response.content:
        try:
            body = response.json()
        except ValueError:
            pass
    return Answer(response.status_code, dict(response.headers), body)


def request_answer(s: requests.Session, method: str, url: str, timeout_s: float, **kwargs: Any) -> Answer:
    """One HTTP request's answer; a dropped connection or timeout is an answer with no status."""
    try:
        return answer_of(s.request(method, url, timeout=timeout_s, **kwargs))
    except requests.RequestException as exc:
        return Answer(None, error=f"{type(exc).__name__}: no answer from the server")


def short_error(answer: Answer, limit: int = 300) -> str:
    """The target's reason in a few words, for a problem row (vendors answer in JSON or text)."""
    if answer.status is None:
        return answer.error or "no answer"
    body = answer.body
    text = ""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            text = " ".join(str(inner.get(k)) for k in ("code", "message") if inner.get(k))
        else:
            text = " ".join(str(body.get(k)) for k in ("error", "message", "error_description") if body.get(k))
    elif isinstance(body, str):
        text = body.strip()
    return f"HTTP {answer.status}" + (f" {text[:limit]}" if text else "")


class CredentialsRefused(RuntimeError):
    """The token endpoint or the target refused our credentials: nothing can go out."""


class SignInUnreachable(CredentialsRefused):
    """The token endpoint gave no good answer (down, refused the connection, 5xx) after its retries.
    A CredentialsRefused for callers that stop the run on either; those that can go on per request
    (the background user's pushes) catch it and record each request as not delivered."""


class ClientCredentialsToken:
    """An OAuth 2.0 client-credentials token, fetched once and reused until shortly before expiry."""

    EARLY_S = 60.0  # renew this long before the stated expiry

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str, timeout_s: float = 30.0):
        self.token_url, self.client_id, self._secret, self.scope = token_url, client_id, client_secret, scope
        self.timeout_s = timeout_s
        self._token: Optional[str] = None
        self._expires_at = 0.0
        self._lock = threading.Lock()
        self.fetched = 0

    def get(self, s: requests.Session) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._expires_at:
                self._fetch(s)
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    refused = "the token endpoint refused the client credentials"

    def _sign_in(self) -> dict[str, Any]:
        """The token request's body (a form here; a subclass may post JSON)."""
        return {"data": {"grant_type": "client_credentials", "client_id": self.client_id,
                         "client_secret": self._secret, "scope": self.scope}}

    def _fetch(self, s: requests.Session) -> None:
        body = self._sign_in()
        answers = send_with_retries(
            ["token"], lambda _: {"token": request_answer(s, "POST", self.token_url, self.timeout_s, **body)},
            RetryPolicy(attempts=3, max_seconds=30),
        )
        answer, _ = answers["token"]
        if answer.retryable:  # no answer, or a server error, after the retries: not a refusal
            raise SignInUnreachable(f"the sign-in at {self.token_url} got no good answer: {short_error(answer)}")
        if not answer.ok or not isinstance(answer.body, dict) or "access_token" not in answer.body:
            raise CredentialsRefused(f"{self.refused}: {short_error(answer)}")
        self.fetched += 1
        self._token = answer.body["access_token"]
        lifetime = float(answer.body.get("expires_in", 3599))
        self._expires_at = time.monotonic() + max(0.0, lifetime - self.EARLY_S)
