"""Every integration, found from its folder: `lb_pipelines/integrations/<slug>/` exposing `INTEGRATION`.

A plain registry rather than Dagster components: a declaration is a typed Python object that
the rest of the project (sensors, the CLI, the digest, benchmarks, tests) reads without
building Dagster definitions, and each kind's factory turns it into assets. See docs/integrations.md.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path
from typing import Sequence

import dagster as dg

from lb_pipelines.integrations.config_files import IntegrationConfig
from lb_pipelines.integrations.declaration import INTEGRATIONS_DIR, Integration, Kind

PACKAGE = "lb_pipelines.integrations"


@functools.cache
def integrations() -> dict[str, Integration]:
    """The declarations, keyed by slug, in folder-name order."""
    found: dict[str, Integration] = {}
    for info in sorted(pkgutil.iter_modules([str(INTEGRATIONS_DIR)]), key=lambda m: m.name):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{PACKAGE}.{info.name}")
        declared = getattr(module, "INTEGRATION", None)
        if not isinstance(declared, Integration):
            raise TypeError(f"{PACKAGE}.{info.name} is an integration folder but declares no INTEGRATION")
        if declared.slug != info.name:
            raise ValueError(f"{PACKAGE}.{info.name} declares slug {declared.slug!r}; it must be the folder's name")
        found[declared.slug] = declared
    return found


def integration(slug: str) -> Integration:
    try:
        return integrations()[slug]
    except KeyError:
        raise ValueError(f"unknown integration {slug!r}; known: {', '.join(integrations())}") from None


def of_kind(kind: Kind) -> list[Integration]:
    return [i for i in integrations().values() if i.kind == kind]


def load_integration(slug: str, config_dir: Path | str | None = None) -> IntegrationConfig | None:
    """Settings and mapping of one integration, or None when its folder is absent (off)."""
    return integration(slug).load(config_dir)


@functools.cache
def _owners() -> dict[tuple[str, ...], str]:
    return {tuple(key.path): i.slug for i in integrations().values() for key in i.asset_keys}


def integration_of(asset_key: dg.AssetKey | Sequence[str]) -> str | None:
    """The integration that owns an asset (its config, export model or output), else None."""
    path = tuple(asset_key.path if isinstance(asset_key, dg.AssetKey) else asset_key)
    return _owners().get(path)


def integration_of_step(step_key: str) -> str | None:
    """The integration that owns a run's step (`<slug>__file`, `config__<slug>`)."""
    return integration_of(step_key.split("__"))
