"""SftpTarget against a real OpenSSH sshd (tests/sshd.py): atomic publish, host keys, retries, secrets."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lb_pipelines.delivery import sftp
from lb_pipelines.delivery.settings import SftpDelivery
from lb_pipelines.delivery.sftp import SftpTarget
from lb_pipelines.delivery.targets import DeliveryError

PASSWORD_ENV = "LB_TEST_SFTP_PASSWORD"
KEY_ENV = "LB_TEST_SFTP_KEY"
LOGGER = "lb_pipelines.delivery.sftp"

SMALL = b"TEAM_ID,PROVIDER_ID,START,END\r\n1001,P-17,03/07/2026 07:00,03/07/2026 19:00\r\n"
SMALL_SHA256 = "d12ccca9a4d017fbd1bf96deb2bb58a9b86d85c72be4b0c40ec5b54e1eba7ce3"
LARGE = bytes(range(256)) * (40 << 12)  # 40 MiB: an upload that takes long enough to watch
LARGE_SHA256 = "8f64ef62163af95084172a31b4d14ee74bfbb382ed7de176e563827dc77dc48c"
FILE = "epic_ocf_202603071200.csv"


@pytest.fixture(autouse=True)
def _no_secret_in_logs(sshd_server, caplog, monkeypatch):
    """Credentials in the environment; afterwards, no secret in any log record (DEBUG, all loggers)."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PASSWORD_ENV, sshd_server.password)
    monkeypatch.setenv(KEY_ENV, sshd_server.key_path)
    secrets = [sshd_server.password, *(_key_body(p) for p in sshd_server.keys.values())]
    yield
    logged = caplog.text + "".join(record.getMessage() for record in caplog.records)
    for secret in secrets:
        assert secret not in logged


