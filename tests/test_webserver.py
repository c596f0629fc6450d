"""The UI: dagster-webserver on loopback loads the code location, and its GraphQL API lists the
assets (grouped by integration), the change-log sensor and the cadence schedules."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lb_pipelines import settings

BIN = Path(sys.executable).parent
QUERY = """
{
  workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename
      ... on PythonError { message } } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { name
      location { name } schedules { name cronSchedule } sensors { name } } } }
  assetNodes { assetKey { path } groupName }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def webserver(lb_env):
    shutil.copyfile(settings.REPO_ROOT / "dagster.yaml", lb_env / "dagster_home" / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k != "LB_CONFIG_DIR"}  # the bundled sample configuration
    port = free_port()
    log = (lb_env / "webserver.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(settings.REPO_ROOT / "workspace.yaml")],
        cwd=settings.REPO_ROOT, env=env | {"PATH": f"{BIN}:{env['PATH']}"}, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail("the webserver did not answer within 90 s:\n" + (lb_env / "webserver.log").read_text()[-3000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def graphql(url: str) -> dict:
    deadline = time.monotonic() + 60
    while True:  # the code location loads in the background after the server answers
        data = requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=30).json()["data"]
        states = [e["locationOrLoadError"] for e in data["workspaceOrError"]["locationEntries"]]
        if all(s and s["__typename"] != "PythonError" for s in states) and data["assetNodes"]:
            return data
        if any(s and s["__typename"] == "PythonError" for s in states) or time.monotonic() > deadline:
            pytest.fail(f"the code location did not load: {states}")
        time.sleep(0.5)


def test_ui_lists_assets_by_integration_the_sensor_and_schedules(webserver):
    data = graphql(webserver)
    [entry] = data["workspaceOrError"]["locationEntries"]
    assert (entry["name"], entry["locationOrLoadError"]["__typename"]) == ("lb_pipelines", "RepositoryLocation")
    [repository] = data["repositoriesOrError"]["nodes"]
    assert {s["name"] for s in repository["sensors"]} >= {"change_log_sensor"}
    schedules = {s["name"]: s["cronSchedule"] for s in repository["schedules"]}
    # the bundled sample configuration turns every integration on (data/config/*/settings.yaml)
    from lb_pipelines.integrations.registry import integrations

    assert set(schedules) == {f"{slug}_on_cadence" for slug in integrations()}
    assert schedules["epic_on_call_finder_on_cadence"] == "*/5 * * * *"
    groups = {"/".join(a["assetKey"]["path"]): a["groupName"] for a in data["assetNodes"]}
    assert groups["raw/slots"] == "lightning_bolt_raw"
    assert groups["epic_on_call_finder/file"] == groups["config/epic_on_call_finder"] == "epic_on_call_finder"
    assert groups["exports/export_epic_on_call_finder"] == "epic_on_call_finder"
    assert groups["kronos_wfd/file"] == groups["exports/export_kronos_wfd"] == "kronos_wfd"
    assert groups["edw/file"] == "edw"
    assert groups["marts/fct_shifts"] == "warehouse_marts"
