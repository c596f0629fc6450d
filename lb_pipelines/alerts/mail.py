"""Sending the alert e-mails: SMTP settings from the environment only, one session per batch.

Alerts are operations beside the pipeline, never part of it: a mail that cannot be sent is
logged (without the password) and `send_mails` returns False; nothing here raises into a run
or a sensor tick. With `LB_SMTP_HOST` unset, alerts are off and that is said once, at INFO.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Iterable, Mapping, Sequence

_LOG = logging.getLogger(__name__)

DEFAULT_PORT = 25
DEFAULT_SENDER = "lb-pipelines@localhost"
DEFAULT_TIMEOUT_SECONDS = 10.0  # per connect and per reply; sensor ticks end at 60 s
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}
# Refusals of one message: the session goes on with the next one.
_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError)


@dataclass(frozen=True)
class Mail:
    """One composed alert: plain text to a list of addresses."""

    subject: str
    body: str
    to: tuple[str, ...]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = DEFAULT_PORT
    sender: str = DEFAULT_SENDER
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def login(self) -> bool:
        return bool(self.username and self.password)


def _env(environ: Mapping[str, str], var: str) -> str:
    return environ.get(var, "").strip()


def smtp_settings(environ: Mapping[str, str] = os.environ) -> SmtpSettings | None:
    """The SMTP server from `LB_SMTP_*`, or None when `LB_SMTP_HOST` is unset (alerts off).

    Raises ValueError naming the variable when a value is malformed.
    """
    host = _env(environ, "LB_SMTP_HOST")
    if not host:
        return None
    port_text = _env(environ, "LB_SMTP_PORT")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"LB_SMTP_PORT={port_text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ValueError(f"LB_SMTP_PORT={port_text!r} is not a port number (1-65535)")
    starttls_text = _env(environ, "LB_SMTP_STARTTLS").lower()
    if starttls_text not in _TRUE | _FALSE:
        raise ValueError(f"LB_SMTP_STARTTLS={starttls_text!r} is neither true nor false")
    timeout_text = _env(environ, "LB_SMTP_TIMEOUT")
    try:
        timeout = float(timeout_text) if timeout_text else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        raise ValueError(f"LB_SMTP_TIMEOUT={timeout_text!r} is not a number of seconds") from None
    if timeout <= 0:
        raise ValueError(f"LB_SMTP_TIMEOUT={timeout_text!r} must be more than 0 seconds")
    return SmtpSettings(
        host=host,
        port=port,
        sender=_env(environ, "LB_SMTP_FROM") or DEFAULT_SENDER,
        username=_env(environ, "LB_SMTP_USERNAME") or None,
        password=environ.get("LB_SMTP_PASSWORD") or None,  # kept as given: spaces may be part of it
        starttls=starttls_text in _TRUE,
        timeout=timeout,
    )


def admin_recipients(environ: Mapping[str, str] = os.environ) -> list[str]:
    """`LB_ALERTS_TO`: the administrators, comma-separated; they receive every alert."""
    return [address.strip() for address in environ.get("LB_ALERTS_TO", "").split(",") if address.strip()]


def unique_addresses(*groups: Iterable[str]) -> tuple[str, ...]:
    """Addresses in first-seen order, each once (compared without case), blanks dropped."""
    seen: set[str] = set()
    result: list[str] = []
    for group in groups:
        for address in group:
            address = address.strip()
            if address and address.lower() not in seen:
                seen.add(address.lower())
                result.append(address)
    return tuple(result)


_said_off = False


def alerts_off_notice(log: logging.Logger) -> None:
    """Say once per process that alerts are off: not an error, a deployment may have no SMTP."""
    global _said_off
    if not _said_off:
        _said_off = True
        log.info("alert e-mails are off: LB_SMTP_HOST is not set")


def _redacted(text: str, smtp: SmtpSettings) -> str:
    return text.replace(smtp.password, "********") if smtp.password else text


def _message(mail: Mail, smtp: SmtpSettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = mail.subject
    message["From"] = smtp.sender
    message["To"] = ", ".join(mail.to)
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies
    message.set_content(mail.body)
    return message


def send_mails(
    mails: Sequence[Mail], *, smtp: SmtpSettings | None = None, log: logging.Logger | None = None
) -> list[bool]:
    """Send each mail over one SMTP session; whether each went out. Never raises.

    `smtp` defaults to the environment's settings. One session per batch keeps a dead server
    to one timeout per sensor evaluation instead of one per mail.
    """
    log = log or _LOG
    if not mails:
        return []
    try:
        smtp = smtp or smtp_settings()
    except ValueError as exc:
        log.error(f"alert e-mails not sent: {exc}")
        return [False] * len(mails)
    if smtp is None:
        alerts_off_notice(log)
        return [False] * len(mails)
    for mail in mails:
        if not mail.to:
            log.warning(f"alert e-mail {mail.subject!r} has no recipients: set LB_ALERTS_TO")
    if not any(mail.to for mail in mails):
        return [False] * len(mails)
    if bool(smtp.username) != bool(smtp.password):
        log.warning("only one of LB_SMTP_USERNAME and LB_SMTP_PASSWORD is set: sending without login")
    sent = [False] * len(mails)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.login:
                client.login(smtp.username, smtp.password)
            for index, mail in enumerate(mails):
                if not mail.to:
                    continue
                try:
                    message = _message(mail, smtp)
                    refused = client.send_message(message, from_addr=smtp.sender, to_addrs=list(mail.to))
                except _REFUSED as exc:
                    reason = _redacted(str(exc), smtp)
                    log.error(f"alert e-mail {mail.subject!r} refused by the server: {reason}")
                    continue
                sent[index] = True
                if refused:
                    log.warning(f"alert e-mail {mail.subject!r}: the server refused {', '.join(refused)}")
                log.info(f"alert e-mail {mail.subject!r} sent to {', '.join(mail.to)}")
    except Exception as exc:  # smtplib raises more than SMTPException and OSError (e.g. UnicodeEncodeError)
        if isinstance(exc, UnicodeError):  # its message would quote part of the credentials
            reason = "the username, the password or an address is not ASCII, which smtplib cannot send"
        else:
            reason = _redacted(f"{type(exc).__name__}: {exc}", smtp)
        lost = [mail.subject for mail, ok in zip(mails, sent) if not ok and mail.to]
        log.error(
            f"alert e-mail not sent through SMTP {smtp.host}:{smtp.port}"
            f"{' as ' + smtp.username if smtp.login else ''}: {reason}; not sent: {lost}"
        )
    return sent


def send_mail(subject: str, body: str, to: Iterable[str], *, log: logging.Logger | None = None) -> bool:
    """Send one plain-text alert to `to` through the environment's SMTP server; never raises."""
    return send_mails([Mail(subject, body, unique_addresses(to))], log=log)[0]