def _key_body(path: str) -> str:
    """A line from the middle of a private key file: key material that must never be logged."""
    lines = Path(path).read_text().splitlines()
    return lines[len(lines) // 2]


def _target(server, remote_dir, *, auth="password", known_hosts=None, port=None, retries=3, backoff=0.05):
    credential = {"password_env": PASSWORD_ENV} if auth == "password" else {"key_path_env": KEY_ENV}
    block = server.delivery(remote_dir, **credential, timeout_s=10, retries=retries)
    block.update(port=port or server.port, known_hosts=known_hosts or server.known_hosts)
    return SftpTarget(SftpDelivery(**block), backoff_initial=backoff)


def _retries_logged(caplog) -> int:
    return sum(1 for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING)


def _refused(target, caplog, content=SMALL) -> tuple[str, float]:
    """Deliver expecting a DeliveryError without any retry; returns its message and the time taken."""
    started = time.monotonic()
    with pytest.raises(DeliveryError) as failure:
        target.deliver("epic_on_call_finder", FILE, content)
    took = time.monotonic() - started
    assert _retries_logged(caplog) == 0
    chain, exc = [], failure.value
    while exc is not None:  # the message and every exception it was raised from
        chain.append(repr(exc))
        exc = exc.__cause__ or exc.__context__
    secrets = [os.environ.get(PASSWORD_ENV)]
    if Path(os.environ.get(KEY_ENV, "/nonexistent")).is_file():
        secrets.append(_key_body(os.environ[KEY_ENV]))
    assert not [secret for secret in secrets if secret and secret in "".join(chain)]
    return str(failure.value), took


@pytest.mark.parametrize("auth", ["key", "password"])
def test_upload_arrives_whole_under_its_final_name(sshd_server, sshd_upload_dir, caplog, auth):
    receipt = _target(sshd_server, sshd_upload_dir, auth=auth).deliver("epic_on_call_finder", FILE, SMALL)

    assert (sshd_upload_dir / FILE).read_bytes() == SMALL
    assert os.listdir(sshd_upload_dir) == [FILE]  # no temporary file left
    assert (receipt.bytes, receipt.sha256, receipt.delivered) == (76, SMALL_SHA256, True)
    assert receipt.location == f"{sshd_upload_dir}/{FILE}"
    assert receipt.target == f"sftp://lbsftp@127.0.0.1:{sshd_server.port}/{sshd_upload_dir}"
    infos = [r for r in caplog.records if r.name == LOGGER and r.levelno == logging.INFO]
    assert len(infos) == 1 and FILE in infos[0].getMessage()


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_other_key_types_log_in(sshd_server, sshd_upload_dir, monkeypatch, kind):
    monkeypatch.setenv(KEY_ENV, sshd_server.keys[kind])
    _target(sshd_server, sshd_upload_dir, auth="key").deliver("epic_on_call_finder", FILE, SMALL)
    assert (sshd_upload_dir / FILE).read_bytes() == SMALL


def test_a_new_delivery_replaces_the_file_of_the_same_name(sshd_server, sshd_upload_dir):
    target = _target(sshd_server, sshd_upload_dir)
    target.deliver("epic_on_call_finder", FILE, b"old\n")
    target.deliver("epic_on_call_finder", FILE, SMALL)
    assert (sshd_upload_dir / FILE).read_bytes() == SMALL
    assert os.listdir(sshd_upload_dir) == [FILE]


def test_the_final_name_never_shows_a_partial_file(sshd_server, sshd_upload_dir):
    target = _target(sshd_server, sshd_upload_dir)
    result: list = []
    uploader = threading.Thread(
        target=lambda: result.append(target.deliver("epic_on_call_finder", FILE, LARGE)), daemon=True
    )
    saw_temporary, saw_complete, partial_sizes = False, False, []
    uploader.start()
    deadline = time.monotonic() + 30
    while (uploader.is_alive() or not saw_complete) and time.monotonic() < deadline:
        for name in os.listdir(sshd_upload_dir):
            if name == FILE:
                seen = (sshd_upload_dir / name).read_bytes()
                if seen == LARGE:
                    saw_complete = True
                else:
                    partial_sizes.append(len(seen))
            elif name.startswith(f".{FILE}.") and name.endswith(".tmp"):
                saw_temporary = True
        time.sleep(0.001)  # leave the uploader thread the GIL
    uploader.join(timeout=5)

    assert partial_sizes == []
    assert saw_temporary, "the reader never saw the upload in progress: the test proves nothing"
    assert saw_complete
    assert result[0].sha256 == LARGE_SHA256
    assert os.listdir(sshd_upload_dir) == [FILE]


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda content: content[:-1], "verification failed: the server holds 75 bytes, 76 were sent"),
        (lambda content: content.replace(b"P-17", b"P-18"), "verification failed: the server's sha256 is "),
    ],
    ids=["truncated", "altered"],
)
def test_a_file_that_arrives_damaged_never_gets_the_final_name(
    sshd_server, sshd_upload_dir, caplog, monkeypatch, damage, reason
):
    upload = sftp._upload
    monkeypatch.setattr(sftp, "_upload", lambda client, path, content: upload(client, path, damage(content)))
    with pytest.raises(DeliveryError) as failure:
        _target(sshd_server, sshd_upload_dir, retries=1).deliver("epic_on_call_finder", FILE, SMALL)
    assert f"upload of {FILE} failed after 2 attempts: {reason}" in str(failure.value)
    assert _retries_logged(caplog) == 1
    assert os.listdir(sshd_upload_dir) == []  # neither the final name nor a temporary file


def test_a_wrong_host_key_is_refused_at_once(sshd_server, sshd_upload_dir, caplog):
    target = _target(sshd_server, sshd_upload_dir, known_hosts=sshd_server.wrong_known_hosts, backoff=5.0)
    message, took = _refused(target, caplog)
    assert message == (
        f"sftp://lbsftp@127.0.0.1:{sshd_server.port}/{sshd_upload_dir}: host key for "
        f"[127.0.0.1]:{sshd_server.port} does not match known_hosts ({sshd_server.wrong_known_hosts}): "
        "refusing to connect"
    )
    assert took < 4  # a retry would wait at least 5 s
    assert os.listdir(sshd_upload_dir) == []


