"""Delivery to an SFTP server, published the way rclone does it: upload under a hidden temporary
name, verify size and sha256 of what the server holds, then `posix_rename` over the final name.

A process killed mid-upload leaves its temporary file on the server. The name says whose it is,
`.<file>.lb-<host>-<pid>-<random>.tmp` (host: a short hash of this machine's name, which the
server need not learn), and every delivery first removes the leftovers of ours that are surely
dead: from this machine with a pid that no longer runs, or from anywhere and untouched for an
hour by the server's own clock. Two machines may share a remote folder: a live upload keeps
its file growing, so it is never an hour old.

The server must be in the configured known_hosts (paramiko's RejectPolicy; never auto-added).
An unknown or changed host key and a refused login fail at once; a dropped or refused
connection is retried with backoff, since the next attempt may well succeed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import re
import secrets
import socket
import stat
import time
from pathlib import Path
from typing import Iterator

import paramiko
import tenacity

from lb_pipelines.delivery.settings import SftpDelivery
from lb_pipelines.delivery.targets import DeliveryError, Receipt, sha256_hex
from lb_pipelines.temp_files import pid_alive

log = logging.getLogger(__name__)

_READ_CHUNK = 1 << 20
STALE_AFTER_S = 3600  # a temporary file untouched this long (server clock) belongs to no live upload
# Ours: `.<file>.lb-<host>-<pid>-<random>.tmp`, or `.<file>.<random>.tmp` as earlier versions named them.
_TEMPORARY = re.compile(
    r"^\.(?P<file>.+)\.(?:lb-(?P<host>[0-9a-f]{8})-(?P<pid>\d{1,10})-[0-9a-f]{8}|[0-9a-f]{12})\.tmp$"
)


def host_tag() -> str:
    """This machine in our remote temporary names: recognizable by us, not revealing to the server."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temporary_name(file_name: str) -> str:
    return f".{file_name}.lb-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}.tmp"


