"""The body of every inbound import's asset: take the waiting files, apply each once, move it, report.

One run handles the file its sensor named (run config `file`), or every whole file waiting in
the drop (a schedule's sweep, `make run`, a person in the UI). For each file:

1. its sha256: content processed before is refused as a duplicate (moved to failed/ with a report);
2. the integration's `import_file` applies its rows, journaling each as it goes; a run killed
   midway leaves the file where it was and its journal, and the next run resumes it;
3. the report CSV goes beside the file in processed/ (or failed/ for a file that cannot be
   read), and the ledger gets the file's row, its problems and every request it sent.

A dry run applies nothing and moves nothing: it writes the report and the requests it would
send to `$LB_OUTBOX_DIR/<slug>/`. A file with rows that got no answer (Lightning Bolt down)
stays in the drop and the run fails, naming them; the next run sends only what did not arrive.
Metadata and log lines name files, lines and Lightning Bolt ids, never a value of a row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines import settings as paths
from lb_pipelines.delivery.inbound_journal import begin_file, file_record, finish_file
from lb_pipelines.delivery.ledger import Problem, record_push_run
from lb_pipelines.delivery.targets import DeliveryError, Receipt, sha256_hex, write_atomically
from lb_pipelines.integrations.declaration import InboundImport
from lb_pipelines.integrations.exporting import problem_rows, with_problems_check
from lb_pipelines.integrations.inbound import FAILED, PROCESSED, Drop, files_ready_now, open_drop, report_name
from lb_pipelines.integrations.pushing import csv_text

SCOPE = "inbound"
TABLE_ROWS = 200  # rows of a file's outcomes shown on the asset (the report CSV has them all)


class UnreadableFile(ValueError):
    """The file cannot be read as the integration's file: it goes to failed/, nothing applied."""


@dataclass(frozen=True)
class InboundFile:
    name: str
    content: bytes
    sha256: str


@dataclass
class ImportRun:
    """What `import_file` gets: the file, the settings, the warehouse (held for the run) and the source."""

    slug: str
    file: InboundFile
    settings: Any
    conn: duckdb.DuckDBPyConnection
    run_id: str
    open_source: Callable[[], Any]  # a Lightning Bolt source (the API client when sending)
    log: Any

    @property
    def dry_run(self) -> bool:  # nothing applied, nothing moved: the report and requests go to the outbox
        return self.settings.delivery.type == "dry_run"


@dataclass
class ImportReport:
    rows: list[tuple]  # one per line of the file, in the integration's report_columns
    counts: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    requests_sent: int = 0
    unapplied: int = 0  # rows with no good answer: the file stays, the next run sends them
    requests_file: Optional[bytes] = None  # a dry run's requests, one JSON object per line
    target: str = "lightning_bolt"


@dataclass(frozen=True)
class FileResult:
    name: str
    status: str  # processed | failed | duplicate | dry_run | incomplete | gone
    report: Optional[ImportReport]
    location: Optional[str]
    report_location: Optional[str]
    reason: str = ""


def import_files(
    context: dg.AssetExecutionContext, warehouse: DuckDBResource, integration: InboundImport, settings: Any,
    open_source: Callable[[], Any], named: str = "",
) -> dg.MaterializeResult:
    slug = integration.slug
    if named and (named != named.strip() or "/" in named or "\\" in named or named.startswith(".")):
        raise dg.Failure(description=f"{slug}: run config file {named!r} is not a file name in the drop")
    drop = open_drop(settings.inbound, slug)
    try:
        names = [named] if named else [w.name for w in files_ready_now(drop, settings.inbound)]
    except (DeliveryError, OSError) as exc:
        raise dg.Failure(description=f"{slug}: cannot look in {drop.description}: {exc}") from None
    results = [
        _one_file(context, warehouse, integration, settings, drop, name, open_source) for name in names
    ]
    return _result(integration, settings, drop, results)


