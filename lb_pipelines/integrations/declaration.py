"""What an integration says about itself: one object in its folder, read by everything else.

`lb_pipelines/integrations/<slug>/__init__.py` exposes `INTEGRATION`, an instance of one kind
below. Definitions, jobs, schedules, the change-log sensor, `make run`, the alert digest, the
benchmarks and the tests all find integrations through these declarations (`registry.py`),
so adding one is adding a folder: the declaration, its settings and mapping models, its dbt
export model (`export_<slug>.sql` with its `.yml`, read by dbt from the same folder), and
whatever its kind needs (for a file export: the function that renders the file).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Generic, Literal, TypeVar

import dagster as dg

from lb_pipelines.automation.pay_periods import PayPeriod
from lb_pipelines.integrations.config_files import IntegrationConfig, MappingProblem, read_config
from lb_pipelines.integrations.config_tables import ensure_config_tables, write_config_to_warehouse
from lb_pipelines.integrations.settings_base import CommonSettings, MappingRow

if TYPE_CHECKING:
    import duckdb

    from lb_pipelines.integrations.exporting import ExportFile
    from lb_pipelines.integrations.import_assets import ImportReport, ImportRun
    from lb_pipelines.integrations.pushing import DesiredState, PushAdapter

S = TypeVar("S", bound=CommonSettings)
R = TypeVar("R", bound=MappingRow)

Kind = Literal["file_export", "api_push", "inbound_import"]
PartitionedBy = Literal["pay_period"]
_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
INTEGRATIONS_DIR = Path(__file__).parent
DOCS_DIR = INTEGRATIONS_DIR.parents[1] / "docs" / "exports"
INTEGRATION_TAG = "lb/integration"  # on every asset an integration owns
KIND_TAG = "lb/kind"


@dataclass(frozen=True)
class Triggers:
    """What starts a run of the integration's job, besides a person in the UI."""

    cadence: bool = True  # a schedule at the settings' `cadence` (cron)
    change_log: bool = False  # a run on every relevant schedule change (near real time)
    inbound_file: bool = False  # a run per new inbound file (the demographic import)


@dataclass(frozen=True)
class Occasion:
    """When an integration's output is built: the pinned "now", and the pay period if partitioned."""

    now: dt.datetime
    period: PayPeriod | None = None


@dataclass(frozen=True, kw_only=True)
class Integration(Generic[S, R]):
    """What every kind declares."""

    slug: str  # the folder's name; also the config folder's, the group's and the ledger's
    title: str  # as the hospital calls it: "Epic OpTime"
    description: str  # one line, shown on the integration's main asset
    settings_model: type[S]
    mapping_row_model: type[R] | None = None  # None: no mapping.csv (the EDW zip sends everything)
    models: tuple[str, ...] = ()  # the dbt models it reads (its export model)
    raw_entities: tuple[str, ...] = ()  # raw tables it reads directly (the EDW zip)
    partitioned_by: PartitionedBy | None = None
    triggers: Triggers = Triggers()
    kind: Kind = field(init=False)

    def __post_init__(self) -> None:
        if not _SLUG.match(self.slug):
            raise ValueError(f"integration slug {self.slug!r}: lower-case letters, digits and _ only")
        if self.partitioned_by == "pay_period" and "pay_period" not in self.settings_model.model_fields:
            raise ValueError(f"{self.slug}: partitioned by pay period, so its settings need a pay_period")

    def load(self, config_dir: Path | str | None = None) -> IntegrationConfig[S, R] | None:
        """Its settings and mapping from `$LB_CONFIG_DIR/<slug>/`, or None when the folder is absent."""
        return read_config(self.slug, self.settings_model, self.mapping_row_model, config_dir)

    def write_config(self, conn: "duckdb.DuckDBPyConnection", config: IntegrationConfig | None) -> list[MappingProblem]:
        """Its settings row and mapping table in the warehouse (empty when off); the mapping's problems."""
        return write_config_to_warehouse(conn, self.slug, self.mapping_row_model, config)

    def ensure_config_tables(self, conn: "duckdb.DuckDBPyConnection") -> None:
        ensure_config_tables(conn, self.slug, self.mapping_row_model)

    @property
    def job_name(self) -> str:
        return f"{self.slug}_{'import' if self.kind == 'inbound_import' else 'export'}"

    @property
    def config_key(self) -> dg.AssetKey:
        return dg.AssetKey(["config", self.slug])

    @property
    def output_key(self) -> dg.AssetKey:
        """The asset that delivers: the file, the pushed state, the import."""
        return dg.AssetKey([self.slug, {"file_export": "file", "api_push": "pushed", "inbound_import": "imported"}[self.kind]])

    @property
    def model_keys(self) -> list[dg.AssetKey]:
        return [dg.AssetKey(["exports", model]) for model in self.models]

    @property
    def asset_keys(self) -> list[dg.AssetKey]:
        """Every asset the integration owns (its alerts go to its administrators)."""
        return [self.config_key, *self.model_keys, self.output_key]

    @property
    def docs_path(self) -> Path:
        return DOCS_DIR / f"{self.slug}.md"

    @property
    def tags(self) -> dict[str, str]:
        return {INTEGRATION_TAG: self.slug, KIND_TAG: self.kind}


BuildFile = Callable[["duckdb.DuckDBPyConnection", S, Occasion], "ExportFile"]


@dataclass(frozen=True, kw_only=True)
class FileExport(Integration[S, R]):
    """One file (or a set of files sent as one delivery) rendered from the warehouse and delivered
    through the ledger to the outbox, a dry run or SFTP."""

    build: BuildFile  # (connection, settings, occasion) → the file(s), problems and counts; reads only
    file_kinds: frozenset[str] = frozenset({"csv"})  # shown in the UI (at most three)
    kind: Kind = field(default="file_export", init=False)


BuildDesired = Callable[["duckdb.DuckDBPyConnection", S, Occasion], "DesiredState"]
MakeAdapter = Callable[[S, "DesiredState"], "PushAdapter"]


@dataclass(frozen=True, kw_only=True)
class ApiPush(Integration[S, R]):
    """What a vendor API should hold, computed from the warehouse and pushed as differences
    (creates, updates, deletes) with the pushed state, the request ledger, retries, dry run and
    shadow of `pushing.py`; the adapter owns the vendor's HTTP shape."""

    desired: BuildDesired  # (connection, settings, occasion) → the desired state; reads only
    adapter: MakeAdapter  # (settings, desired state) → the vendor's adapter (reads secrets only when sending)
    personal_preview_columns: frozenset[str] = frozenset()  # masked in the asset's preview
    kind: Kind = field(default="api_push", init=False)


ImportFile = Callable[["ImportRun"], "ImportReport"]


@dataclass(frozen=True, kw_only=True)
class InboundImport(Integration[S, R]):
    """Files another system drops (a folder or SFTP; settings key `inbound`), each applied once and
    then moved to processed/ or failed/ with its report (`import_assets.py`); the integration's
    `import_file` reads one file and applies its rows, journaling each as it goes."""

    import_file: ImportFile  # (the run: file, settings, warehouse, source) → the report
    report_columns: tuple[str, ...]  # the report CSV's columns, one row per line of the file
    kind: Kind = field(default="inbound_import", init=False)
