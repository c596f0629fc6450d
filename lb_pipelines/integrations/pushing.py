"""What every API push shares: desired state, the difference, sending it, and showing it.

An integration computes what its target should hold (`DesiredState`, from the warehouse); this
module compares it with what was last accepted (`delivery.pushed_state`) or, on a reconcile and
in shadow mode, with what the target holds now (read back by the adapter), and sends only the
creates, updates and deletes. Each integration's adapter owns the vendor's HTTP shape.

Modes (`delivery.type`):
- `http`: send; each request's ledger row and the state it moves are written as its answer comes;
- `dry_run`: write every request that would be sent to `requests-<YYYYMMDDHHMM>.jsonl`;
- `shadow`: read the target, write the difference the first push would make to
  `preview-<YYYYMMDDHHMM>.csv`, send nothing.

Which objects a push manages: those it wants (desired), and those it holds or finds (pushed,
read back) whose start lies inside the window's span, unless the integration knows them to be
outside its window (`keep`: a slot of yesterday is history, not a delete).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
import threading
import uuid
from collections import defaultdict
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Optional, Protocol, Sequence

import orjson

from lb_pipelines.delivery.http import Answer, CredentialsRefused, short_error
from lb_pipelines.delivery.ledger import Problem
from lb_pipelines.delivery.push_state import Pushed, RequestRecord, load_pushed, record_requests

Action = Literal["create", "update", "delete"]
Mode = Literal["http", "dry_run", "shadow"]
Key = tuple[str, str]  # (target, object key)


def content_hash(value: Any) -> str:
    """A stable hash of what an object says (the keys the push controls, in one canonical JSON)."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


@dataclass(frozen=True)
class Desired:
    """One object the target should hold."""

    target: str  # what requests and concurrency are per (a mailbox, a time zone); may be personal
    key: str  # the object within it (a slot id)
    payload: Any  # what the adapter sends
    content_hash: str
    label: str  # how problems and previews name it, without personal data: "person 12, slot 345"
    start_at: Optional[dt.datetime] = None


@dataclass(frozen=True)
class Observed:
    """One object as the target holds it now (read back)."""

    target: str
    key: str
    vendor_id: Optional[str]
    content_hash: str
    start_at: Optional[dt.datetime] = None
    label: str = ""


@dataclass(frozen=True)
class Change:
    action: Action
    target: str
    key: str
    label: str
    desired: Optional[Desired] = None  # what to send (create, update)
    vendor_id: Optional[str] = None  # the object's id in the target (update, delete)
    start_at: Optional[dt.datetime] = None


@dataclass
class DesiredState:
    """What an integration wants its target to hold, and what it found on the way."""

    objects: list[Desired]
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # shown on the asset: opted_out, placeholders
    keep: frozenset[Key] = frozenset()  # known to be outside the window: never deleted
    span: Optional[tuple[dt.datetime, dt.datetime]] = None  # the window as instants
    read_range: Optional[tuple[dt.datetime, dt.datetime]] = None  # what a reconcile reads (span, widened)
    targets: frozenset[str] = frozenset()  # targets to read even when nothing is desired there


@dataclass
class Plan:
    changes: list[Change]
    unchanged: int
    adopt: list[Desired]  # found in the target as desired, not in the pushed state: recorded, not sent


@dataclass(frozen=True)
class Drift:
    kind: Literal["deleted_in_target", "changed_in_target"]
    target: str
    key: str
    label: str


class PushAdapter(Protocol):
    """A vendor's HTTP shape. `send` does its own retries (delivery.http) and answers each change."""

    description: str  # the target as the ledger shows it (a base URL, never a secret)
    chunk_size: int  # changes per request (Graph: a $batch of 20)
    max_in_flight: int  # requests at once per target
    readable: bool  # whether the target can be read back (reconcile, drift, shadow)

    def request_of(self, change: Change) -> dict[str, Any]:
        """The request a change becomes, as written by a dry run (method, url, headers, body; no secret)."""

    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        """Send the changes (one chunk) and answer each, with the attempts it took."""

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        """The target's id of the object after a successful create or update."""

    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        """What the target holds that this push owns (raises TargetUnreadable)."""

    def preview(self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]) -> tuple[list[str], list[tuple]]:
        """(columns, rows) describing the changes for a person deciding on go-live."""