def _one_file(context, warehouse, integration: InboundImport, settings, drop: Drop, name: str, open_source) -> FileResult:
    slug, run_id = integration.slug, context.run.run_id
    dry = settings.delivery.type == "dry_run"
    try:
        content = drop.fetch(name)
    except FileNotFoundError:
        context.log.info(f"{slug}: {name} is no longer in {drop.description} (taken by an earlier run)")
        return FileResult(name, "gone", None, None, None)
    inbound = InboundFile(name, content, sha256_hex(content))
    with warehouse.get_connection() as conn:
        earlier = file_record(conn, slug, inbound.sha256)
        if earlier is not None and earlier.status == "processed" and not dry:
            reason = (f"the same content (sha256 {inbound.sha256[:12]}...) was processed as {earlier.file_name} "
                      f"on {earlier.received_at:%Y-%m-%d %H:%M}; refused as a duplicate, nothing applied")
            return _refuse(conn, integration, drop, inbound, "duplicate", reason, run_id, dry)
        if earlier is not None and not dry:
            context.log.info(f"{slug}: resuming {name}: a run before this one began it and did not finish")
        elif not dry:
            begin_file(conn, slug, inbound.sha256, name, len(content), run_id, "importing")
        run = ImportRun(slug, inbound, settings, conn, run_id, open_source, context.log)
        try:
            report = integration.import_file(run)
        except UnreadableFile as exc:
            return _refuse(conn, integration, drop, inbound, "failed", str(exc), run_id, dry)
        except Exception as exc:  # e.g. Lightning Bolt unreachable: the file stays, the next run resumes
            report = ImportReport([], {}, [Problem("not_applied", f"file {name}", "", f"{type(exc).__name__}: {exc}")],
                                  unapplied=1)
            _ledger(conn, slug, inbound, report, "incomplete", run_id, None)
            return FileResult(name, "incomplete", report, None, None, str(exc))
        report_csv = csv_text(integration.report_columns, report.rows).encode()
        location = report_location = None
        if dry:
            status = "dry_run"
            report_location, location = _dry_run_files(slug, name, report_csv, report.requests_file)
        elif report.unapplied:
            status = "incomplete"  # the file stays; its journal lets the next run send only what is left
        else:
            status = "processed"
            location, report_location = _finish(drop, name, PROCESSED, report_csv)
        if status != "incomplete":
            finish_file(conn, slug, inbound.sha256, name, status=status, rows=len(report.rows), run_id=run_id,
                        location=location, report_location=report_location,
                        from_status="importing" if not dry else "-")
        _ledger(conn, slug, inbound, report, status, run_id, location)
    return FileResult(name, status, report, location, report_location)


def _finish(drop: Drop, name: str, folder: str, report_csv: bytes) -> tuple[str, str]:
    location = drop.finish(name, folder, report_csv)
    where, _, final = location.rpartition("/")
    return location, f"{where}/{report_name(final)}"


def _outbox(slug: str, name: str, content: bytes) -> str:
    path = paths.outbox_dir() / slug / name
    write_atomically(path, content)
    return str(path)


def _dry_run_files(slug: str, name: str, report_csv: bytes, requests: Optional[bytes]) -> tuple[str, Optional[str]]:
    """A dry run's report and requests in the outbox (the file itself stays where it is)."""
    stamp = clock.now().strftime("%Y%m%d%H%M")
    report_location = _outbox(slug, f"{report_name(name).removesuffix('.csv')}-{stamp}.csv", report_csv)
    requests_location = _outbox(slug, f"requests-{stamp}.jsonl", requests) if requests is not None else report_location
    return report_location, requests_location


