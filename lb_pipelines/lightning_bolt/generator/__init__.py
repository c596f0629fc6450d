"""Synthetic Lightning Bolt health systems, written as a directory source.

`generate()` (console script `lb-generate`) writes one `<entity>.jsonl` per entity of
`contract.ENTITIES`, each line a record exactly as the API returns it (every contract field, in
contract order, null where absent), and a `manifest.json`. The same arguments give
byte-identical files: all randomness comes from `random.Random` seeded from `seed`, all
timestamps from `start` and `as_of`, never from the wall clock. Slots are streamed day by day,
so 20,000 providers over a year fit in a few hundred MB.

    lb-generate --out data/sample --providers 150 --days 212 --seed 2026 \\
        --start 2026-09-01 --as-of 2026-11-22T07:00:00-06:00

What is in it (details in the modules): `generator_roster` (facilities, departments, people,
assignments), `generator_history` (timestamps, schedules, requests, change log),
`generator_slots` (slots and tallies). Choices where the contract is silent:

- ids: departments from 101, personnel from 10001 (in hiring order, not by department),
  assignments from 2001, everything else from 1; slot ids increase with (date, department).
- Timestamps are whole seconds with the local offset of the department (a person's: their home
  department's), never after `as_of`.
- A slot belongs to the schedule of its department and of the month of its date. Admin and some
  clinic assignments have slots on weekdays only; the Off assignments (Vacation, Conference)
  have one slot per weekday of approved time off, filled with that person.
- `department_ids` lists the home department first; placeholders have personnel_type Physician.
- The change log holds: schedule create / publish / republish (field "version"), person swaps on
  published slots (field "personnel_id"), request create and decision (field "status"), and
  deactivations and demographic changes of personnel and assignments; `changed_at` strictly
  increases with the id.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time
from pathlib import Path
from typing import Any, Iterable

import orjson

from lb_pipelines import clock
from lb_pipelines.lightning_bolt.source.contract import ENTITIES
from lb_pipelines.lightning_bolt.generator.history import (
    ChangeLog,
    Span,
    assignment_records,
    build_requests,
    build_schedules,
    fill_people,
    request_records,
    schedule_record,
)
from lb_pipelines.lightning_bolt.generator.roster import Roster, build_assignments, build_roster
from lb_pipelines.lightning_bolt.generator.slots import pick_conflicts, write_slots

GENERATOR_VERSION = "1.0"
MIN_PROVIDERS = 10


def generate(
    out_dir: Path,
    providers: int,
    days: int,
    seed: int = 7,
    start: dt.date | None = None,
    as_of: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write a synthetic health system to `out_dir` and return its manifest.

    `providers` people (placeholders come on top), `days` days of slots from `start` (default:
    a quarter of the days before `as_of`'s date), everything timestamped no later than `as_of`
    (default: `clock.now()`).
    """
    if providers < MIN_PROVIDERS:
        raise ValueError(f"providers must be at least {MIN_PROVIDERS}, got {providers}")
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    as_of = (as_of or clock.now()).replace(microsecond=0)
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of.isoformat()} has no UTC offset")
    start = start or as_of.date() - dt.timedelta(days=days // 4)
    span = Span(start, days, as_of)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    def rng(part: str) -> random.Random:  # one stream per part: sizes of one part never shift another
        return random.Random(f"{seed}:{part}")

    log = ChangeLog(span.cap)
    roster = build_roster(rng("roster"), providers)
    build_assignments(rng("assignments"), roster)
    fill_people(rng("people"), roster, span, log)
    assignments = assignment_records(rng("assignment-history"), roster, span, log)
    schedules = build_schedules(rng("schedules"), roster, span, log)
    off = bytearray(days * len(roster.people))  # day-major: time off and departures
    requests = build_requests(rng("requests"), roster, span, log, off)
    forced, doubles = pick_conflicts(rng("conflicts"), roster, span, requests)

    rows: dict[str, int] = {}
    rows["departments"] = _write(out, "departments", (
        {"id": d.id, "name": d.name, "timezone": d.tz, "coid": d.coid, "kronos_department_id": d.kronos_id}
        for d in roster.departments
    ))
    personnel = sorted((p.record for p in roster.people), key=lambda r: r["id"])
    rows["personnel"] = _write(out, "personnel", personnel)
    rows["assignments"] = _write(out, "assignments", assignments)
    rows["schedules"] = _write(out, "schedules", (schedule_record(s, roster) for s in schedules))
    slots_tmp, tallies_tmp = _tmp(out, "slots"), _tmp(out, "tallies")
    rows["slots"], rows["tallies"] = write_slots(
        rng("slots"), roster, span, schedules, off, log, forced, doubles, slots_tmp, tallies_tmp
    )
    del off
    rows["requests"] = _write(out, "requests", request_records(requests, roster, span))
    rows["change_log"] = _write(out, "change_log", log.records())
    rows["view_settings"] = _write(out, "view_settings", view_settings(rng("views"), roster))
    os.replace(slots_tmp, out / ENTITIES["slots"].file_name)
    os.replace(tallies_tmp, out / ENTITIES["tallies"].file_name)

    manifest = {
        "generator": "lb_pipelines.lightning_bolt.generator",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "providers": providers,
        "days": days,
        "start": span.start.isoformat(),
        "end": span.end.isoformat(),
        "as_of": as_of.isoformat(),
        "facilities": len(roster.facilities),
        "time_zones": sorted({f.tz for f in roster.facilities}),
        "rows": {name: rows[name] for name in ENTITIES},
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, out / "manifest.json")
    return manifest


def _tmp(out: Path, entity: str) -> Path:
    return out / f"{ENTITIES[entity].file_name}.tmp"


def _write(out: Path, entity: str, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSON Lines under a temporary name, then rename: readers never see half."""
    tmp = _tmp(out, entity)
    count = 0
    with open(tmp, "wb", buffering=1 << 20) as f:
        for rec in records:
            f.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    os.replace(tmp, out / ENTITIES[entity].file_name)
    return count


def view_settings(rng: random.Random, roster: Roster) -> list[dict[str, Any]]:
    """Saved views as schedulers keep them: a board per service, a call list, a vacation calendar."""
    depts = roster.departments

    def ids(specialty: str | None = None, facility: int | None = None) -> list[int]:
        return [
            d.id for d in depts
            if specialty in (None, d.specialty) and facility in (None, d.facility)
        ]

    columns = ["date", "assignment", "provider", "start", "end", "notes"]
    first_facility = roster.facilities[0].name
    views = [
        ("Anesthesia Daily Board", ids("Anesthesiology"), {
            "layout": "daily", "columns": columns + ["pager"], "group_by": "assignment",
            "filters": {"assignment_types": ["Shift", "Call"], "personnel_types": ["Physician", "CRNA"]},
            "show_unfilled": True, "days": 1}),
        ("ED Monthly Grid", ids("Emergency Medicine"), {
            "layout": "month", "columns": columns, "group_by": "provider", "filters": {},
            "show_unfilled": True}),
        ("Who's On Call", ids(facility=0), {
            "layout": "list", "columns": ["assignment", "provider", "start", "end", "pager", "cell_phone"],
            "filters": {"assignment_types": ["Call"]}, "show_unfilled": False, "days": 1}),
        ("Resident Duty Hours", [d.id for d in depts if "RES" in d.pools], {
            "layout": "week", "columns": columns + ["hours"], "group_by": "provider",
            "filters": {"personnel_types": ["Resident"]}, "show_unfilled": False, "days": 28}),
        ("Vacation Calendar", ids(facility=0), {
            "layout": "month", "columns": ["date", "provider", "assignment"], "group_by": "date",
            "filters": {"assignment_types": ["Off"]}, "show_unfilled": False}),
        (f"{first_facility} Master Schedule", ids(facility=0), {
            "layout": "week", "columns": columns, "group_by": "department", "filters": {},
            "show_unfilled": True, "color_by": "assignment_type"}),
    ]
    records = []
    for name, dept_ids, settings in views:
        if not dept_ids:
            continue
        settings["filters"]["department_ids"] = dept_ids
        owner = rng.choice(rng.choice(roster.schedulers))
        records.append({"id": len(records) + 1, "name": name, "owner": owner, "settings": settings})
    return records


def _parse_as_of(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset; write it like 2026-11-22T07:00:00-06:00"
        )
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lb-generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to write (created if missing)")
    parser.add_argument(
        "--providers", type=int, required=True, help=f"people, not placeholders (>= {MIN_PROVIDERS})"
    )
    parser.add_argument("--days", type=int, required=True, help="days of slots")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--start", type=dt.date.fromisoformat, help="first day YYYY-MM-DD (default: around today)"
    )
    parser.add_argument(
        "--as-of", type=_parse_as_of, help="ISO 8601 instant with offset (default: the clock)"
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        manifest = generate(args.out, args.providers, args.days, args.seed, args.start, args.as_of)
    except ValueError as exc:
        parser.error(str(exc))
    counts = " ".join(f"{k}={v}" for k, v in manifest["rows"].items())
    print(
        f"lb-generate: wrote {args.out} ({manifest['start']}..{manifest['end']}, "
        f"as of {manifest['as_of']}): {counts} in {time.perf_counter() - began:.1f} s"
    )