class TargetUnreadable(RuntimeError):
    """A target that could not be read back (its reason, without personal data)."""


def managed(start_at: Optional[dt.datetime], key: Key, state: DesiredState) -> bool:
    """Whether an object not desired is ours to delete: inside the window's span and not kept."""
    if key in state.keep:
        return False
    if state.span is None or start_at is None:
        return state.span is None  # no span: everything the push holds is in scope (a whole-set push)
    return state.span[0] <= start_at < state.span[1]


def plan(
    state: DesiredState,
    current: Mapping[Key, Pushed | Observed],
    extra: Iterable[Observed] = (),
    adopting: bool = False,
) -> Plan:
    """The changes that bring `current` to `state.objects`. `extra`: further copies of an object
    found in the target (deleted). `adopting`: `current` was read from the target, so a desired
    object found there as desired is recorded (adopt) rather than sent again."""
    changes: list[Change] = []
    adopt: list[Desired] = []
    unchanged = 0
    wanted: set[Key] = set()
    for d in state.objects:
        key = (d.target, d.key)
        wanted.add(key)
        have = current.get(key)
        if have is None:
            changes.append(Change("create", d.target, d.key, d.label, d, start_at=d.start_at))
        elif have.content_hash != d.content_hash:
            changes.append(Change("update", d.target, d.key, d.label, d, have.vendor_id, d.start_at))
        else:
            unchanged += 1
            if adopting and isinstance(have, Observed):
                adopt.append(d)
    for key, have in current.items():
        if key not in wanted and managed(have.start_at, key, state):
            changes.append(Change("delete", have.target, have.key, have.label or f"object {have.key}",
                                  vendor_id=have.vendor_id, start_at=have.start_at))
    for copy in extra:
        changes.append(Change("delete", copy.target, copy.key, copy.label or f"object {copy.key}",
                              vendor_id=copy.vendor_id, start_at=copy.start_at))
    return Plan(changes, unchanged, adopt)


def drift(pushed: Mapping[Key, Pushed], observed: Mapping[Key, Observed], read_targets: set[str]) -> list[Drift]:
    """What changed in the target by hand since the last push: objects pushed there, now gone or different."""
    found: list[Drift] = []
    for key, p in pushed.items():
        if p.target not in read_targets:
            continue
        seen = observed.get(key)
        if seen is None:
            found.append(Drift("deleted_in_target", p.target, p.key, p.label))
        elif seen.content_hash != p.content_hash:
            found.append(Drift("changed_in_target", p.target, p.key, p.label))
    return found


@dataclass
class PushReport:
    mode: Mode
    reconciled: bool
    counts: dict[str, int]  # created, updated, deleted, unchanged, adopted, refused, failed, requests_sent
    problems: list[Problem]
    drift: list[Drift]
    preview: tuple[list[str], list[tuple]]
    file: Optional[Path] = None  # the dry run's requests or the shadow's preview
    failed: list[RequestRecord] = field(default_factory=list)  # no good answer: sent again next run
    unreadable: list[str] = field(default_factory=list)  # reasons, one per target that could not be read


def _round_robin(chunks_by_target: Mapping[str, list[list[Change]]]) -> list[tuple[str, list[Change]]]:
    """Chunks interleaved across targets, so one big mailbox does not hold up all the workers."""
    lanes = [[(t, c) for c in chunks] for t, chunks in chunks_by_target.items()]
    return [item for group in itertools.zip_longest(*lanes) for item in group if item is not None]


def _record_of(adapter: PushAdapter, change: Change, answer: Answer, attempts: int) -> RequestRecord:
    request = adapter.request_of(change)
    gone = change.action == "delete" and answer.status in (404, 410)  # already gone: the goal holds
    if answer.ok or gone:
        outcome, error = "accepted", None
    elif answer.retryable:
        outcome, error = "failed", short_error(answer)
    else:
        outcome, error = "refused", short_error(answer)
    if error and change.target:
        error = error.replace(change.target, "(the target)")  # a mailbox is personal data: not in problems
    state = None
    if outcome == "accepted" and change.desired is not None:
        d = change.desired
        state = Pushed(d.target, d.key, adapter.vendor_id_of(change, answer) or change.vendor_id, d.content_hash,
                       d.start_at, d.label)
    return RequestRecord(
        request_id=str(uuid.uuid4()), target=change.target, key=change.key, label=change.label,
        action=change.action, method=request.get("method"), path=request.get("path"), status=answer.status,
        attempts=attempts, outcome=outcome, error=error, state=state,
        forget=outcome == "accepted" and change.action == "delete",
    )


