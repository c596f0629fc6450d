"""The body of every API push's asset: compute, push (or write what would be pushed), record, show.

The run started by the change-log sensor pushes against the pushed state (fast, nothing read);
every other run (the cadence's schedule, a person in the UI) reconciles: it reads the target
back, reports drift and restores the schedule's truth. Metadata names people by Lightning Bolt
id only; mailboxes and vendor user ids stay in the warehouse and the outbox files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings as paths
from lb_pipelines.automation import CHANGE_LOG_TRIGGER, TRIGGER_TAG
from lb_pipelines.delivery.http import CredentialsRefused
from lb_pipelines.delivery.ledger import record_push_run
from lb_pipelines.delivery.targets import Receipt, sha256_hex, write_atomically
from lb_pipelines.integrations.declaration import ApiPush, Occasion
from lb_pipelines.integrations.exporting import preview, problem_rows, with_problems_check
from lb_pipelines.integrations.pushing import PushReport, run_push

SCOPE = "window"


def _reconciles(context: dg.AssetExecutionContext) -> bool:
    return context.run.tags.get(TRIGGER_TAG) != CHANGE_LOG_TRIGGER


def push(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, integration: ApiPush, settings: Any,
    occasion: Occasion,
) -> dg.MaterializeResult:
    delivery = settings.delivery
    slug = integration.slug
    written: list[Receipt] = []

    def write_file(name: str, content: bytes) -> Path:
        path = paths.outbox_dir() / slug / name
        write_atomically(path, content)
        written.append(Receipt(delivery.type, str(path), len(content), sha256_hex(content), delivered=False))
        return path

    run_id = context.run.run_id
    with warehouse.get_connection() as conn:
        state = integration.desired(conn, settings, occasion)
        adapter = integration.adapter(settings, state)
        try:
            report = run_push(
                integration=slug, conn=conn, state=state, adapter=adapter, mode=delivery.type,
                reconcile=_reconciles(context), run_id=run_id, write_file=write_file, now=occasion.now,
                workers=delivery.workers,
            )
        except CredentialsRefused as exc:
            record_push_run(conn, integration=slug, scope=SCOPE, target=adapter.description, requests=0,
                            status="failed", error=str(exc), run_id=run_id, problems=state.problems)
            raise dg.Failure(description=f"{slug}: {exc}. Nothing was marked pushed; fix the credentials "
                             "(settings and the environment variables they name) and run again.") from None
        status = {"dry_run": "dry_run", "shadow": "shadow"}.get(report.mode, "failed" if report.failed else "delivered")
        error = f"{len(report.failed)} requests got no good answer; the next run sends them again" if report.failed else None
        record_push_run(
            conn, integration=slug, scope=SCOPE, target=adapter.description,
            requests=report.counts.get("requests_sent", 0), status=status, error=error, run_id=run_id,
            problems=report.problems, file=written[0] if written else None,
        )
    if report.problems:
        shown = "; ".join(f"{p.kind} {p.record}" for p in report.problems[:5])
        more = f" (and {len(report.problems) - 5} more)" if len(report.problems) > 5 else ""
        context.log.warning(f"{slug}: {len(report.problems)} problems, see delivery.problems: {shown}{more}")
    metadata = _metadata(integration, adapter.description, state.counts, report)
    if report.failed:
        # Recorded as failed requests: nothing advanced for them, the next run sends them again.
        raise dg.Failure(
            description=_failure_description(slug, adapter.description, report),
            metadata={k: v for k, v in metadata.items() if not isinstance(v, dg.MarkdownMetadataValue)},
        )
    return with_problems_check(metadata, report.problems)


FAILURE_LINES = 10  # problems named in a failed run's message (the alert e-mail shows it)


def _failure_description(slug: str, target: str, report: PushReport) -> str:
    """One message for the run's one alert e-mail: the requests that got no good answer first,
    then the run's other problems, each on a line (ids only), up to FAILURE_LINES."""
    ordered = sorted(report.problems, key=lambda p: p.kind != "not_delivered")
    lines = [
        f"{slug}: {len(report.failed)} requests got no good answer from {target} after their retries; "
        f"the next run sends them again. {len(report.problems)} problems in this run:"
    ]
    lines += [f"  {p.kind}: {p.record}{' (' + p.field + ')' if p.field else ''}: {p.reason}"
              for p in ordered[:FAILURE_LINES]]
    if len(ordered) > FAILURE_LINES:
        lines.append(f"  ... and {len(ordered) - FAILURE_LINES} more in delivery.problems")
    return "\n".join(lines)


def _metadata(integration: ApiPush, target: str, counts: dict[str, int], report: PushReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "mode": report.mode,
        "reconciled": report.reconciled,
        "target": target,
        **{k: v for k, v in report.counts.items()},
        **{k: v for k, v in counts.items()},
        "problems": len(report.problems),
        "drift_found": len(report.drift),
        "preview": preview(*report.preview, personal=integration.personal_preview_columns),
    }
    if report.file is not None:
        metadata["file"] = dg.MetadataValue.path(str(report.file))
    if report.unreadable:
        metadata["targets_unreadable"] = len(report.unreadable)
    if report.problems:
        metadata["problem_rows"] = problem_rows(report.problems)
    return metadata

