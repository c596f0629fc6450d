"""A real PostgreSQL for the tests of Dagster's production storage (dagster-postgres), as fixtures.

`postgres_server` (session): Debian's PostgreSQL in a fresh temp folder, run as the `postgres`
user (initdb refuses root), listening on 127.0.0.1 and a free port, with its socket in that
folder too. Local socket logins are `peer` (only the OS user postgres, to set things up); TCP
logins need a password (scram-sha-256). A role and a database for Dagster are made, with a
password full of URL-special characters, as a production one may be. Needs root (runuser);
installs postgresql through scripts/install-test-services.sh when initdb is missing.
See shared/notes/real-services-here.md for the traps these settings avoid.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install-test-services.sh"
PG_USER = "postgres"  # the OS user that owns and runs the cluster
DAGSTER_ROLE = "dagster"
DAGSTER_DB = "dagster"


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    db: str
    socket_dir: str
    data_dir: str
    log_path: str  # the server's own log, for diagnosing a failing test

    def env(self) -> dict[str, str]:
        """The DAGSTER_PG_* variables that dagster-production.yaml reads."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.db,
        }

    def connect(self):
        """A psycopg2 connection over TCP with the Dagster role's password (not through Dagster)."""
        import psycopg2

        return psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                                dbname=self.db, connect_timeout=5)


def _initdb_paths() -> list[str]:
    """Installed initdb programs, oldest major version first."""
    return sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))


def _bin_dir() -> Path:
    if not _initdb_paths():
        subprocess.run([str(INSTALL_SCRIPT)], check=True)
    return Path(_initdb_paths()[-1]).parent  # the newest major version installed


def _as_postgres(*args: str, cwd: Path, input: str | None = None) -> str:
    """Run a PostgreSQL program as the postgres user; raise with its output when it fails."""
    done = subprocess.run(["runuser", "-u", PG_USER, "--", *args], cwd=cwd, input=input, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_tcp(port: int, log_path: Path, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"PostgreSQL did not accept connections on port {port}: {log_path.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if os.geteuid() != 0:
        pytest.skip("the real-PostgreSQL tests need root (initdb and pg_ctl run as the postgres user)")
    with running_postgres() as server:
        yield server


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL on 127.0.0.1 for as long as the block runs."""
    bin_dir = _bin_dir()
    owner = pwd.getpwnam(PG_USER)
    # Under /tmp, not pytest's tmp_path: /tmp/pytest-of-root is 0700 and postgres cannot enter it.
    work = Path(tempfile.mkdtemp(prefix="lb-postgres-"))
    data, sockets, log = work / "data", work / "socket", work / "postgres.log"
    started = False
    try:
        sockets.mkdir()
        superuser_pw = work / "superuser-password"
        superuser_pw.write_text(secrets.token_urlsafe(18) + "\n")
        for path in (work, sockets, superuser_pw):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        work.chmod(0o700)
        _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(superuser_pw),
                     "--auth-local=peer", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                     "--no-sync", "--no-instructions", cwd=work)
        data.chmod(0o700)  # initdb makes it so already; PostgreSQL refuses to start otherwise

        for _ in range(3):  # another process may take the free port between probe and bind
            port = _free_port()
            try:
                _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30",
                             "-o", f"-k {sockets} -p {port} -c listen_addresses=127.0.0.1", "start", cwd=work)
                started = True
                break
            except RuntimeError:
                if "could not bind" not in (log.read_text() if log.exists() else ""):
                    raise
        else:
            raise RuntimeError("PostgreSQL could not bind a free port in 3 tries")
        _wait_for_tcp(port, log)

        # The password goes in as a psql variable (:'pw' quotes it), never spliced into SQL.
        password = "pg/" + secrets.token_urlsafe(12) + ":@%?#&'"
        _as_postgres(str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(sockets),
                     "-p", str(port), "-U", PG_USER, "-d", "postgres", "-v", f"pw={password}", cwd=work,
                     input=f"CREATE ROLE {DAGSTER_ROLE} LOGIN PASSWORD :'pw';\n"
                           f"CREATE DATABASE {DAGSTER_DB} OWNER {DAGSTER_ROLE};\n")
        server = PostgresServer(host="127.0.0.1", port=port, user=DAGSTER_ROLE, password=password, db=DAGSTER_DB,
                                socket_dir=str(sockets), data_dir=str(data), log_path=str(log))
        server.connect().close()  # the role logs in over TCP with its password
        yield server
    finally:
        if started:  # stop the server we started (pg_ctl reads its PID from the data folder)
            subprocess.run(["runuser", "-u", PG_USER, "--", str(bin_dir / "pg_ctl"), "-D", str(data),
                            "-m", "fast", "-w", "-t", "30", "stop"], cwd=work, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