def test_a_host_missing_from_known_hosts_is_refused(sshd_server, sshd_upload_dir, caplog, tmp_path):
    other = tmp_path / "known_hosts"  # the right key, but for another port: not this host
    other.write_text(Path(sshd_server.known_hosts).read_text().replace(f":{sshd_server.port} ", ":2299 "))
    message, _ = _refused(_target(sshd_server, sshd_upload_dir, known_hosts=str(other)), caplog)
    host = f"[127.0.0.1]:{sshd_server.port}"
    assert f"host {host} is not in known_hosts ({other}): refusing to connect" in message
    assert os.listdir(sshd_upload_dir) == []


def test_a_missing_known_hosts_file_is_refused(sshd_server, sshd_upload_dir, caplog, tmp_path):
    missing = tmp_path / "no_known_hosts"
    message, _ = _refused(_target(sshd_server, sshd_upload_dir, known_hosts=str(missing)), caplog)
    assert f"known_hosts file {missing} not found" in message


def test_a_dropped_connection_is_retried_and_leaves_one_whole_file(sshd_server, sshd_upload_dir, caplog):
    dropped: list[int] = []

    def drop_once_the_upload_is_under_way():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for tmp in sshd_upload_dir.glob(f".{FILE}.*.tmp"):
                try:
                    if tmp.stat().st_size > 4 << 20:
                        dropped.append(sshd_server.kill_sessions())
                        return
                except FileNotFoundError:
                    pass
            time.sleep(0.002)

    killer = threading.Thread(target=drop_once_the_upload_is_under_way, daemon=True)
    killer.start()
    receipt = _target(sshd_server, sshd_upload_dir).deliver("epic_on_call_finder", FILE, LARGE)
    killer.join(timeout=5)

    assert dropped and dropped[0] >= 1, "the connection was never dropped: the test proves nothing"
    assert _retries_logged(caplog) == 1
    assert receipt.sha256 == LARGE_SHA256
    assert (sshd_upload_dir / FILE).read_bytes() == LARGE
    assert os.listdir(sshd_upload_dir) == [FILE]  # the dropped attempt's partial file was removed


def test_a_server_that_stays_unreachable_fails_after_the_retries(sshd_server, sshd_upload_dir, caplog):
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    target = _target(sshd_server, sshd_upload_dir, port=closed_port, retries=2, backoff=0.01)
    with pytest.raises(DeliveryError) as failure:
        target.deliver("epic_on_call_finder", FILE, SMALL)
    assert str(failure.value).startswith(
        f"sftp://lbsftp@127.0.0.1:{closed_port}/{sshd_upload_dir}: upload of {FILE} failed after 3 attempts: "
    )
    assert _retries_logged(caplog) == 2


def test_a_wrong_password_is_refused_at_once(sshd_server, sshd_upload_dir, caplog, monkeypatch):
    wrong = "Wr0ng-" + sshd_server.password[::-1]
    monkeypatch.setenv(PASSWORD_ENV, wrong)
    message, took = _refused(_target(sshd_server, sshd_upload_dir, backoff=5.0), caplog)
    assert message == (
        f"sftp://lbsftp@127.0.0.1:{sshd_server.port}/{sshd_upload_dir}: "
        f"login refused for user lbsftp (password from {PASSWORD_ENV})"
    )
    assert took < 4
    assert wrong not in caplog.text and sshd_server.password not in message
    assert any(r.name.startswith("paramiko") for r in caplog.records)  # its DEBUG lines were checked too


def test_a_key_not_in_authorized_keys_is_refused_at_once(sshd_server, sshd_upload_dir, caplog, monkeypatch):
    monkeypatch.setenv(KEY_ENV, sshd_server.stranger_key_path)
    message, took = _refused(_target(sshd_server, sshd_upload_dir, auth="key", backoff=5.0), caplog)
    assert message.endswith(f": login refused for user lbsftp (key from {KEY_ENV})")
    assert took < 4
    assert _key_body(sshd_server.stranger_key_path) not in message + caplog.text


@pytest.mark.parametrize("auth, variable", [("password", PASSWORD_ENV), ("key", KEY_ENV)])
def test_a_missing_environment_variable_is_named(
    sshd_server, sshd_upload_dir, caplog, monkeypatch, auth, variable
):
    monkeypatch.delenv(variable)
    message, _ = _refused(_target(sshd_server, sshd_upload_dir, auth=auth), caplog)
    assert f"environment variable {variable} " in message and "is not set" in message


