"""What every file export shares: rendering, choosing the target, delivering, and showing it.

An integration module writes its file with `csv_file` from a query over its dbt export model
(the rules stay in SQL, where the data is) and finds its problems with `problems_from`; this
module delivers the file through the ledger with its problems and builds the materialization's
metadata, the same way for every vendor.

Metadata is kept in Dagster's run storage for good and shown to anyone who reaches the UI, so
it names people by their Lightning Bolt id: each export declares its personal columns (names,
contact, free text), and the preview masks them. Those values live in the warehouse and the
files sent, nowhere else.
"""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Optional, Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings as paths
from lb_pipelines.delivery.ledger import (
    LedgerEntry,
    OutgoingFile,
    Problem,
    StateSnapshot,
    deliver_and_record,
    ensure_delivery_tables,
)
from lb_pipelines.delivery.settings import DryRunDelivery, OutboxDelivery, SftpDelivery
from lb_pipelines.delivery.targets import DeliveryError, DryRunTarget, OutboxTarget, Target
from lb_pipelines.integrations.config_files import ConfigError, IntegrationConfig
from lb_pipelines.warehouse.sql import csv_file, identifier, insertion_order_kept, string_literal  # noqa: F401

if TYPE_CHECKING:
    from lb_pipelines.integrations.declaration import Integration

# A slot is in an integration's window when its date lies between today − $days_back and
# today + $days_forward, both included, today being the date of $now in the slot's department
# zone (`time_zone`). No zone is more than a day from UTC, so the first test (cheap, and able to
# skip whole blocks of rows) only narrows the rows the exact per-zone test has to look at.
IN_WINDOW = """slot_date BETWEEN CAST(timezone('UTC', $now) AS DATE) - ($days_back + 1)
                    AND CAST(timezone('UTC', $now) AS DATE) + ($days_forward + 1)
  AND slot_date BETWEEN CAST(timezone(time_zone, $now) AS DATE) - $days_back
                    AND CAST(timezone(time_zone, $now) AS DATE) + $days_forward"""

PREVIEW_ROWS = 10
MASK = "•••"  # a personal cell that has a value, in a preview; an empty cell stays empty
PROBLEMS_CHECK = "no_problem_rows"


def target_for(delivery: Any, outbox_dir: Optional[Path] = None) -> Target:
    """The delivery target an integration's `delivery:` settings name."""
    outbox = outbox_dir or paths.outbox_dir()
    if isinstance(delivery, OutboxDelivery):
        return OutboxTarget(outbox)
    if isinstance(delivery, DryRunDelivery):
        return DryRunTarget(outbox)
    if isinstance(delivery, SftpDelivery):
        from lb_pipelines.delivery.sftp import SftpTarget

        return SftpTarget(delivery)
    raise ValueError(f"delivery type {delivery.type!r} cannot carry a file")


def unused_file_name(conn: Any, integration: str, target: str, file_name: str) -> str:
    """`file_name`, or `<stem>_2.<ext>`, `_3`, ... when the ledger shows that name already sent there."""
    ensure_delivery_tables(conn)
    taken = {
        row[0]
        for row in conn.execute(
            "SELECT file_name FROM delivery.ledger WHERE integration = ? AND target = ? "
            "AND status IN ('delivered', 'dry_run')",
            [integration, target],
        ).fetchall()
    }
    stem, dot, ext = file_name.rpartition(".")
    candidate, n = file_name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}_{n}{dot}{ext}"
    return candidate


def text_cells(columns: Sequence[str]) -> str:
    """The SELECT list of a file's columns as text, an empty string written as an empty cell."""
    return ", ".join(f"nullif(CAST({identifier(c)} AS VARCHAR), '') AS {identifier(c)}" for c in columns)


def csv_preview(content: bytes, limit: int = PREVIEW_ROWS) -> tuple[list[str], list[list[str]]]:
    """(header, first rows) of a CSV file's bytes, read only as far as the preview needs."""
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(content), encoding="utf-8", newline=""))
    header = next(reader, [])
    return header, list(itertools.islice(reader, limit))


def preview(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    total: Optional[int] = None,
    personal: Collection[str] = (),
) -> dg.MarkdownMetadataValue:
    """The first rows as a Markdown table, each `personal` column's values shown as MASK."""
    masked = [c in personal for c in columns]

    def cell(v: Any, mask: bool) -> str:
        if v is None or v == "":
            return ""  # still shown: a missing contact is worth seeing
        return MASK if mask else str(v).replace("|", "\\|")

    total = len(rows) if total is None else total
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v, m) for v, m in zip(row, masked)) + " |" for row in rows[:PREVIEW_ROWS]]
    if total > PREVIEW_ROWS:
        lines.append(f"\n… and {total - PREVIEW_ROWS} more rows")
    if any(masked):
        names = ", ".join(c for c, m in zip(columns, masked) if m)
        lines.append(f"\nMasked ({MASK}): {names}. Their values are in the file and the warehouse.")
    return dg.MetadataValue.md("\n".join(lines))


@dataclass
class ExportFile:
    """One file an integration wants to send, with what it found on the way."""

    integration: str
    scope: str  # what deltas and the ledger are kept per: "full", a pay period, ...
    file_name: str
    content: bytes
    rows: int
    # The file's columns that hold a person's name or contact, or free text that may: masked in
    # the preview. Every export says (an empty set too), so none can forget.
    personal_columns: frozenset[str]
    problems: list[Problem] = field(default_factory=list)
    coverage_gaps: int = 0
    # A delta integration's state once this file is delivered (its rows as Parquet).
    new_state: Optional[StateSnapshot] = None
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    # (columns, rows) shown as the preview; by default the first rows of `content` read as CSV.
    preview_table: Optional[tuple[Sequence[str], Sequence[Sequence[Any]]]] = None
    # Further files of the same delivery, sent after this one (the backup's workbook).
    also: list[OutgoingFile] = field(default_factory=list)