def send_changes(
    adapter: PushAdapter,
    changes: Sequence[Change],
    record: Callable[[list[RequestRecord]], None],
    workers: int = 8,
) -> list[RequestRecord]:
    """Send the changes in chunks, at most `adapter.max_in_flight` at once per target, recording each
    chunk's answers as they come. Raises CredentialsRefused (after recording what was answered)."""
    by_target: dict[str, list[Change]] = defaultdict(list)
    for change in changes:
        by_target[change.target].append(change)
    size = max(1, adapter.chunk_size)
    chunks = {t: [cs[i:i + size] for i in range(0, len(cs), size)] for t, cs in by_target.items()}
    lanes = {t: threading.BoundedSemaphore(max(1, adapter.max_in_flight)) for t in chunks}
    done: list[RequestRecord] = []
    lock = threading.Lock()
    stop = threading.Event()

    def job(target: str, chunk: list[Change]) -> None:
        if stop.is_set():
            return
        with lanes[target]:
            if stop.is_set():
                return
            answered = adapter.send(target, chunk)
        records = [_record_of(adapter, c, a, n) for c, a, n in answered]
        with lock:
            record(records)
            done.extend(records)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="push") as pool:
        futures = [pool.submit(job, t, c) for t, c in _round_robin(chunks)]
        finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failure = next((f.exception() for f in finished if f.exception() is not None), None)
        if failure is not None:
            stop.set()  # the chunks not started yet stay unsent; what was answered is recorded
            wait(futures)
            raise failure
    return done


def _requests_file(adapter: PushAdapter, changes: Sequence[Change]) -> bytes:
    return b"".join(orjson.dumps(adapter.request_of(c)) + b"\n" for c in changes)


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header and rows as RFC 4180 CSV (CRLF line ends): a shadow's preview, an upload's body."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def _read_all(
    adapter: PushAdapter, targets: Sequence[str], state: DesiredState, workers: int
) -> tuple[dict[str, list[Observed]], dict[str, str]]:
    """Each readable target's objects, and why each unreadable one could not be read."""
    read: dict[str, list[Observed]] = {}
    unreadable: dict[str, str] = {}

    def one(target: str) -> None:
        try:
            read[target] = adapter.read(target, state.read_range)
        except TargetUnreadable as exc:
            unreadable[target] = str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="read") as pool:
        for future in [pool.submit(one, t) for t in targets]:
            future.result()  # CredentialsRefused goes up
    return read, unreadable


