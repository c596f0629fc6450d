"""Reading an integration's files: `$LB_CONFIG_DIR/<slug>/settings.yaml` and `mapping.csv`.

A folder that is absent means the integration is off. Everything present is validated at load
by the integration's pydantic models, and every mistake is reported as
`<file>: <key or CSV line>: <reason>` so an analyst can fix the file without reading code. A
bad mapping row is data, not a crash: it is skipped and reported as a `MappingProblem` while
the other rows load.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import ValidationError

from lb_pipelines import settings as lb_settings
from lb_pipelines.integrations.settings_base import CommonSettings, MappingRow

SETTINGS_FILE = "settings.yaml"
MAPPING_FILE = "mapping.csv"
FILE_KEY = "(file)"  # the "key" of a mistake that concerns the whole file
ROW_KEY = "(row)"

S = TypeVar("S", bound=CommonSettings)
R = TypeVar("R", bound=MappingRow)


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


def load_settings(integration: str, model: type[S], config_dir: Path | str | None = None) -> S | None:
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
class MappingResult(Generic[R]):
    rows: list[R]  # in file order
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
    row_model: type[R],
    settings: CommonSettings,
    config_dir: Path | str | None = None,
) -> MappingResult[R]:
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


@dataclass(frozen=True)
class IntegrationConfig(Generic[S, R]):
    integration: str
    settings: S
    settings_file: Path
    mapping: MappingResult[R] | None = None  # None when the integration has no mapping

    @property
    def enabled(self) -> bool:
        return self.settings.enabled


def read_config(
    integration: str,
    settings_model: type[S],
    mapping_row_model: type[R] | None,
    config_dir: Path | str | None = None,
) -> IntegrationConfig[S, R] | None:
    """Settings and mapping of one integration, or None when its folder is absent (off)."""
    loaded = load_settings(integration, settings_model, config_dir)
    if loaded is None:
        return None
    mapping = None
    if mapping_row_model is not None:
        mapping = load_mapping(integration, mapping_row_model, loaded, config_dir)
    return IntegrationConfig(
        integration=integration,
        settings=loaded,
        settings_file=_integration_dir(integration, config_dir) / SETTINGS_FILE,
        mapping=mapping,
    )
