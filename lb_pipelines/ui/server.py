"""`lb-pipelines ui`: the Dagster webserver's application, in this process, behind the sign-in layer.

Without sign-in configured (LB_UI_SIGN_IN unset) it is the plain UI and refuses to listen on
anything but 127.0.0.1: an open UI can launch runs and switch schedules.
"""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import Path
from typing import Iterator

from lb_pipelines import settings as paths
from lb_pipelines.ui import settings as ui_settings
from lb_pipelines.ui.layer import SignInLayer


class RefusedToListen(ValueError):
    pass


def check_host(host: str, sign_in: str) -> None:
    if sign_in:
        return
    try:
        loopback = ipaddress.ip_address(host) == ipaddress.ip_address("127.0.0.1")
    except ValueError:
        loopback = False
    if not loopback:
        raise RefusedToListen(
            f"refusing to listen on {host}: without sign-in (LB_UI_SIGN_IN) the UI is served on 127.0.0.1 "
            "only; configure OpenID Connect or SAML first (docs/operations.md)"
        )


@contextlib.contextmanager
def dagster_app(workspace: Path | None = None) -> Iterator:
    """The webserver's ASGI application, loaded from the workspace as Dagster's own CLI does it."""
    from dagster import DagsterInstance
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster_webserver.app import create_app_from_workspace_process_context
    from dagster_webserver.version import __version__

    target = WorkspaceFileTarget(paths=[str(workspace or paths.REPO_ROOT / "workspace.yaml")])
    with DagsterInstance.get() as instance, WorkspaceProcessContext(
        instance, version=__version__, read_only=False, workspace_load_target=target
    ) as context:
        yield create_app_from_workspace_process_context(context)


def serve(host: str, port: int) -> int:
    import uvicorn

    settings = ui_settings.load()
    check_host(host, settings.sign_in)
    with dagster_app() as inner:
        app = SignInLayer(settings, inner) if settings.sign_in else inner
        how = f"sign-in {settings.sign_in}, audit {settings.audit_db}" if settings.sign_in else "no sign-in (loopback only)"
        print(f"lb-pipelines: the UI on http://{host}:{port} ({how})")
        uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