def send_export(connect: Any, target: Target, export: ExportFile, run_id: str) -> LedgerEntry:
    """Deliver the file through the ledger, with its problems (a DeliveryError if it failed)."""
    if export.new_state is not None:
        # A delta file must never replace one delivered before under the same name (two runs
        # in one minute): its changes would be lost. Full files replace each other safely.
        with connect() as conn:
            export.file_name = unused_file_name(conn, export.integration, target.description, export.file_name)
    return deliver_and_record(
        connect,
        target,
        integration=export.integration,
        scope=export.scope,
        file_name=export.file_name,
        content=export.content,
        rows=export.rows,
        run_id=run_id,
        new_state=export.new_state,
        problems=export.problems,
        also=export.also,
    )


def deliver_export(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, delivery: Any, export: ExportFile
) -> dg.MaterializeResult:
    """Deliver the file through the ledger with its problems, and describe it all on the asset."""
    target = target_for(delivery)
    if export.problems:
        shown = "; ".join(f"{p.record}: {p.reason}" for p in export.problems[:5])
        more = f" (and {len(export.problems) - 5} more)" if len(export.problems) > 5 else ""
        context.log.warning(
            f"{export.integration}: {len(export.problems)} rows skipped, see delivery.problems: {shown}{more}"
        )
    row_count = export.rows
    try:
        entry = send_export(warehouse.get_connection, target, export, context.run.run_id)
    except DeliveryError as exc:
        # Recorded as a failed ledger row; nothing advanced, so the next run sends it again.
        raise dg.Failure(
            description=f"{export.integration}: {export.file_name} was not delivered: {exc}",
            metadata={"file": export.file_name, "target": target.description, "rows": row_count},
        ) from exc
    receipt = entry.receipt
    metadata = {
        "rows": row_count,
        "problems": len(export.problems),
        "coverage_gaps": export.coverage_gaps,
        "file": export.file_name,
        "delivered_to": dg.MetadataValue.path(receipt.location),
        **({"also_delivered": ", ".join(r.location for r in entry.receipts[1:])} if export.also else {}),
        "target": target.description,
        "status": entry.status,
        "sha256": receipt.sha256,
        "bytes": receipt.bytes,
        "preview": (
            preview(*export.preview_table, personal=export.personal_columns)
            if export.preview_table
            else preview(*csv_preview(export.content), total=row_count, personal=export.personal_columns)
        ),
        **export.extra_metadata,
    }
    if export.problems:
        metadata["problem_rows"] = problem_rows(export.problems)
    return with_problems_check(metadata, export.problems)


def problem_rows(problems: Sequence[Problem]) -> dg.MarkdownMetadataValue:
    return preview(["kind", "record", "field", "reason"], [(p.kind, p.record, p.field, p.reason) for p in problems])


def with_problems_check(metadata: dict[str, Any], problems: Sequence[Problem]) -> dg.MaterializeResult:
    """The materialization, with its `no_problem_rows` check (a warning when rows were skipped)."""
    check = dg.AssetCheckResult(
        check_name=PROBLEMS_CHECK,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"problems": len(problems), "see": "delivery.problems"},
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def enabled_config(integration: "Integration") -> Optional[IntegrationConfig]:
    """The integration's configuration, or None when it is off. A refused configuration fails the
    export with the file, the key and the reason: nothing is sent on settings nobody accepted."""
    try:
        config = integration.load()
    except ConfigError as exc:
        raise dg.Failure(
            description=f"{integration.slug}: configuration refused, nothing sent until it is fixed:\n{exc}"
        ) from None
    return config if config is not None and config.enabled else None


def not_enabled(integration: str, why: str = "off: no settings folder, or enabled: false") -> dg.MaterializeResult:
    """The result of an export whose integration is off: nothing sent, nothing wrong."""
    return dg.MaterializeResult(
        metadata={"enabled": False, "why": why},
        check_results=[dg.AssetCheckResult(check_name=PROBLEMS_CHECK, passed=True, metadata={"skipped": why})],
    )


def problems_from(conn: Any, sql: str, params: Any = None) -> list[Problem]:
    """The problems a query finds: its rows are (kind, record, field, reason)."""
    return [Problem(*row) for row in conn.execute(sql, params).fetchall()]


def person_problems_sql(rows: str, record: str, vendor_id: str, order_by: str) -> str:
    """The problems among a person export's rows (`rows` has file_outcome, problem_reason and
    personnel_id): a person who cannot be exported (unknown, inactive) and a person without the
    vendor's id, the field the settings name ($id_field). `record` names the row in SQL
    ("'slot ' || slot_id"); `vendor_id` says what the id is to the vendor ("the Epic SER id")."""
    return f"""
SELECT
    CASE file_outcome WHEN 'problem' THEN 'person_not_exportable' ELSE file_outcome END AS kind,
    {record} AS record,
    CASE file_outcome WHEN 'problem' THEN 'personnel_id' ELSE $id_field END AS field,
    CASE file_outcome WHEN 'problem' THEN problem_reason
         ELSE 'person ' || personnel_id || ' has no ' || $id_field || {string_literal(f" ({vendor_id})")} END AS reason
FROM ({rows})
WHERE file_outcome IN ('problem', 'person_without_vendor_id')
ORDER BY {order_by}"""


def problems_check_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        PROBLEMS_CHECK, asset=key, description="Rows skipped for a reason (stored in delivery.problems)."
    )
