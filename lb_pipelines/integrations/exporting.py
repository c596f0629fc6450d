"""What every file export shares: rendering, choosing the target, delivering, and showing it.

An integration module supplies its rows (from its dbt export model) and its layout; this
module turns them into a file, delivers it through the ledger, stores the problems and builds
the materialization's metadata, the same way for every vendor.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings as paths
from lb_pipelines.delivery.ledger import (
    LedgerEntry,
    Problem,
    StateRow,
    deliver_and_record,
    ensure_delivery_tables,
    record_problems,
)
from lb_pipelines.delivery.settings import DryRunDelivery, OutboxDelivery, SftpDelivery
from lb_pipelines.delivery.targets import DeliveryError, DryRunTarget, OutboxTarget, Target

PREVIEW_ROWS = 10
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


def render_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """RFC 4180 CSV (CRLF line ends, quoting only where needed), UTF-8; None is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def preview(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> dg.MarkdownMetadataValue:
    def cell(v: Any) -> str:
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:PREVIEW_ROWS]]
    if len(rows) > PREVIEW_ROWS:
        lines.append(f"\n… and {len(rows) - PREVIEW_ROWS} more rows")
    return dg.MetadataValue.md("\n".join(lines))


@dataclass
class ExportFile:
    """One file an integration wants to send, with what it found on the way."""

    integration: str
    scope: str  # what deltas and the ledger are kept per: "full", a pay period, ...
    file_name: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    problems: list[Problem] = field(default_factory=list)
    coverage_gaps: int = 0
    new_state: Optional[list[StateRow]] = None  # for delta integrations
    extra_metadata: dict[str, Any] = field(default_factory=dict)
    # A file that is not one CSV (the EDW zip): its bytes and row count; `columns`/`rows`
    # are then only the preview.
    content: Optional[bytes] = None
    row_count: Optional[int] = None


def deliver_export(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, delivery: Any, export: ExportFile
) -> dg.MaterializeResult:
    """Store the problems, deliver the file through the ledger, and describe it all on the asset."""
    target = target_for(delivery)
    with warehouse.get_connection() as conn:
        record_problems(conn, export.integration, export.scope, context.run.run_id, export.problems)
        if export.new_state is not None:
            # A delta file must never replace one delivered before under the same name (two runs
            # in one minute): its changes would be lost. Full files replace each other safely.
            export.file_name = unused_file_name(conn, export.integration, target.description, export.file_name)
    if export.problems:
        shown = "; ".join(f"{p.record}: {p.reason}" for p in export.problems[:5])
        more = f" (and {len(export.problems) - 5} more)" if len(export.problems) > 5 else ""
        context.log.warning(
            f"{export.integration}: {len(export.problems)} rows skipped, see delivery.problems: {shown}{more}"
        )
    content = export.content if export.content is not None else render_csv(export.columns, export.rows)
    row_count = export.row_count if export.row_count is not None else len(export.rows)
    try:
        entry: LedgerEntry = deliver_and_record(
            warehouse.get_connection,
            target,
            integration=export.integration,
            scope=export.scope,
            file_name=export.file_name,
            content=content,
            rows=row_count,
            run_id=context.run.run_id,
            new_state=export.new_state,
        )
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
        "target": target.description,
        "status": entry.status,
        "sha256": receipt.sha256,
        "bytes": receipt.bytes,
        "preview": preview(export.columns, export.rows),
        **export.extra_metadata,
    }
    if export.problems:
        metadata["problem_rows"] = preview(
            ["kind", "record", "field", "reason"],
            [(p.kind, p.record, p.field, p.reason) for p in export.problems],
        )
    check = dg.AssetCheckResult(
        check_name=PROBLEMS_CHECK,
        passed=not export.problems,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"problems": len(export.problems), "see": "delivery.problems"},
    )
    return dg.MaterializeResult(metadata=metadata, check_results=[check])


def not_enabled(integration: str, why: str = "off: no settings folder, or enabled: false") -> dg.MaterializeResult:
    """The result of an export whose integration is off: nothing sent, nothing wrong."""
    return dg.MaterializeResult(
        metadata={"enabled": False, "why": why},
        check_results=[dg.AssetCheckResult(check_name=PROBLEMS_CHECK, passed=True, metadata={"skipped": why})],
    )


def query_dicts(conn: Any, sql: str, params: Any) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def problems_check_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        PROBLEMS_CHECK, asset=key, description="Rows skipped for a reason (stored in delivery.problems)."
    )
