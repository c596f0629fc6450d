"""A real SMTP server for the alert tests (aiosmtpd on 127.0.0.1), as pytest fixtures.

`smtp_server` (session): aiosmtpd on an ephemeral port of 127.0.0.1 that keeps every message
it receives (envelope sender, envelope recipients, the parsed message). It offers AUTH
(PLAIN, LOGIN) without TLS, for one user, and records each login attempt; sending without
login is allowed too. `smtp_env` (function): the inbox emptied and `LB_SMTP_HOST`/`LB_SMTP_PORT`
pointing at the server, every other `LB_SMTP_*` and `LB_ALERTS_TO` unset.
`closed_port`: a port on 127.0.0.1 where nothing listens (an SMTP server that is down).

aiosmtpd's `Controller(port=0)` fails at start: its self-check connects to port 0
(aio-libs/aiosmtpd#276). `_EphemeralController` reads the bound port before that check.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USERNAME = "lb-alerts"
PASSWORD = "s3cret-SMTP-pa55word"  # distinctive: a test looks for it in the logs


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    authenticated_as: str | None

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content().replace("\r\n", "\n")


@dataclass
class SmtpServer:
    host: str
    port: int
    username: str
    password: str
    messages: list[ReceivedMail] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (username, accepted)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.logins.clear()

    def to(self, address: str) -> list[ReceivedMail]:
        """The messages whose envelope named `address`."""
        return [m for m in self.messages if address in m.rcpt_tos]


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_DATA(self, smtp, session, envelope) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self.server._lock:
            received = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, login)
            self.server.messages.append(received)
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, server: SmtpServer):
        self.server = server

    def __call__(self, smtp, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username, password = auth_data.login.decode(), auth_data.password.decode()
        accepted = (username, password) == (self.server.username, self.server.password)
        with self.server._lock:
            self.server.logins.append((username, accepted))
        # handled=False: aiosmtpd answers a refusal with 535 itself (its default sends nothing).
        return AuthResult(success=accepted, handled=False, auth_data=auth_data)


class _EphemeralController(Controller):
    def _trigger_server(self) -> None:
        # Bound to port 0: learn the real port before the controller's self-check connects.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(host="127.0.0.1", port=0, username=USERNAME, password=PASSWORD)
    controller = _EphemeralController(
        _Handler(server),
        hostname=server.host,
        port=0,
        server_hostname="lb-test-smtp",  # else aiosmtpd asks DNS for this machine's name
        authenticator=_Authenticator(server),
        auth_require_tls=False,
        auth_required=False,
    )
    controller.start()
    server.port = controller.port
    try:
        yield server
    finally:
        controller.stop()


SMTP_VARS = (
    "LB_SMTP_HOST", "LB_SMTP_PORT", "LB_SMTP_FROM", "LB_SMTP_USERNAME", "LB_SMTP_PASSWORD",
    "LB_SMTP_STARTTLS", "LB_SMTP_TIMEOUT", "LB_ALERTS_TO", "LB_DAGSTER_UI_URL",
)


@pytest.fixture
def smtp_env(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> SmtpServer:
    for var in SMTP_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LB_SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("LB_SMTP_PORT", str(smtp_server.port))
    smtp_server.clear()
    return smtp_server


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed
