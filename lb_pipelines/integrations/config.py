"""Integration configuration: `$LB_CONFIG_DIR/<integration>/settings.yaml` and `mapping.csv`.

A folder that is absent means the integration is off. Everything present is validated at load
by pydantic models (the common keys here, each vendor's own beside its export), and every
mistake is reported as `<file>: <key or CSV line>: <reason>` so an analyst can fix the file
without reading code. A bad mapping row is data, not a crash: it is skipped and reported as a
`MappingProblem` while the other rows load.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import re
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import duckdb
import yaml
from dagster._utils.schedules import is_valid_cron_string
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from lb_pipelines import clock
from lb_pipelines import settings as lb_settings
from lb_pipelines.delivery.settings import Delivery, OutboxDelivery

SETTINGS_FILE = "settings.yaml"
MAPPING_FILE = "mapping.csv"
CONFIG_SCHEMA = "config"
SETTINGS_TABLE = f"{CONFIG_SCHEMA}.integration_settings"
FILE_KEY = "(file)"  # the "key" of a mistake that concerns the whole file
ROW_KEY = "(row)"

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


# ---------------------------------------------------------------------------------------------
# Errors and problems


def display_path(path: Path) -> str:
    """The path as the person who runs the pipeline typed it: relative to the working folder if inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class ConfigError(ValueError):
    """A configuration file refused at load: `.file`, and `.errors` as (key, reason) pairs.

    Raise it as `ConfigError(file, key, reason)` or `ConfigError(file, [(key, reason), ...])`.
    """

    def __init__(self, file: Path | str, key: str | list[tuple[str, str]], reason: str | None = None):
        self.file = Path(file)
        self.errors: list[tuple[str, str]] = [(key, reason or "")] if isinstance(key, str) else list(key)
        super().__init__("\n".join(f"{display_path(self.file)}: {k}: {r}" for k, r in self.errors))


@dataclass(frozen=True)
class MappingProblem:
    """One skipped mapping row (or one error in it): where it is and what is wrong."""

    file: Path
    line: int  # physical line in the file; the header is line 1
    field: str
    reason: str
    assignment_id: int | None = None

    def __str__(self) -> str:
        return f"{display_path(self.file)}: line {self.line}, {self.field}: {self.reason}"


def invalid(kind: str, template: str, **values: Any) -> PydanticCustomError:
    """A validation error in our own words; `{name}` in `template` shows `repr(values[name])`."""
    return PydanticCustomError(f"lb_{kind}", template, {name: repr(value) for name, value in values.items()})


def _reason(error: Any, missing: str) -> str:
    """Pydantic's message, in the words of someone editing a settings file."""
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return missing
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "union_tag_invalid":
        ctx = error["ctx"]
        return f"{ctx['tag']!r} is not one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        return missing
    message = message.removeprefix("Value error, ")
    value = error.get("input")
    if kind.startswith("lb_") or kind == "value_error" or not isinstance(value, (str, int, float, bool)):
        return message  # our own messages already name the value
    return f"{message} (got {value!r})"


def _key_path(error: Any, data: Any) -> str:
    """Pydantic's location as the key path the user wrote: `window.days_back`, `alerts.to[1]`.

    Walks the input so that the union tag pydantic inserts (`delivery.sftp.host`) is dropped.
    """
    loc, node, parts = error["loc"], data, []
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            parts.append(f"[{part}]")
            node = node[part]
        elif index == len(loc) - 1 and error["type"] == "missing":
            parts.append(str(part))
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        parts.append(error["ctx"]["discriminator"].strip("'"))
    return ".".join(parts).replace(".[", "[") or FILE_KEY


# ---------------------------------------------------------------------------------------------
# The common settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowSettings(_Strict):
    """Which slots leave the system: today − days_back to today + days_forward, both included."""

    days_back: int = Field(ge=0)
    days_forward: int = Field(ge=0)


class AlertSettings(_Strict):
    """Who hears about problems and failures: one e-mail per integration run."""

    to: list[str] = Field(default_factory=list)

    @field_validator("to")
    @classmethod
    def _plausible_addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not _EMAIL.match(address):
                raise invalid("email", "{address} is not a plausible e-mail address", address=address)
        return addresses


class PayPeriodSettings(_Strict):
    """Fixed-length pay periods counted from an anchor date (the first day of any period)."""

    anchor: dt.date
    length_days: int = Field(14, ge=1, le=31)


PersonnelIdField = Literal["unique_id", "custom1", "custom2", "custom3", "custom4", "emp_id"]


class CommonSettings(_Strict):
    """The keys every integration's settings.yaml shares; each integration subclasses it with its defaults."""

    enabled: bool = True
    cadence: str  # cron, exactly as a Dagster schedule accepts it
    window: WindowSettings = WindowSettings(days_back=0, days_forward=30)
    personnel_id_field: PersonnelIdField = "unique_id"
    delivery: Delivery = OutboxDelivery()
    alerts: AlertSettings = AlertSettings()

    @field_validator("cadence")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not is_valid_cron_string(value):
            raise invalid("cron", "{value} is not a valid cron expression", value=value)
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _window_over_defaults(cls, value: Any) -> Any:
        """`window: {days_back: 2}` keeps the integration's own days_forward."""
        default = cls.model_fields["window"].default
        if isinstance(value, dict) and isinstance(default, WindowSettings):
            return default.model_dump() | value
        return value


class MappingRow(BaseModel):
    """One row of an integration's mapping.csv; each integration subclasses it with its columns."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = False  # True where the vendor allows no one-to-many
    # Kinds of error (pydantic error types) that refuse the whole file instead of skipping the row.
    REFUSED_AT_LOAD: ClassVar[frozenset[str]] = frozenset()

    assignment_id: int = Field(gt=0)
    _mapping_line: int | None = PrivateAttr(None)

    @property
    def mapping_line(self) -> int | None:
        """The physical line of mapping.csv this row came from."""
        return self._mapping_line

    @classmethod
    def columns(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def required_columns(cls) -> list[str]:
        return [name for name, info in cls.model_fields.items() if info.is_required()]


# ---------------------------------------------------------------------------------------------
# Reading the files


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice instead of silently keeping the last one.

    Dates stay text, so pydantic parses them and names the key of a date that does not exist.
    """


_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)):
            continue  # a complex key: pydantic will refuse it as an unknown key
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _integration_dir(integration: str, config_dir: Path | str | None) -> Path:
    return Path(config_dir if config_dir is not None else lb_settings.config_dir()) / integration