def run_push(
    *,
    integration: str,
    conn: Any,
    state: DesiredState,
    adapter: PushAdapter,
    mode: Mode,
    reconcile: bool,
    run_id: str,
    write_file: Callable[[str, bytes], Path],
    now: dt.datetime,
    workers: int = 8,
) -> PushReport:
    """Push the desired state (or write what would be pushed), recording as it goes; the report says
    what happened. `write_file(name, content)` puts a dry run's or shadow's file in the outbox."""
    pushed = load_pushed(conn, integration)
    current: dict[Key, Pushed | Observed] = dict(pushed)
    extra: list[Observed] = []
    found_drift: list[Drift] = []
    unreadable: dict[str, str] = {}
    observed_by_target: dict[str, list[Observed]] = {}
    desired_keys = {(d.target, d.key) for d in state.objects}
    # What this run answers for: what it wants, and what it holds that is still ours to delete. An
    # object pushed before that is neither (a date that left the window, a zone no longer mapped,
    # history kept) stands as last accepted: not read, not compared for drift, not forgotten.
    in_scope = {k: p for k, p in pushed.items() if k in desired_keys or managed(p.start_at, k, state)}
    reads = mode == "shadow" or (mode == "http" and reconcile and adapter.readable)
    if reads:
        targets = sorted({d.target for d in state.objects} | {p.target for p in in_scope.values()} | state.targets)
        observed_by_target, unreadable = _read_all(adapter, targets, state, workers)
        observed: dict[Key, Observed] = {}
        for target, objects in observed_by_target.items():
            for o in objects:
                key = (o.target, o.key)
                if key not in observed:
                    observed[key] = o
                elif pushed.get(key) and pushed[key].vendor_id == o.vendor_id:
                    extra.append(observed[key])  # keep the copy we know; the other is a duplicate
                    observed[key] = o
                else:
                    extra.append(o)
        found_drift = drift(in_scope, observed, set(observed_by_target))
        # A target read back is compared with what it holds; one that could not be read, with the state.
        current = {k: v for k, v in pushed.items() if k[0] not in observed_by_target}
        current.update(observed)
    the_plan = plan(state, current, extra, adopting=reads)
    problems = list(state.problems)
    for target, reason in unreadable.items():
        labels = sorted({d.label.split(",")[0] for d in state.objects if d.target == target}) or ["a target"]
        problems.append(Problem("target_unreadable", labels[0], "", reason))
    for d in found_drift:
        problems.append(Problem(f"drift_{d.kind}", d.label, "", _DRIFT_REASON[d.kind]))
    # What a dry run or a shadow would do (an http run reports what was done instead).
    counts = {
        "would_create": sum(c.action == "create" for c in the_plan.changes),
        "would_update": sum(c.action == "update" for c in the_plan.changes),
        "would_delete": sum(c.action == "delete" for c in the_plan.changes),
        "unchanged": the_plan.unchanged,
    }
    preview = adapter.preview(the_plan.changes, observed_by_target)
    stamp = f"{now:%Y%m%d%H%M}"
    if mode == "dry_run":
        path = write_file(f"requests-{stamp}.jsonl", _requests_file(adapter, the_plan.changes))
        return PushReport(mode, False, {**counts, "requests_sent": 0}, problems, found_drift, preview, path)
    if mode == "shadow":
        path = write_file(f"preview-{stamp}.csv", csv_text(*preview).encode("utf-8"))
        return PushReport(mode, True, {**counts, "requests_sent": 0}, problems, found_drift, preview, path,
                          unreadable=list(unreadable.values()))

    at = now
    record = lambda records: record_requests(conn, integration, run_id, records, at)  # noqa: E731
    # What the reconcile learned: objects found as desired (adopted) and pushed ones now gone.
    learned = [
        RequestRecord(str(uuid.uuid4()), d.target, d.key, d.label, "adopt", None, None, None, 0, "adopted", None,
                      state=Pushed(d.target, d.key, current[(d.target, d.key)].vendor_id, d.content_hash,
                                   d.start_at, d.label))
        for d in the_plan.adopt
    ]
    learned += [
        RequestRecord(str(uuid.uuid4()), p.target, p.key, p.label, "forget", None, None, None, 0, "adopted", None,
                      forget=True)
        for (t, k), p in in_scope.items()
        if t in observed_by_target and (t, k) not in current and (t, k) not in desired_keys
    ]
    record(learned)
    records = send_changes(adapter, the_plan.changes, record, workers)
    refused = [r for r in records if r.outcome == "refused"]
    failed = [r for r in records if r.outcome == "failed"]
    for r in refused + failed:
        problems.append(Problem(f"{r.outcome}_by_target" if r.outcome == "refused" else "not_delivered",
                                r.label, r.action, r.error or ""))
    done = {a: sum(r.outcome == "accepted" and r.action == a for r in records) for a in ("create", "update", "delete")}
    counts = {
        "created": done["create"], "updated": done["update"], "deleted": done["delete"],
        "unchanged": the_plan.unchanged, "adopted": len(the_plan.adopt), "refused": len(refused),
        "failed": len(failed), "requests_sent": len(records),
    }
    return PushReport(mode, reads, counts, problems, found_drift, preview, None, failed,
                      list(unreadable.values()))


_DRIFT_REASON = {
    "deleted_in_target": "deleted in the target by hand since the last push; restored from the schedule",
    "changed_in_target": "changed in the target by hand since the last push; the schedule's version restored",
}


__all__ = [
    "Change", "CredentialsRefused", "Desired", "DesiredState", "Drift", "Observed", "Plan", "PushAdapter",
    "PushReport", "TargetUnreadable", "content_hash", "drift", "managed", "plan", "run_push", "send_changes",
]
