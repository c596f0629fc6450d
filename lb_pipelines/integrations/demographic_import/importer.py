"""One demographic file applied to Lightning Bolt: plan every row against a fresh read of the
personnel, then one PATCH per changed person, each answer journaled before the next is sent.

Resuming (a run killed midway, or one whose Lightning Bolt stopped answering): rows the journal
shows applied or refused are not sent again; a row planned by the earlier run whose person
already holds its values (read back) was applied with its answer lost, and is confirmed, not
sent; every other row is planned afresh. A PATCH whose answer is lost during this run is read
back the same way at its end, and sent again only if it did not arrive.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterable

import orjson

from lb_pipelines.delivery.inbound_journal import JournalRow, journal, record_rows, write_plan
from lb_pipelines.delivery.ledger import Problem
from lb_pipelines.delivery.push_state import RequestRecord
from lb_pipelines.integrations.demographic_import.rules import (
    FileRefused, RowPlan, holds, plan_rows, read_file,
)
from lb_pipelines.integrations.import_assets import ImportReport, ImportRun, UnreadableFile
from lb_pipelines.lightning_bolt.source.api_client import AnswerLost, ApiClient, ApiError
from lb_pipelines.lightning_bolt.source.contract import PERSONNEL

REPORT_COLUMNS = ("line", "key", "personnel_id", "outcome", "fields", "reason")
TARGET = "lightning_bolt"
PROBLEM_OUTCOMES = ("ambiguous", "invalid", "refused", "failed")  # unmatched is normal: HR lists everyone


def _path(person_id: int) -> str:
    return f"{PERSONNEL.endpoint}/{person_id}"


def _read_people(source: Any) -> dict[int, dict[str, Any]]:
    return {p["id"]: p for p in source.read("personnel")}


def import_file(run: ImportRun) -> ImportReport:
    s = run.settings
    try:
        parsed = read_file(run.file.content, s.personnel_id_field, s.update_fields)
    except FileRefused as exc:
        raise UnreadableFile(str(exc)) from None
    source = run.open_source()
    try:
        if not run.dry_run and not isinstance(source, ApiClient):
            raise RuntimeError(
                "delivery http sends PATCH /api/v1/personnel/{id} to the Lightning Bolt API: set LB_API_URL "
                "(and LB_CLIENT_ID, LB_CLIENT_SECRET), or use delivery: {type: dry_run}"
            )
        people = _read_people(source)
        plans = plan_rows(parsed, people.values(), region=s.phone_region, phone_format=s.phone_format)
        if run.dry_run:
            return _report(run, plans, {}, parsed.notes, requests_file=_requests(plans))
        sent: list[str] = []  # the PATCHes this run sent (their request ids)
        final = _apply(run, source, plans, people, sent)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    return _report(run, plans, final, parsed.notes, sent=len(sent))


def _requests(plans: Iterable[RowPlan]) -> bytes:
    return b"".join(
        orjson.dumps({"line": p.line, "method": "PATCH", "path": _path(p.person_id), "body": p.changes}) + b"\n"
        for p in plans if p.outcome == "updated"
    )


def _apply(
    run: ImportRun, client: ApiClient, plans: list[RowPlan], people: dict[int, dict], sent: list[str]
) -> dict[int, tuple[str, str]]:
    """Send what is left to send; line → (outcome, reason) for every row the journal decided."""
    slug, sha = run.slug, run.file.sha256
    earlier = journal(run.conn, slug, sha)
    final: dict[int, tuple[str, str]] = {}
    confirmed: list[tuple[int, str, str, str]] = []
    to_send: list[RowPlan] = []
    for plan in plans:
        done = earlier.get(plan.line)
        if done is not None and done.status in ("applied", "confirmed", "refused"):
            final[plan.line] = (done.outcome, done.reason)
        elif done is not None and done.changes and holds(people.get(done.personnel_id), done.changes):
            why = "applied by an earlier run whose answer was lost (read back)"
            final[plan.line] = ("updated", why)
            confirmed.append((plan.line, "confirmed", "updated", why))
        elif plan.outcome == "updated":
            to_send.append(plan)
    if confirmed:
        record_rows(run.conn, slug, sha, run.run_id, confirmed)
    write_plan(run.conn, slug, sha, run.run_id, [
        JournalRow(p.line, p.key, p.person_id, "updated", p.field, "", p.changes, "planned") for p in to_send
    ])
    lost = [p for p in to_send if _send(run, client, p, final, sent)]
    if lost:
        people = _read_people(client)  # one read for every lost answer
        for plan in lost:
            if holds(people.get(plan.person_id), plan.changes):
                why = "the answer was lost; reading the person back showed the change applied"
                final[plan.line] = ("updated", why)
                record_rows(run.conn, slug, sha, run.run_id, [(plan.line, "confirmed", "updated", why)])
            elif _send(run, client, plan, final, sent):
                why = "no answer twice, and the person does not hold the change; the next run sends it"
                final[plan.line] = ("failed", why)
                record_rows(run.conn, slug, sha, run.run_id, [(plan.line, "failed", "failed", why)])
    return final


def _send(run: ImportRun, client: ApiClient, plan: RowPlan, final: dict[int, tuple[str, str]], sent: list[str]) -> bool:
    """One PATCH and its journal row; True when its answer was lost (left planned)."""
    path = _path(plan.person_id)
    status, attempts, error = None, 1, None
    try:
        client.patch_personnel(plan.person_id, plan.changes)
        status, row_status, outcome, reason, answer = 200, "applied", "updated", "", "accepted"
    except AnswerLost as exc:
        run.log.warning(f"{run.slug}: {run.file.name} line {plan.line}: PATCH {path}: no answer; reading back")
        attempts, error = exc.attempts, str(exc)
        row_status, outcome, reason, answer = "planned", "updated", "", "lost"
    except ApiError as exc:
        status, attempts, error = exc.status, exc.attempts, str(exc)
        if exc.status is not None and 400 <= exc.status < 500:
            row_status, outcome, answer = "refused", "refused", "refused"
            reason = f"Lightning Bolt refused the change: {exc}"
        else:
            row_status, outcome, answer = "failed", "failed", "failed"
            reason = f"no good answer from Lightning Bolt after the retries ({exc}); the next run sends it"
    for name, value in plan.changes.items():  # the server's message may quote what it refused
        reason, error = reason.replace(value, f"<{name}>"), error and error.replace(value, f"<{name}>")
    request = RequestRecord(
        request_id=(request_id := str(uuid.uuid4())), target=TARGET, key=str(plan.person_id),
        label=f"personnel {plan.person_id}: {plan.field}", action="update", method="PATCH", path=path,
        status=status, attempts=attempts, outcome=answer, error=error,
    )
    record_rows(run.conn, run.slug, run.file.sha256, run.run_id, [(plan.line, row_status, outcome, reason)], [request])
    sent.append(request_id)
    if answer != "lost":
        final[plan.line] = (outcome, reason)
    return answer == "lost"


def _report(run: ImportRun, plans: list[RowPlan], final: dict[int, tuple[str, str]], notes, *,
            sent: int = 0, requests_file: bytes | None = None) -> ImportReport:
    rows: list[tuple] = []
    problems: list[Problem] = []
    counts = {k: 0 for k in ("rows", "matched", "updated", "unchanged", "unmatched", "ambiguous", "invalid",
                             "refused", "failed")}
    for plan in plans:
        outcome, reason = final.get(plan.line, (plan.outcome, plan.reason))
        if run.dry_run and outcome == "updated":
            reason = "dry run: this PATCH would be sent (see the requests file)"
        counts["rows"] += 1
        counts[outcome] += 1
        counts["matched"] += plan.person_id is not None
        fields = plan.field if outcome != "unchanged" else ""
        rows.append((plan.line, plan.key, plan.person_id, outcome, fields, reason))
        if outcome in PROBLEM_OUTCOMES:
            kind = "not_applied" if outcome == "failed" else f"{outcome}_row"
            problems.append(Problem(kind, f"{run.file.name} line {plan.line}", fields or "", reason))
    for note in notes:
        problems.append(Problem(note.kind, f"{run.file.name} column {note.column} ({note.header})", "", note.reason))
    counts["columns_ignored"] = len(notes)
    unapplied = counts["failed"]
    return ImportReport(rows, counts, problems, requests_sent=sent, unapplied=unapplied,
                        requests_file=requests_file, target=TARGET if not run.dry_run else "dry_run")