def _read_text(file: Path, what: str) -> str:
    if not file.is_file():
        raise ConfigError(file, FILE_KEY, what)
    try:
        return file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(file, FILE_KEY, f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _read_yaml(file: Path) -> dict[str, Any]:
    text = _read_text(
        file,
        "not found; a folder in the config directory turns the integration on, "
        f"so it needs a {SETTINGS_FILE} (remove the folder to turn the integration off)",
    )
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        key = f"line {mark.line + 1}, column {mark.column + 1}" if mark else FILE_KEY
        raise ConfigError(file, key, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        raise ConfigError(file, FILE_KEY, "is empty; it needs at least the integration's required keys")
    if not isinstance(data, dict):
        got = f"{type(data).__name__} {data!r}"
        raise ConfigError(file, FILE_KEY, f"expected a mapping of settings keys, got {got}")
    return data


def load_settings(integration: str, model: type[CommonSettings], config_dir: Path | str | None = None) -> Any:
    """`<config_dir>/<integration>/settings.yaml` as `model`, or None when the folder is absent (off)."""
    folder = _integration_dir(integration, config_dir)
    if not folder.exists():
        return None
    file = folder / SETTINGS_FILE
    data = _read_yaml(file)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [(_key_path(e, data), _reason(e, "required key is missing")) for e in exc.errors()]
        raise ConfigError(file, errors) from None


@dataclass
class MappingResult:
    rows: list[Any]  # instances of the integration's MappingRow subclass, in file order
    problems: list[MappingProblem] = field(default_factory=list)
    file: Path | None = None


def _check_header(file: Path, header: list[str], row_model: type[MappingRow]) -> None:
    known, errors = row_model.columns(), []
    for index, name in enumerate(header):
        if name in header[:index]:
            errors.append(("header", f"column {name!r} appears twice"))
        elif name not in known:
            errors.append(("header", f"unknown column {name!r}; the columns are {', '.join(known)}"))
    for name in row_model.required_columns():
        if name not in header:
            errors.append(("header", f"required column {name!r} is missing"))
    if errors:
        raise ConfigError(file, errors)


def _duplicate(row: MappingRow, kept: dict[Any, int]) -> str | None:
    """Why `row` repeats an earlier one (and remember it when it does not)."""
    one_per_assignment = row.ONE_ROW_PER_ASSIGNMENT
    key = row.assignment_id if one_per_assignment else json.dumps(row.model_dump(mode="json"), sort_keys=True)
    if key in kept:
        if one_per_assignment:
            return (
                f"assignment {row.assignment_id} is already mapped on line {kept[key]}; "
                "this integration takes one row per assignment"
            )
        return f"repeats line {kept[key]} exactly"
    kept[key] = row.mapping_line
    return None


def load_mapping(
    integration: str,
    row_model: type[MappingRow],
    settings: CommonSettings,
    config_dir: Path | str | None = None,
) -> MappingResult:
    """`<config_dir>/<integration>/mapping.csv`: good rows, and a problem for each bad one.

    A header with a missing required or unknown column refuses the file, and so does a row error
    of a kind the row model lists in REFUSED_AT_LOAD (all such errors are named together).
    """
    file = _integration_dir(integration, config_dir) / MAPPING_FILE
    text = _read_text(
        file, f"not found; this integration sends only mapped assignments, so it needs a {MAPPING_FILE} "
        f"with the columns {', '.join(row_model.columns())}"
    )
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[MappingRow] = []
    problems: list[MappingProblem] = []
    refusals: list[tuple[str, str]] = []
    kept: dict[Any, int] = {}
    last_line = 0
    try:
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, or a spreadsheet's row of empty cells
            if header is None:
                header = [cell.strip() for cell in cells]
                _check_header(file, header, row_model)
                continue
            if len(cells) > len(header):
                reason = f"{len(cells)} cells, but the header has {len(header)} columns"
                problems.append(MappingProblem(file, line, ROW_KEY, reason))
                continue
            values = {name: cell.strip() for name, cell in zip(header, cells) if cell.strip()}
            try:
                row = row_model.model_validate(values, context={"settings": settings})
            except ValidationError as exc:
                for error in exc.errors():
                    column = str(error["loc"][0]) if error["loc"] else ROW_KEY
                    reason = _reason(error, "required value is missing")
                    if error["type"] in row_model.REFUSED_AT_LOAD:
                        refusals.append((f"line {line}, {column}", reason))
                    else:
                        assignment_id = _int_or_none(values.get("assignment_id"))
                        problems.append(MappingProblem(file, line, column, reason, assignment_id))
                continue
            row._mapping_line = line
            if reason := _duplicate(row, kept):
                problems.append(MappingProblem(file, line, "assignment_id", reason, row.assignment_id))
                continue
            rows.append(row)
    except csv.Error as exc:
        raise ConfigError(file, f"line {reader.line_num}", f"not valid CSV: {exc}") from None
    if header is None:
        columns = ", ".join(row_model.columns())
        raise ConfigError(file, "header", f"the file is empty; the first line names the columns: {columns}")
    if refusals:
        raise ConfigError(file, refusals)
    return MappingResult(rows=rows, problems=problems, file=file)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------
# One integration: which models, and loading both files


@dataclass(frozen=True)
class IntegrationSpec:
    slug: str
    settings_model: type[CommonSettings]
    mapping_row_model: type[MappingRow] | None = None  # None: the integration has no mapping.csv


@functools.cache
def integrations() -> dict[str, IntegrationSpec]:
    """The registry, keyed by slug. Imported here, late, because each settings module imports this one."""
    from lb_pipelines.integrations.edw.settings import EdwSettings
    from lb_pipelines.integrations.epic_on_call_finder.settings import (
        EpicOnCallFinderMappingRow,
        EpicOnCallFinderSettings,
    )
    from lb_pipelines.integrations.kronos_wfd.settings import KronosWfdMappingRow, KronosWfdSettings

    specs = [
        IntegrationSpec("epic_on_call_finder", EpicOnCallFinderSettings, EpicOnCallFinderMappingRow),
        IntegrationSpec("kronos_wfd", KronosWfdSettings, KronosWfdMappingRow),
        IntegrationSpec("edw", EdwSettings),
    ]
    return {spec.slug: spec for spec in specs}


def integration_spec(integration: str) -> IntegrationSpec:
    try:
        return integrations()[integration]
    except KeyError:
        raise ValueError(f"unknown integration {integration!r}; known: {', '.join(integrations())}") from None


@dataclass(frozen=True)
class IntegrationConfig:
    integration: str
    settings: Any  # the integration's CommonSettings subclass
    settings_file: Path
    mapping: MappingResult | None = None  # None when the integration has no mapping

    @property
    def enabled(self) -> bool:
        return self.settings.enabled


def load_integration(integration: str, config_dir: Path | str | None = None) -> IntegrationConfig | None:
    """Settings and mapping of one integration, or None when its folder is absent (off)."""
    spec = integration_spec(integration)
    loaded = load_settings(integration, spec.settings_model, config_dir)
    if loaded is None:
        return None
    mapping = None
    if spec.mapping_row_model is not None:
        mapping = load_mapping(integration, spec.mapping_row_model, loaded, config_dir)
    return IntegrationConfig(
        integration=integration,
        settings=loaded,
        settings_file=_integration_dir(integration, config_dir) / SETTINGS_FILE,
        mapping=mapping,
    )


# ---------------------------------------------------------------------------------------------
# Into the warehouse, where dbt models join the mapping to the slots


def _duckdb_type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _duckdb_type(args[0])
    if origin in (Union, types.UnionType):
        return _duckdb_type(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return "VARCHAR"
    if origin is list:
        return f"{_duckdb_type(args[0])}[]"
    return {int: "BIGINT", str: "VARCHAR", bool: "BOOLEAN", float: "DOUBLE", dt.date: "DATE"}[annotation]


def mapping_table(integration: str) -> str:
    return f"{CONFIG_SCHEMA}.{integration}__mapping"


def _known_assignments(conn: duckdb.DuckDBPyConnection) -> set[int] | None:
    present = conn.execute(
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema = 'raw' AND table_name = 'assignments'"
    ).fetchall()[0][0]
    if not present:
        return None
    return {row[0] for row in conn.execute("SELECT id FROM raw.assignments").fetchall()}


def _mapping_columns(row_model: type[MappingRow]) -> str:
    columns = [f'"{name}" {_duckdb_type(info.annotation)}' for name, info in row_model.model_fields.items()]
    return ", ".join([*columns, "mapping_line INTEGER"])


def ensure_config_tables(conn: duckdb.DuckDBPyConnection, integration: str) -> None:
    """The settings table and the integration's mapping table, created empty if absent, so dbt
    models can always select from them; what they hold is left as it is."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {CONFIG_SCHEMA}")
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {SETTINGS_TABLE} (
            integration VARCHAR, enabled BOOLEAN, settings JSON,
            settings_file VARCHAR, loaded_at TIMESTAMPTZ)"""
    )
    row_model = integration_spec(integration).mapping_row_model
    if row_model is not None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {mapping_table(integration)} ({_mapping_columns(row_model)})")


def write_config_to_warehouse(
    conn: duckdb.DuckDBPyConnection, integration: str, config: IntegrationConfig | None
) -> list[MappingProblem]:
    """Replace `config.integration_settings`'s row and `config.<integration>__mapping` for one integration.

    Both tables exist even when the integration is off, so dbt models can always select from
    them. An integration that is off (None) or disabled leaves an empty mapping table: only
    mapped assignments leave the system. Returns the mapping's problems (bad rows, and rows
    naming an assignment that `raw.assignments` does not hold) for the caller to record.
    """
    spec = integration_spec(integration)
    row_model = spec.mapping_row_model
    active = config is not None and config.enabled and config.mapping is not None
    problems: list[MappingProblem] = list(config.mapping.problems) if active else []
    rows: list[MappingRow] = list(config.mapping.rows) if active else []

    known = _known_assignments(conn) if rows else None
    if known is not None:
        unknown = [r for r in rows if r.assignment_id not in known]
        problems += [
            MappingProblem(
                config.mapping.file, r.mapping_line, "assignment_id",
                f"assignment_id {r.assignment_id} is not in Lightning Bolt's assignments", r.assignment_id,
            )
            for r in unknown
        ]
        rows = [r for r in rows if r.assignment_id in known]

    conn.execute("BEGIN TRANSACTION")
    try:
        ensure_config_tables(conn, integration)
        conn.execute(f"DELETE FROM {SETTINGS_TABLE} WHERE integration = ?", [integration])
        if config is not None:
            conn.execute(
                f"INSERT INTO {SETTINGS_TABLE} VALUES (?, ?, ?, ?, ?)",
                [
                    integration, config.enabled, config.settings.model_dump_json(),
                    str(config.settings_file), clock.now(),
                ],
            )
        if row_model is not None:
            fields = row_model.model_fields
            table = mapping_table(integration)
            conn.execute(f"CREATE OR REPLACE TABLE {table} ({_mapping_columns(row_model)})")
            if rows:
                conn.executemany(
                    f"INSERT INTO {table} VALUES ({', '.join('?' * (len(fields) + 1))})",
                    [[*r.model_dump().values(), r.mapping_line] for r in rows],
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return problems
