"""No provider name, phone number or e-mail reaches Dagster's run storage.

Run storage (event logs with asset and check metadata, log lines, step errors, compute logs)
is kept for good and shown to anyone who reaches the UI. The bundled sample goes through the
main job and the pay-period job as `make run` runs them (the session's `sample_make_run`), and then every file under
DAGSTER_HOME is searched, byte for byte, for the sample's names, phone numbers and e-mails.
"""

from __future__ import annotations

import json

from lb_pipelines import settings

SAMPLE = settings.REPO_ROOT / "data" / "sample"
# A pager of four digits is an extension that also occurs as a slot id or a count, so only
# numbers of seven characters or more are searched (every cell phone, written `602-555-4353`).
SHORTEST_NUMBER = 7


def personal_values() -> set[str]:
    """The sample's e-mails, phone numbers, and people's names as the Epic file writes them
    ("First Last"; placeholders are teams, such as "Cardiology On Call", not people)."""
    values: set[str] = set()
    for line in (SAMPLE / "personnel.jsonl").read_text().splitlines():
        person = json.loads(line)
        if person["email"]:
            values.add(person["email"])
        for number in (person["pager"], person["cell_phone"]):
            if number and len(number) >= SHORTEST_NUMBER:
                values.add(number)
        if not person["is_placeholder"]:
            values.add(" ".join(n for n in (person["first_name"], person["last_name"]) if n))
    return values


def needles(value: str) -> set[bytes]:
    """`value` as UTF-8 and as JSON writes it (Dagster stores metadata as JSON text)."""
    return {value.encode("utf-8"), json.dumps(value)[1:-1].encode("ascii")}


def test_run_storage_holds_no_names_phones_or_emails(sample_make_run: dict):
    assert sample_make_run["exit_code"] == 0, "the sample run failed"
    home, summary = sample_make_run["dagster_home"], sample_make_run["summary"]
    assert summary["pay_period"] and len(summary["run_ids"]) == 2  # both jobs ran
    # The sample's people really went out (so the search below is not vacuous).
    [epic_file] = (sample_make_run["outbox"] / "epic_on_call_finder").glob("*.csv")
    values = personal_values()
    sent = epic_file.read_bytes()
    assert sum(value.encode() in sent for value in values) > 20

    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files)  # the SQLite run and event storage
    found = {}
    for path in files:
        content = path.read_bytes()
        hits = sorted(v for v in values if any(n in content for n in needles(v)))
        if hits:
            found[str(path.relative_to(home))] = hits[:5] + ([f"... {len(hits)} in all"] if len(hits) > 5 else [])
    assert found == {}
