"""The sign-in layer's test world: a real OpenID Connect provider (oidc-provider-mock, Authlib's
server) and the real Dagster webserver application behind the layer, both on loopback, started
and stopped by the tests."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
import uvicorn
from oidc_provider_mock import run_server_in_thread

from lb_pipelines.ui.layer import SignInLayer
from lb_pipelines.ui.server import dagster_app
from lb_pipelines.ui.settings import UiSettings

ROLES = {"LB Viewers": "viewer", "LB Operators": "operator", "LB Admins": "admin"}
CLIENT_ID, CLIENT_SECRET = "lb-pipelines-ui", "ui-client-s3cret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app, port: int) -> Iterator[str]:
    """An ASGI app on 127.0.0.1:port in a thread (uvicorn), until the block ends."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def oidc_settings(issuer: str, base_url: str, audit_db: Path, **overrides) -> UiSettings:
    values = dict(
        sign_in="oidc", base_url=base_url, session_secret="s" * 40, session_minutes=60, role_claim="groups",
        role_of_group=ROLES, audit_db=audit_db, oidc_issuer=issuer, oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    return UiSettings(**(values | overrides))


@dataclass
class World:
    ui: str  # the layer's URL
    idp: str  # the provider's URL
    layer: SignInLayer

    def add_user(self, sub: str, groups: list[str]) -> None:
        """The provider's user, with the claims the ID token will carry."""
        answer = requests.put(f"{self.idp}/users/{sub}", json={
            "email": sub, "preferred_username": sub.split("@")[0], "groups": groups}, timeout=10)
        answer.raise_for_status()

    def start_sign_in(self, browser: requests.Session) -> str:
        """Up to the provider's sign-in page; its URL (the authorization request)."""
        page = browser.get(f"{self.ui}/runs", headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200 and page.url.startswith(self.idp), page.url
        return page.url

    def finish_sign_in(self, browser: requests.Session, authorize_url: str, sub: str) -> requests.Response:
        """Sign in at the provider's page as `sub`; the browser follows the redirects back."""
        return browser.post(authorize_url, data={"sub": sub}, headers={"Accept": "text/html"}, timeout=30)

    def sign_in(self, sub: str) -> requests.Session:
        browser = requests.Session()
        self.finish_sign_in(browser, self.start_sign_in(browser), sub)
        return browser


LAUNCH_RUN = """mutation LaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) { __typename }
}"""


def launch_run(browser: requests.Session, ui: str, job: str = "no_such_job") -> requests.Response:
    """A launchRun mutation as the UI's Launchpad sends it (for a job that does not exist: Dagster
    answers, and nothing runs)."""
    variables = {"executionParams": {"selector": {
        "repositoryLocationName": "lb_pipelines", "repositoryName": "__repository__", "jobName": job}, "mode": "default"}}
    return browser.post(f"{ui}/graphql", json={"operationName": "LaunchRun", "query": LAUNCH_RUN,
                                               "variables": variables}, timeout=60)


@contextlib.contextmanager
def oidc_world(root: Path) -> Iterator[World]:
    """The provider and the real Dagster UI behind the layer, on an empty configuration (a small
    workspace) in `root`, with telemetry off (no calls out of the machine)."""
    from conftest import WRITABLE_PATHS, _point_writable_paths_into

    with pytest.MonkeyPatch.context() as env:
        _point_writable_paths_into(root, env.setenv)  # the suite's one layout, DAGSTER_HOME included
        (root / WRITABLE_PATHS["DAGSTER_HOME"] / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env.setenv("LB_CONFIG_DIR", str(root / "config"))
        with run_server_in_thread(require_nonce=True) as idp_server, dagster_app() as inner:
            idp = f"http://127.0.0.1:{idp_server.server_port}"
            port = free_port()
            layer = SignInLayer(oidc_settings(idp, f"http://127.0.0.1:{port}", root / "audit.sqlite"), inner)
            with serve(layer, port) as ui:
                yield World(ui, idp, layer)