def _refuse(conn, integration: InboundImport, drop: Drop, inbound: InboundFile, status: str, reason: str,
            run_id: str, dry: bool) -> FileResult:
    """A file not applied at all (unreadable, or a duplicate): to failed/ with a one-line report."""
    slug = integration.slug
    outcome = "duplicate" if status == "duplicate" else "unreadable"
    row = tuple({"outcome": outcome, "reason": reason}.get(c, "") for c in integration.report_columns)
    report_csv = csv_text(integration.report_columns, [row]).encode()
    report = ImportReport([row], {}, [Problem(f"{outcome}_file", f"file {inbound.name}", "", reason)])
    if dry:
        status, (report_location, location) = "dry_run", _dry_run_files(slug, inbound.name, report_csv, None)
    else:
        location, report_location = _finish(drop, inbound.name, FAILED, report_csv)
    finish_file(conn, slug, inbound.sha256, inbound.name, status=status, rows=0, run_id=run_id,
                location=location, report_location=report_location)
    _ledger(conn, slug, inbound, report, status, run_id, location)
    return FileResult(inbound.name, status, report, location, report_location, reason)


def _ledger(conn, slug: str, inbound: InboundFile, report: ImportReport, status: str, run_id: str,
            location: Optional[str]) -> None:
    """The file's ledger row, with this file's problems as the check of the import's scope."""
    error = f"{report.unapplied} rows not applied; the file stays for the next run" if report.unapplied else None
    receipt = Receipt(report.target, location or inbound.name, len(inbound.content), inbound.sha256, delivered=False)
    record_push_run(conn, integration=slug, scope=SCOPE, target=report.target, requests=report.requests_sent,
                    status={"processed": "delivered", "incomplete": "failed"}.get(status, status), error=error,
                    run_id=run_id, problems=report.problems, file=receipt)


def _result(integration: InboundImport, settings, drop: Drop, results: list[FileResult]) -> dg.MaterializeResult:
    slug = integration.slug
    counts: dict[str, int] = {}
    problems: list[Problem] = []
    for r in results:
        for k, v in (r.report.counts if r.report else {}).items():
            counts[k] = counts.get(k, 0) + v
        problems += r.report.problems if r.report else []
    metadata: dict[str, Any] = {
        "mode": settings.delivery.type,
        "drop": drop.description,
        "files": len([r for r in results if r.status != "gone"]),
        **{f"files_{s}": len([r for r in results if r.status == s])
           for s in ("processed", "failed", "duplicate", "dry_run", "incomplete")},
        **counts,
        "requests_sent": sum(r.report.requests_sent for r in results if r.report),
        "problems": len(problems),
        "file_outcomes": dg.MetadataValue.table(
            records=[dg.TableRecord({"file": r.name, "status": r.status, "rows": len(r.report.rows) if r.report else 0,
                                     "report": r.report_location or ""}) for r in results],
            schema=dg.TableSchema(columns=[dg.TableColumn("file"), dg.TableColumn("status"),
                                           dg.TableColumn("rows", "int"), dg.TableColumn("report")]),
        ),
    }
    shown = [(r.name, row) for r in results if r.report for row in r.report.rows][:TABLE_ROWS]
    if shown:
        columns = ("file", *integration.report_columns)
        metadata["row_outcomes"] = dg.MetadataValue.table(
            records=[dg.TableRecord(dict(zip(columns, ("" if v is None else str(v) for v in (name, *row)))))
                     for name, row in shown],
            schema=dg.TableSchema(columns=[dg.TableColumn(c) for c in columns]),
        )
    if problems:
        metadata["problem_rows"] = problem_rows(problems)
    incomplete = [r for r in results if r.status == "incomplete"]
    if incomplete:
        lines = [f"{slug}: {', '.join(r.name for r in incomplete)} not finished: the file(s) stay in the drop and "
                 "the next run sends only what did not arrive:"]
        lines += [f"  {p.kind}: {p.record}{' (' + p.field + ')' if p.field else ''}: {p.reason}"
                  for p in sorted(problems, key=lambda p: p.kind != "not_applied")[:10]]
        raise dg.Failure(description="\n".join(lines),
                         metadata={k: v for k, v in metadata.items() if not isinstance(v, dg.MarkdownMetadataValue)})
    return with_problems_check(metadata, problems)
