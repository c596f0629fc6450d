"""Shared fixtures: an isolated environment per test, so nothing touches the repo's data/.

For the whole session every writable path variable points into a session temp folder (set
before collection, so that no import binds the repo's `data/`), and `lb_env` moves them under
each test's tmp_path. A guard checksums every file under `data/` (git-ignored ones included:
a developer's warehouse, BI copy, outbox and instance are exactly what must not change) and
fails the run, naming the files, when a test changed, added or removed one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import tiny_system

from tiny_system import write_system  # noqa: E402
pytest_plugins = ["sshd", "postgres_server", "smtp_server"]

PINNED_NOW = "2026-11-02T12:00:00-06:00"
REPO_DATA = Path(__file__).resolve().parents[1] / "data"
# Every variable naming a place the code writes, and its name inside a temp folder.
WRITABLE_PATHS = {
    "LB_WAREHOUSE": "warehouse.duckdb",
    "LB_BI_DIR": "bi",
    "LB_OUTBOX_DIR": "outbox",
    "LB_INBOUND_DIR": "inbound",
    "DAGSTER_HOME": "dagster_home",
}
_SESSION_DIR = pytest.StashKey[Path]()
_ENV_BEFORE = pytest.StashKey[dict]()
_DATA_BEFORE = pytest.StashKey[dict]()


def _point_writable_paths_into(folder: Path, setenv) -> None:
    for var, name in WRITABLE_PATHS.items():
        setenv(var, str(folder / name))
    (folder / WRITABLE_PATHS["DAGSTER_HOME"]).mkdir(exist_ok=True)


def _fingerprint(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under `folder` (a symlink by its target)."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, folder)
            try:
                if os.path.islink(path):
                    found[relative] = "symlink to " + os.readlink(path)
                else:
                    with open(path, "rb") as f:
                        found[relative] = hashlib.file_digest(f, "sha256").hexdigest()
            except FileNotFoundError:  # removed while we walked: the comparison will say so
                continue
    return found


def _changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(
        [f"added {p}" for p in after.keys() - before.keys()]
        + [f"removed {p}" for p in before.keys() - after.keys()]
        + [f"changed {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_DATA_BEFORE] = _fingerprint(REPO_DATA)
    session_dir = Path(tempfile.mkdtemp(prefix="lb-test-session-"))
    config.stash[_SESSION_DIR] = session_dir
    config.stash[_ENV_BEFORE] = {var: os.environ.get(var) for var in WRITABLE_PATHS}
    _point_writable_paths_into(session_dir, os.environ.__setitem__)


def pytest_unconfigure(config: pytest.Config) -> None:
    for var, value in config.stash.get(_ENV_BEFORE, {}).items():
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value
    session_dir = config.stash.get(_SESSION_DIR, None)
    if session_dir is not None:
        shutil.rmtree(session_dir, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def repo_data_unchanged(pytestconfig: pytest.Config):
    """Fails the run (an error at teardown) when anything under the repo's data/ changed."""
    yield
    changes = _changes(pytestconfig.stash[_DATA_BEFORE], _fingerprint(REPO_DATA))
    if changes:
        pytest.fail(f"the tests changed the repo's data/ ({REPO_DATA}): " + "; ".join(changes), pytrace=False)


@pytest.fixture
def lb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every LB_* path under tmp_path, the clock pinned, no API configured."""
    for var in ("LB_API_URL", "LB_CLIENT_ID", "LB_CLIENT_SECRET", "LB_WINDOW_DAYS_BACK", "LB_WINDOW_DAYS_FORWARD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LB_NOW", PINNED_NOW)
    _point_writable_paths_into(tmp_path, monkeypatch.setenv)
    monkeypatch.setenv("LB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LB_SOURCE_DIR", str(tmp_path / "source"))
    return tmp_path


@pytest.fixture
def tiny_source(lb_env: Path) -> Path:
    return write_system(lb_env / "source")


@pytest.fixture(scope="session")
def sample_make_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`make run` on the bundled sample and its configuration, once per session, in its own
    folder: {"root", "exit_code", "summary", "outbox", "warehouse", "dagster_home"}. Tests read
    what it left; none may change it."""
    import json

    from lb_pipelines import settings

    root = tmp_path_factory.mktemp("sample_make_run")
    manifest = json.loads((REPO_DATA / "sample" / "manifest.json").read_text())
    with pytest.MonkeyPatch.context() as env:
        for var in ("LB_API_URL", "LB_CLIENT_ID", "LB_CLIENT_SECRET", "LB_WINDOW_DAYS_BACK",
                    "LB_WINDOW_DAYS_FORWARD", "LB_SMTP_HOST", "LB_ALERTS_TO", "LB_AUTOMATION"):
            env.delenv(var, raising=False)
        _point_writable_paths_into(root, env.setenv)
        shutil.copytree(REPO_DATA / "inbound", root / WRITABLE_PATHS["LB_INBOUND_DIR"])  # the bundled drop, as cloned
        env.setenv("LB_SOURCE_DIR", str(REPO_DATA / "sample"))
        env.setenv("LB_CONFIG_DIR", str(REPO_DATA / "config"))
        env.setenv("LB_NOW", manifest["as_of"])
        from lb_pipelines import cli

        exit_code = cli.run()
        home = Path(settings.dagster_home())
    return {
        "root": root,
        "exit_code": exit_code,
        "summary": json.loads((home / "last_run.json").read_text()),
        "outbox": root / WRITABLE_PATHS["LB_OUTBOX_DIR"],
        "warehouse": root / WRITABLE_PATHS["LB_WAREHOUSE"],
        "dagster_home": home,
    }


# Files that share a session fixture as costly as `make run` run on the same worker (`--dist
# loadfile` keeps a file on one worker; these pairs are kept together too), so it runs once.
SAME_WORKER = {"tests/test_no_personal_data_in_run_storage.py": "tests/test_integration_contract.py"}


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadFileScheduling

    class SharedFixtureScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SAME_WORKER.get(scope, scope)

    return SharedFixtureScheduling(config, log)


# The longest files first (measured with --durations): with two workers taking files in order,
# a long file started last would leave the other worker idle for its whole length.
LONGEST_FIRST = (
    "test_integration_contract.py", "test_no_personal_data_in_run_storage.py", "test_operations.py",
    "test_kronos_wfd.py", "test_open_problems.py", "test_production_instance.py", "test_alerts.py",
    "test_secure_messaging.py", "test_change_log_sensor.py", "test_demographic_import.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file keeps its order
