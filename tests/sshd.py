"""A real OpenSSH sshd for the SFTP tests (what production SFTP sites run), as pytest fixtures.

`sshd_server` (session): sshd on 127.0.0.1 and a free high port, its own ed25519 host key,
config, pid file and authorized_keys in a temp folder, password and key login for the local
user `lbsftp`, and `Subsystem sftp internal-sftp`. No chroot: the upload folders are plain
absolute paths, usable as `remote_dir`. `sshd_upload_dir` (function) is a fresh, empty folder
that `lbsftp` owns. Needs root (a local user, sshd's privilege separation); installs
openssh-server through scripts/install-test-services.sh when sshd is missing.
See shared/notes/real-services-here.md for the traps these settings avoid.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

SSHD = "/usr/sbin/sshd"
USER = "lbsftp"
INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-test-services.sh"


@dataclass
class SshdServer:
    host: str
    port: int
    username: str
    password: str
    key_path: str  # the client's ed25519 private key, listed in authorized_keys
    keys: dict[str, str]  # authorized client keys by type: ed25519, ecdsa, rsa
    stranger_key_path: str  # a valid private key that is NOT in authorized_keys
    known_hosts: str  # `[127.0.0.1]:PORT ssh-ed25519 ...`: the server's real host key
    wrong_known_hosts: str  # the same host name with another key
    upload_dir: str  # a folder the user can write to (absolute: no chroot)
    sshd_pid: int
    workdir: str
    log_path: str  # sshd's own log (-e), for diagnosing a failing test

    def delivery(self, remote_dir: str | Path, *, password_env: str | None = None,
                 key_path_env: str | None = None, **extra) -> dict:
        """A `delivery:` block (as in settings.yaml) for this server; the caller sets the named
        environment variable to `password` or `key_path`."""
        credential = {"password_env": password_env} if password_env else {"key_path_env": key_path_env}
        return {"type": "sftp", "host": self.host, "port": self.port, "username": self.username,
                "known_hosts": self.known_hosts, "remote_dir": str(remote_dir), **credential, **extra}

    def session_pids(self) -> list[int]:
        """The per-connection sshd processes (and theirs), below the listening sshd."""
        return _descendants(self.sshd_pid)

    def kill_sessions(self) -> int:
        """Drop every live connection, as a network failure would; returns how many processes."""
        return _kill_descendants(self.sshd_pid)


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for task in Path(f"/proc/{queue.pop()}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except OSError:  # the process ended meanwhile
                continue
            found += children
            queue += children
    return found


def _kill_descendants(pid: int) -> int:
    pids = _descendants(pid)
    for child in pids:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


def _run(*args: str, input: str | None = None) -> None:
    subprocess.run(args, input=input, text=True, check=True, capture_output=True)


def _keygen(path: Path, kind: str) -> None:
    extra = ["-b", "2048"] if kind == "rsa" else []
    _run("ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", f"lb-test-{kind}", "-f", str(path))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The test user's password, kept by root so that several test servers on one machine (a test
# run beside a benchmark) share it rather than resetting each other's.
PASSWORD_FILE = Path("/var/tmp/lb-pipelines-test-sftp-password")


def _ensure_user() -> str:
    """Make sure the local SFTP user exists with the stored password; return that password."""
    try:
        pwd.getpwnam(USER)
        created = False
    except KeyError:
        _run("useradd", "-m", "-s", "/usr/sbin/nologin", USER)
        created = True
    if PASSWORD_FILE.exists() and not created:
        return PASSWORD_FILE.read_text().strip()
    password = secrets.token_urlsafe(18)
    # A user made by useradd is locked; with UsePAM no even key login is refused until it has a password.
    _run("chpasswd", input=f"{USER}:{password}\n")
    fd = os.open(PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password


def _start(config: Path, log_path: Path, port: int) -> subprocess.Popen:
    with log_path.open("ab") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError(f"sshd did not accept connections on port {port} within 10 s")


@pytest.fixture(scope="session")
def sshd_server() -> Iterator[SshdServer]:
    if os.geteuid() != 0:
        pytest.skip("the real-sshd tests need root (a local user and sshd's privilege separation)")
    with running_sshd() as server:
        yield server


@contextlib.contextmanager
def running_sshd() -> Iterator[SshdServer]:
    """A real OpenSSH sshd on 127.0.0.1 for as long as the block runs (tests and benchmarks)."""
    if not os.access(SSHD, os.X_OK):
        subprocess.run([str(INSTALL_SCRIPT)], check=True)
    work = Path(tempfile.mkdtemp(prefix="lb-sshd-"))
    work.chmod(0o755)  # sshd reads authorized_keys as the user: the folder must be traversable
    proc = None
    try:
        password = _ensure_user()
        user = pwd.getpwnam(USER)
        upload = work / "upload"
        upload.mkdir()
        os.chown(upload, user.pw_uid, user.pw_gid)

        _keygen(work / "host_ed25519", "ed25519")
        _keygen(work / "other_host_ed25519", "ed25519")
        keys = {kind: str(work / f"client_{kind}") for kind in ("ed25519", "ecdsa", "rsa")}
        for kind, path in keys.items():
            _keygen(Path(path), kind)
        _keygen(work / "stranger_ed25519", "ed25519")
        authorized = work / "authorized_keys"
        authorized.write_text("".join(Path(p + ".pub").read_text() for p in keys.values()))
        authorized.chmod(0o644)

        os.makedirs("/run/sshd", exist_ok=True)  # privilege separation folder
        for _ in range(3):  # another process may take the free port between probe and bind
            port = _free_port()
            config = work / "sshd_config"
            config.write_text(
                f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {work / 'host_ed25519'}\n"
                f"PidFile {work / 'sshd.pid'}\nAuthorizedKeysFile {authorized}\n"
                "StrictModes no\nUsePAM no\nPasswordAuthentication yes\nPubkeyAuthentication yes\n"
                "KbdInteractiveAuthentication no\nPermitRootLogin no\nAllowUsers lbsftp\n"
                "MaxStartups 100\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n"
            )
            try:
                proc = _start(config, work / "sshd.log", port)
                break
            except RuntimeError:
                if "Address already in use" not in (work / "sshd.log").read_text():
                    raise
        else:
            raise RuntimeError("sshd could not bind a free port in 3 tries")

        def known_hosts(name: str, host_key: str) -> str:
            key_type, key_b64 = (work / f"{host_key}.pub").read_text().split()[:2]
            path = work / name
            path.write_text(f"[127.0.0.1]:{port} {key_type} {key_b64}\n")
            return str(path)

        yield SshdServer(
            host="127.0.0.1",
            port=port,
            username=USER,
            password=password,
            key_path=keys["ed25519"],
            keys=keys,
            stranger_key_path=str(work / "stranger_ed25519"),
            known_hosts=known_hosts("known_hosts", "host_ed25519"),
            wrong_known_hosts=known_hosts("wrong_known_hosts", "other_host_ed25519"),
            upload_dir=str(upload),
            sshd_pid=proc.pid,
            workdir=str(work),
            log_path=str(work / "sshd.log"),
        )
    finally:
        if proc is not None:  # stop the sshd we started, by its PID, and its sessions
            _kill_descendants(proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def sshd_upload_dir(sshd_server: SshdServer) -> Path:
    """A fresh, empty folder that the SFTP user owns: pass it as `remote_dir`."""
    path = Path(tempfile.mkdtemp(prefix="test-", dir=sshd_server.upload_dir))
    user = pwd.getpwnam(sshd_server.username)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(0o755)
    return path
