"""The synthetic health-system generator: determinism, the contract, and realism a downstream
check relies on. Expected values come from the source contract and the generator's brief, not
from its output; sizes are small so the file runs in a few seconds."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lb_pipelines.lightning_bolt.source.contract import ENTITIES
from lb_pipelines.lightning_bolt.generator import generate, main
from lb_pipelines.lightning_bolt.source.records import check_record

PROVIDERS = 80
DAYS = 75
SEED = 11
START = dt.date(2026, 10, 20)  # spans the fall-back night of 2026-11-01
AS_OF = dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
# US holidays inside the window, by the calendar (Thanksgiving, Christmas Day, New Year's Day)
HOLIDAYS = {"2026-11-26", "2026-12-25", "2027-01-01"}


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _load(folder: Path) -> dict[str, list[dict]]:
    return {
        name: [json.loads(line) for line in (folder / entity.file_name).read_text().splitlines()]
        for name, entity in ENTITIES.items()
    }


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gen") / "a"
    generate(folder, PROVIDERS, DAYS, seed=SEED, start=START, as_of=AS_OF)
    return folder


@pytest.fixture(scope="module")
def data(out) -> dict[str, list[dict]]:
    return _load(out)


@pytest.fixture(scope="module")
def idx(data):
    """Lookups by id."""
    names = ("departments", "personnel", "assignments", "schedules")
    return {name: {r["id"]: r for r in data[name]} for name in names}


def _interval(slot, idx) -> tuple[float, float]:
    """Real start and end instants of a slot (fold=0 for a skipped or repeated local time)."""
    tz = ZoneInfo(idx["departments"][idx["assignments"][slot["assignment_id"]]["department_id"]]["timezone"])
    day = dt.date.fromisoformat(slot["date"])
    start = dt.datetime.combine(day, dt.time.fromisoformat(slot["start_time"]), tz)
    end_day = day + dt.timedelta(days=1) if slot["end_time"] <= slot["start_time"] else day
    end = dt.datetime.combine(end_day, dt.time.fromisoformat(slot["end_time"]), tz)
    return start.timestamp(), end.timestamp()


def test_same_seed_gives_byte_identical_files(out, tmp_path):
    manifest = generate(tmp_path / "b", PROVIDERS, DAYS, seed=SEED, start=START, as_of=AS_OF)
    digests = _digests(out)
    assert set(digests) == {e.file_name for e in ENTITIES.values()} | {"manifest.json"}
    assert _digests(tmp_path / "b") == digests
    assert manifest["seed"] == SEED


def test_different_seed_gives_different_files(out, tmp_path):
    generate(tmp_path / "c", PROVIDERS, DAYS, seed=SEED + 1, start=START, as_of=AS_OF)
    mine, theirs = _digests(out), _digests(tmp_path / "c")
    assert mine["personnel.jsonl"] != theirs["personnel.jsonl"]
    assert mine["slots.jsonl"] != theirs["slots.jsonl"]


def test_manifest_describes_the_files(out, data):
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["seed"], manifest["providers"], manifest["days"]) == (SEED, PROVIDERS, DAYS)
    assert manifest["start"] == START.isoformat()
    assert manifest["end"] == (START + dt.timedelta(days=DAYS - 1)).isoformat()
    assert dt.datetime.fromisoformat(manifest["as_of"]) == AS_OF
    assert manifest["generator_version"]
    assert manifest["rows"] == {name: len(recs) for name, recs in data.items()}


def test_every_record_meets_the_contract_in_contract_order(data):
    for name, records in data.items():
        entity = ENTITIES[name]
        assert records, f"{name} is empty"
        for i, rec in enumerate(records, 1):
            check_record(entity, rec, f"{entity.file_name}:{i}")
            assert tuple(rec) == entity.field_names, f"{entity.file_name}:{i} keys out of contract order"


def test_exactly_n_people_plus_one_placeholder_per_department(data):
    people = [p for p in data["personnel"] if not p["is_placeholder"]]
    placeholders = [p for p in data["personnel"] if p["is_placeholder"]]
    assert len(people) == PROVIDERS
    assert len(placeholders) == len(data["departments"])
    for ph in placeholders:
        assert ph["first_name"] is None and ph["emp_id"] is None
        assert ph["last_name"].endswith("On Call")
        assert ph["pager"] or ph["cell_phone"]
    assert {p["personnel_type"] for p in people} >= {"Physician", "CRNA", "Resident", "Exempt", "Non-Exempt"}
    assert any(p["emp_id"] is None or p["unique_id"] is None for p in people)  # people without a vendor id
    assert any(not p["active"] for p in people)


def test_crnas_are_in_anesthesiology(data, idx):
    for p in data["personnel"]:
        if p["personnel_type"] == "CRNA":
            assert idx["departments"][p["department_ids"][0]]["name"].startswith("Anesthesiology - ")


def test_facilities_span_time_zones_including_phoenix(data):
    zones = {d["timezone"] for d in data["departments"]}
    assert {"America/Chicago", "America/Phoenix"} <= zones
    for d in data["departments"]:
        assert d["coid"].startswith("COID-")
        assert " - " in d["name"]
    assert len(data["departments"]) >= PROVIDERS // 15


def test_slots_have_overnight_24_hour_and_unfilled(data, idx):
    slots = data["slots"]
    assert any(s["end_time"] < s["start_time"] for s in slots), "no overnight slot"
    assert any(s["end_time"] == s["start_time"] for s in slots), "no 24-hour slot"
    unfilled = sum(s["personnel_id"] is None for s in slots)
    assert 0.01 <= unfilled / len(slots) <= 0.05
    by_placeholder = [
        s for s in slots if s["personnel_id"] and idx["personnel"][s["personnel_id"]]["is_placeholder"]
    ]
    assert by_placeholder
    assert all(idx["assignments"][s["assignment_id"]]["assignment_type"] == "Call" for s in by_placeholder)
    assert {a["assignment_type"] for a in data["assignments"]} == {"Call", "Shift", "Admin", "Off"}
    assert any(s["notes"] for s in slots)


def test_slots_fill_by_personnel_type(data, idx):
    """CRNA slots go to CRNAs and resident slots to residents."""
    for s in data["slots"]:
        name = idx["assignments"][s["assignment_id"]]["name"]
        if s["personnel_id"] is None:
            continue
        ptype = idx["personnel"][s["personnel_id"]]["personnel_type"]
        if name.startswith("CRNA"):
            assert ptype == "CRNA", s
        if name.startswith("Resident") or name == "Night Float":
            assert ptype == "Resident", s


def test_slot_dates_span_exactly_the_days_from_start(data):
    dates = sorted({s["date"] for s in data["slots"]})
    assert dates == [(START + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]


def test_slots_are_ordered_by_date_and_strictly_increasing_id(data):
    keys = [(s["date"], s["id"]) for s in data["slots"]]
    assert keys == sorted(keys)
    ids = [s["id"] for s in data["slots"]]
    assert all(a < b for a, b in zip(ids, ids[1:]))


def test_referential_integrity(data, idx):
    for p in data["personnel"]:
        assert p["department_ids"] and all(d in idx["departments"] for d in p["department_ids"])
    for a in data["assignments"]:
        assert a["department_id"] in idx["departments"]
    for s in data["slots"]:
        assignment = idx["assignments"][s["assignment_id"]]
        schedule = idx["schedules"][s["schedule_id"]]
        assert assignment["department_id"] == schedule["department_id"]
        assert schedule["start_date"] <= s["date"] <= schedule["end_date"]
        assert s["personnel_id"] is None or s["personnel_id"] in idx["personnel"]
    for r in data["requests"]:
        assert r["personnel_id"] in idx["personnel"]
    for t in data["tallies"]:
        assert t["personnel_id"] in idx["personnel"]


def test_inactive_assignments_have_no_slots_after_they_stopped(data, idx):
    inactive = {a["id"]: a for a in data["assignments"] if not a["active"]}
    assert inactive
    for s in data["slots"]:
        if s["assignment_id"] in inactive:
            stopped = dt.datetime.fromisoformat(inactive[s["assignment_id"]]["updated_at"])
            assert s["date"] <= stopped.date().isoformat()


def test_schedules_are_monthly_published_then_draft(data):
    horizon = (AS_OF.date() + dt.timedelta(days=35)).isoformat()
    statuses = set()
    for s in data["schedules"]:
        first = dt.date.fromisoformat(s["start_date"])
        assert first.day == 1
        next_first = (first + dt.timedelta(days=32)).replace(day=1)
        assert dt.date.fromisoformat(s["end_date"]) == next_first - dt.timedelta(days=1)
        assert s["version"] >= 1
        statuses.add(s["status"])
        if s["start_date"] <= horizon:
            assert s["status"] == "published"
            assert dt.datetime.fromisoformat(s["published_at"]) <= AS_OF
        else:
            assert s["status"] == "draft" and s["published_at"] is None
    assert statuses == {"published", "draft"}


def test_requests_in_all_statuses_with_ordered_timestamps(data):
    assert {r["status"] for r in data["requests"]} == {"approved", "pending", "denied"}
    assert {"Vacation", "Day Off", "Conference"} <= {r["request_type"] for r in data["requests"]}
    for r in data["requests"]:
        assert r["start_date"] <= r["end_date"]
        created, updated = (dt.datetime.fromisoformat(r[k]) for k in ("created_at", "updated_at"))
        assert created <= updated <= AS_OF


def test_nothing_is_timestamped_after_as_of(data):
    for name, records in data.items():
        stamps = [f.name for f in ENTITIES[name].fields if f.type == "timestamp"]
        for rec in records:
            for field in stamps:
                if rec[field] is not None:
                    assert dt.datetime.fromisoformat(rec[field]) <= AS_OF, (name, rec)


def test_change_log_is_ordered_and_consistent_with_slots(data, idx):
    log = data["change_log"]
    assert [c["id"] for c in log] == list(range(1, len(log) + 1))
    instants = [dt.datetime.fromisoformat(c["changed_at"]) for c in log]
    assert all(a < b for a, b in zip(instants, instants[1:]))
    assert instants[-1] <= AS_OF
    slots = {s["id"]: s for s in data["slots"]}
    actions = collections.Counter((c["entity"], c["action"]) for c in log)
    assert actions[("schedule", "create")] == len(data["schedules"])
    assert actions[("schedule", "publish")] >= sum(s["status"] == "published" for s in data["schedules"])
    assert actions[("slot", "update")] and actions[("personnel", "update")]
    for c in log:
        if c["entity"] == "slot":
            slot = slots[c["entity_id"]]
            assert (c["schedule_id"], c["date"]) == (slot["schedule_id"], slot["date"])
            assert c["field"] == "personnel_id" and c["old_value"] != c["new_value"]
            final = slot["personnel_id"]
            assert c["new_value"] == (None if final is None else str(final))
            assert idx["schedules"][slot["schedule_id"]]["status"] == "published"
            assert slot["updated_at"] == c["changed_at"]
        else:
            assert c["schedule_id"] is None and c["date"] is None
        for value in (c["old_value"], c["new_value"]):
            assert value is None or isinstance(value, str)


def test_few_double_bookings_and_vacation_conflicts(data, idx):
    """Coverage checks downstream look for both; a realistic schedule has a handful, not many."""
    worked = collections.defaultdict(list)
    for s in data["slots"]:
        person = idx["personnel"].get(s["personnel_id"])
        kind = idx["assignments"][s["assignment_id"]]["assignment_type"]
        if person and not person["is_placeholder"] and kind != "Off":
            worked[s["personnel_id"]].append(_interval(s, idx) + (s["date"],))
    doubles = 0
    for intervals in worked.values():
        intervals.sort()
        latest_end = float("-inf")
        for start, end, _ in intervals:
            doubles += start < latest_end
            latest_end = max(latest_end, end)
    approved = collections.defaultdict(list)
    for r in data["requests"]:
        if r["status"] == "approved":
            approved[r["personnel_id"]].append((r["start_date"], r["end_date"]))
    on_vacation = sum(
        any(a <= day <= b for a, b in approved[pid])
        for pid, intervals in worked.items()
        for _, _, day in intervals
    )
    total = sum(len(v) for v in worked.values())
    assert 1 <= doubles <= 10 and doubles / total < 0.005
    assert 1 <= on_vacation <= 10


@pytest.mark.parametrize(
    "month, day",
    [
        (("2026-10-01", "2026-10-31"), "2026-10-31"),  # its night is the fall-back night
        (("2026-11-01", "2026-11-30"), "2026-11-26"),  # Thanksgiving
    ],
)
def test_tallies_match_the_slots_of_one_person(data, idx, month, day):
    """Count one month by hand for the busiest person working `day` outside Phoenix."""
    mine = collections.defaultdict(list)
    for s in data["slots"]:
        if s["personnel_id"] and month[0] <= s["date"] <= month[1]:
            mine[s["personnel_id"]].append(s)

    def kind(s):
        return idx["assignments"][s["assignment_id"]]["assignment_type"]

    def zone(s):
        return idx["departments"][idx["assignments"][s["assignment_id"]]["department_id"]]["timezone"]

    candidates = [
        pid for pid, slots in mine.items()
        if not idx["personnel"][pid]["is_placeholder"]
        and any(s["date"] == day and kind(s) != "Off" and s["end_time"] <= s["start_time"]
                and zone(s) != "America/Phoenix" for s in slots)
    ]
    assert candidates, f"nobody works the night of {day} outside Phoenix"
    pid = max(candidates, key=lambda p: (sum(kind(s) == "Call" for s in mine[p]), len(mine[p]), p))
    worked = [s for s in mine[pid] if kind(s) != "Off"]
    expected = {
        "Calls": sum(kind(s) == "Call" for s in worked),
        "Weekend Days": len({s["date"] for s in worked if dt.date.fromisoformat(s["date"]).weekday() >= 5}),
        "Holidays": len({s["date"] for s in worked if s["date"] in HOLIDAYS}),
        "Total Hours": round(sum(e - b for b, e in (_interval(s, idx) for s in worked)) / 3600, 2),
        "Days Off": len(mine[pid]) - len(worked),
    }
    got = {
        t["tally_name"]: t["value"]
        for t in data["tallies"]
        if t["personnel_id"] == pid and t["period_start"] == month[0]
    }
    assert got == expected
    assert {t["period_end"] for t in data["tallies"] if t["period_start"] == month[0]} == {month[1]}
    if day in HOLIDAYS:
        assert got["Holidays"] >= 1
    else:  # the DST night makes real hours differ from wall-clock hours
        wall = sum((int(s["end_time"][:2]) - int(s["start_time"][:2])) % 24 or 24 for s in worked)
        minutes = sum((int(s["end_time"][3:]) - int(s["start_time"][3:])) for s in worked) / 60
        assert got["Total Hours"] != round(wall + minutes, 2)


def test_dst_nights_count_real_hours():
    """A 17:00-07:00 Chicago call is 15 h on the fall-back night and 14 h on any other."""
    tz = ZoneInfo("America/Chicago")

    def hours(day):
        start = dt.datetime.combine(day, dt.time(17), tz)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(7), tz)
        return (end.timestamp() - start.timestamp()) / 3600

    assert hours(dt.date(2026, 10, 31)) == 15 and hours(dt.date(2026, 10, 30)) == 14


def test_view_settings_name_existing_departments(data, idx):
    assert 3 <= len(data["view_settings"]) <= 10
    for v in data["view_settings"]:
        assert all(d in idx["departments"] for d in v["settings"]["filters"]["department_ids"])


def test_defaults_follow_the_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("LB_NOW", "2027-02-10T12:00:00-07:00")
    manifest = generate(tmp_path / "d", 20, 8, seed=3)
    assert manifest["as_of"] == "2027-02-10T12:00:00-07:00"
    assert manifest["start"] == "2027-02-08"  # as_of's date minus days // 4
    assert manifest["end"] == "2027-02-15"


def test_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="providers"):
        generate(tmp_path, 3, 10, as_of=AS_OF)
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path, 50, 0, as_of=AS_OF)
    with pytest.raises(ValueError, match="offset"):
        generate(tmp_path, 50, 5, as_of=dt.datetime(2026, 11, 22, 7))


def test_cli_writes_and_summarises(tmp_path, capsys):
    main(["--out", str(tmp_path / "e"), "--providers", "30", "--days", "10", "--seed", "5",
          "--start", "2026-11-01", "--as-of", "2026-11-05T08:00:00-05:00"])
    line = capsys.readouterr().out.strip()
    assert "slots=" in line and "personnel=" in line and line.endswith(" s")
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["start"] == "2026-11-01" and manifest["as_of"] == "2026-11-05T08:00:00-05:00"
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "f"), "--providers", "30", "--days", "10",
              "--as-of", "2026-11-05T08:00:00"])


def test_output_does_not_depend_on_hash_randomisation(out, tmp_path):
    """Another process with another PYTHONHASHSEED writes the same bytes."""
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-m", "lb_pipelines.lightning_bolt.generator", "--out", str(tmp_path / "g"),
         "--providers", str(PROVIDERS), "--days", str(DAYS), "--seed", str(SEED),
         "--start", START.isoformat(), "--as-of", AS_OF.isoformat()],
        check=True, env=env, capture_output=True,
    )
    assert _digests(tmp_path / "g") == _digests(out)