class _Retryable(Exception):
    """A failure of the connection or the transfer: another attempt may succeed."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class SftpTarget:
    """Uploads each file to `settings.remote_dir`; a file is there whole and verified, or not at all."""

    def __init__(self, settings: SftpDelivery, *, backoff_initial: float = 1.0, backoff_max: float = 30.0):
        self.settings = settings
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.description = f"sftp://{settings.username}@{settings.host}:{settings.port}/{settings.remote_dir}"

    def deliver(self, integration: str, file_name: str, content: bytes) -> Receipt:
        if not file_name or "/" in file_name or file_name in (".", ".."):
            raise DeliveryError(f"{self.description}: invalid file name {file_name!r}")
        credentials = self._credentials()
        known_hosts = self._known_hosts()
        final = posixpath.normpath(posixpath.join(self.settings.remote_dir, file_name))
        digest = sha256_hex(content)
        leftovers: list[str] = []  # temporary files of attempts whose connection dropped
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.settings.retries + 1),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
            ),
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=lambda state: self._log_retry(integration, file_name, state),
            reraise=True,
        )
        started = time.monotonic()
        try:
            retrying(self._attempt, credentials, known_hosts, file_name, final, content, digest, leftovers)
        except _Retryable as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            if leftovers:
                log.warning("%s: temporary file(s) left on the server: %s", self.description, leftovers)
            raise DeliveryError(
                f"{self.description}: upload of {file_name} failed after {attempts} attempt"
                f"{'s' if attempts != 1 else ''}: {exc.reason}"
            ) from exc.__cause__
        log.info(
            "%s: delivered %s to %s (%d bytes, sha256 %s) in %d attempt(s), %.2f s",
            integration, file_name, self.description, len(content), digest,
            retrying.statistics.get("attempt_number", 1), time.monotonic() - started,
        )
        return Receipt(self.description, final, len(content), digest)

    def _credentials(self) -> dict:
        return credentials_of(self.settings, self.description)

    def _known_hosts(self) -> str:
        return known_hosts_of(self.settings, self.description)

    def _attempt(self, credentials, known_hosts, file_name, final, content, digest, leftovers) -> None:
        client = paramiko.SSHClient()
        try:
            sftp = _open(client, self.settings, credentials, known_hosts)
            while leftovers:
                _remove_quietly(sftp, leftovers.pop())
            folder = posixpath.dirname(final)
            tmp = posixpath.join(folder, temporary_name(file_name))
            try:
                server_now = _create(sftp, tmp)
                self._remove_leftovers(sftp, folder, keep=tmp, server_now=server_now)
                _upload(sftp, tmp, content)
                _verify(sftp, tmp, len(content), digest)
                sftp.posix_rename(tmp, final)
            except BaseException:
                if not _remove_quietly(sftp, tmp):
                    leftovers.append(tmp)
                raise
        except (DeliveryError, _Retryable):
            raise
        except Exception as exc:
            raise self._classify(exc, file_name, known_hosts) from exc
        finally:
            client.close()

    def _remove_leftovers(self, sftp: paramiko.SFTPClient, folder: str, keep: str, server_now: float) -> None:
        """Remove the temporary files killed uploads of ours left in `folder` (see the module doc)."""
        try:
            entries = sftp.listdir_attr(folder)
        except (OSError, paramiko.SSHException) as exc:  # a drop folder may refuse listing: not our problem
            log.info("%s: could not look for leftover temporary files: %s", self.description, exc)
            return
        here, removed = host_tag(), 0
        for entry in entries:
            match = _TEMPORARY.match(entry.filename)
            path = posixpath.join(folder, entry.filename)
            if not match or path == keep or not stat.S_ISREG(entry.st_mode or 0):
                continue
            dead_here = match["host"] == here and not pid_alive(int(match["pid"]))
            untouched = entry.st_mtime is not None and server_now - entry.st_mtime > STALE_AFTER_S
            if (dead_here or untouched) and _remove_quietly(sftp, path):
                removed += 1
        if removed:
            log.info("%s: removed %d leftover temporary file(s) of killed uploads", self.description, removed)

    def _classify(self, exc: Exception, file_name: str, known_hosts: str) -> Exception:
        return classify(exc, self.settings, self.description, f"cannot write {file_name}",
                        f"upload of {file_name} failed", known_hosts)

    def _log_retry(self, integration: str, file_name: str, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: upload of %s to %s failed (attempt %d of %d): %s; retrying in %.1f s",
            integration, file_name, self.description, state.attempt_number, self.settings.retries + 1,
            getattr(exc, "reason", exc), state.upcoming_sleep,
        )



def credentials_of(s: SftpDelivery, where: str) -> dict:
    """Connect arguments for the one configured credential, read from the environment now."""
    variable = s.password_env or s.key_path_env
    value = os.environ.get(variable or "")
    if not value:
        kind = "password" if s.password_env else "private key path"
        raise DeliveryError(f"{where}: environment variable {variable} ({kind}) is not set")
    if s.password_env:
        return {"password": value}
    try:
        return {"pkey": paramiko.PKey.from_path(value)}
    except FileNotFoundError:
        reason = "no such file"
    except PermissionError:
        reason = "permission denied"
    except (TypeError, paramiko.PasswordRequiredException):
        reason = "the key is protected by a passphrase, which is not supported"
    except Exception as exc:  # the loaders' messages may quote the file: say only what kind of error
        reason = f"not a usable RSA, ECDSA or Ed25519 private key ({type(exc).__name__})"
    raise DeliveryError(f"{where}: private key {value} (from {variable}): {reason}") from None


def known_hosts_of(s: SftpDelivery, where: str) -> str:
    path = os.path.expanduser(s.known_hosts)
    if not Path(path).is_file():
        raise DeliveryError(f"{where}: known_hosts file {path} not found: refusing to connect to an unverified host")
    return path


def _open(client: paramiko.SSHClient, s: SftpDelivery, credentials: dict, known_hosts: str) -> paramiko.SFTPClient:
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        s.host, port=s.port, username=s.username, allow_agent=False, look_for_keys=False,
        timeout=s.timeout_s, banner_timeout=s.timeout_s, auth_timeout=s.timeout_s,
        channel_timeout=s.timeout_s, **credentials,
    )
    sftp = client.open_sftp()
    sftp.get_channel().settimeout(s.timeout_s)
    return sftp


def classify(exc: Exception, s: SftpDelivery, where: str, refused: str, failed: str, known_hosts: str) -> Exception:
    """A DeliveryError for what another attempt cannot fix, else a _Retryable. `refused`: what a
    missing file or permission stops ("cannot write x"); `failed`: what did not happen."""
    host_key_name = s.host if s.port == 22 else f"[{s.host}]:{s.port}"  # as known_hosts names it
    if isinstance(exc, paramiko.BadHostKeyException):
        return DeliveryError(
            f"{where}: host key for {host_key_name} does not match known_hosts ({known_hosts}): refusing to connect"
        )
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return DeliveryError(f"{where}: host {host_key_name} is not in known_hosts ({known_hosts}): refusing to connect")
    if isinstance(exc, paramiko.AuthenticationException) and "timeout" not in str(exc).lower():
        source = f"password from {s.password_env}" if s.password_env else f"key from {s.key_path_env}"
        return DeliveryError(f"{where}: login refused for user {s.username} ({source})")
    if isinstance(exc, (FileNotFoundError, PermissionError)):  # SFTP status: no folder, no permission
        return DeliveryError(f"{where}: {refused}: {exc.strerror or exc}")
    if isinstance(exc, (OSError, EOFError, paramiko.SSHException)):
        text = (getattr(exc, "strerror", None) or str(exc)).strip().rstrip(":") or "connection dropped"
        return _Retryable(f"{text} ({type(exc).__name__})")
    return DeliveryError(f"{where}: {failed}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def connected_sftp(s: SftpDelivery, where: str, what: str = "the folder") -> Iterator[paramiko.SFTPClient]:
    """One verified SFTP session (no retries: a reader tries again at its next look). Every failure,
    of the connection or inside the block, is a DeliveryError naming the server and the reason."""
    credentials, known_hosts = credentials_of(s, where), known_hosts_of(s, where)
    client = paramiko.SSHClient()
    try:
        yield _open(client, s, credentials, known_hosts)
    except DeliveryError:
        raise
    except Exception as exc:
        error = classify(exc, s, where, f"cannot read {what}", f"reading {what} failed", known_hosts)
        raise (error if isinstance(error, DeliveryError) else DeliveryError(f"{where}: {error}")) from exc
    finally:
        client.close()


def _create(sftp: paramiko.SFTPClient, path: str) -> float:
    """Create `path` empty; its modification time is the server's clock (ours may differ)."""
    with sftp.open(path, "wb"):
        pass
    return sftp.stat(path).st_mtime


def _upload(sftp: paramiko.SFTPClient, path: str, content: bytes) -> None:
    with sftp.open(path, "wb") as remote:
        remote.set_pipelined(True)
        remote.write(content)


def _verify(sftp: paramiko.SFTPClient, path: str, size: int, digest: str) -> None:
    """What the server holds must be exactly what was sent before it gets the final name."""
    remote_size = sftp.stat(path).st_size
    if remote_size != size:
        raise _Retryable(f"verification failed: the server holds {remote_size} bytes, {size} were sent")
    hasher = hashlib.sha256()
    with sftp.open(path, "rb") as remote:
        remote.prefetch(size)
        while chunk := remote.read(_READ_CHUNK):
            hasher.update(chunk)
    if hasher.hexdigest() != digest:
        raise _Retryable(f"verification failed: the server's sha256 is {hasher.hexdigest()}, sent {digest}")


def _remove_quietly(sftp: paramiko.SFTPClient, path: str) -> bool:
    """Whether `path` is gone afterwards (removed, or never there)."""
    try:
        sftp.remove(path)
    except FileNotFoundError:
        pass
    except Exception:  # the connection may be what failed
        return False
    return True