def test_a_missing_key_file_is_named_with_its_variable(sshd_server, sshd_upload_dir, caplog, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "/nonexistent/id_ed25519")
    message, _ = _refused(_target(sshd_server, sshd_upload_dir, auth="key"), caplog)
    assert message.endswith(f": private key /nonexistent/id_ed25519 (from {KEY_ENV}): no such file")


def test_a_missing_remote_folder_fails_at_once(sshd_server, sshd_upload_dir, caplog):
    message, _ = _refused(_target(sshd_server, sshd_upload_dir / "absent"), caplog)
    assert f"cannot write {FILE}" in message


# A delivery in its own process, as a run worker makes it; killed mid-upload by the test.
UPLOADER = textwrap.dedent(
    """
    import json, sys
    from lb_pipelines.delivery.settings import SftpDelivery
    from lb_pipelines.delivery.sftp import SftpTarget
    SftpTarget(SftpDelivery(**json.loads(sys.argv[1]))).deliver("epic_on_call_finder", sys.argv[2], bytes(range(256)) * (40 << 12))
    """
)


def test_a_killed_upload_leaves_a_temporary_file_that_the_next_delivery_removes(sshd_server, sshd_upload_dir, caplog):
    block = sshd_server.delivery(sshd_upload_dir, password_env=PASSWORD_ENV, timeout_s=10, retries=0)
    uploader = subprocess.Popen([sys.executable, "-c", UPLOADER, json.dumps(block), "epic_killed.csv"])
    ours = f".epic_killed.csv.lb-{sftp.host_tag()}-{uploader.pid}-"
    leftover = None
    deadline = time.monotonic() + 30
    while leftover is None and uploader.poll() is None and time.monotonic() < deadline:
        for path in sshd_upload_dir.glob(f"{ours}*.tmp"):
            try:
                if path.stat().st_size > 1 << 20:
                    leftover = path
            except FileNotFoundError:
                pass
        time.sleep(0.002)
    uploader.send_signal(signal.SIGKILL)
    uploader.wait()
    assert uploader.returncode == -signal.SIGKILL and leftover is not None, "never killed mid-upload"
    assert leftover.exists() and not (sshd_upload_dir / "epic_killed.csv").exists()

    other_host = "0" * 8 if sftp.host_tag() != "0" * 8 else "1" * 8
    hour_ago = time.time() - sftp.STALE_AFTER_S - 60
    stale = {  # besides the killed upload's: of ours, from anywhere, untouched for over an hour
        f".{FILE}.lb-{other_host}-4242-0a1b2c3d.tmp": hour_ago,
        f".{FILE}.0a1b2c3d4e5f.tmp": hour_ago,  # as earlier versions named them
    }
    kept = {
        f".{FILE}.lb-{other_host}-4242-1a2b3c4d.tmp": None,  # another machine's upload in progress
        f".{FILE}.1a2b3c4d5e6f.tmp": None,
        f".{FILE}.lb-{sftp.host_tag()}-{os.getpid()}-2a3b4c5d.tmp": None,  # this machine, a live pid
        ".notes.tmp": hour_ago,  # not our pattern, however old
        f".{FILE}.partial": hour_ago,
        "vendor_file.csv": hour_ago,
    }
    for name, mtime in {**stale, **kept}.items():
        (sshd_upload_dir / name).write_bytes(b"left")
        if mtime is not None:
            os.utime(sshd_upload_dir / name, (mtime, mtime))

    _target(sshd_server, sshd_upload_dir).deliver("epic_on_call_finder", FILE, SMALL)

    assert sorted(os.listdir(sshd_upload_dir)) == sorted([FILE, *kept])
    removed = [r.getMessage() for r in caplog.records if r.name == LOGGER and "leftover" in r.getMessage()]
    assert removed == [f"{_target(sshd_server, sshd_upload_dir).description}: "
                       "removed 3 leftover temporary file(s) of killed uploads"]
