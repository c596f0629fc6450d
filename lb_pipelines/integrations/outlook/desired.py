"""What each Outlook calendar should hold: one event per published mapped slot of a person with a mailbox.

The rules stay in SQL (the export model and the window); this module turns the rows into events.
A person without a mailbox id has opted out: counted, not a problem.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import duckdb

from lb_pipelines.integrations.exporting import IN_WINDOW, problems_from
from lb_pipelines.integrations.pushing import Desired, DesiredState, content_hash

SLUG = "outlook"
SLOT_PROPERTY = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name lbSlotId"
CATEGORY = "Lightning Bolt"
# Every transactionId is this namespace's UUID of (slot, mailbox, content): a retried create is the
# same transaction, while the same slot created again later (after a delete) is a new one.
TRANSACTION_NAMESPACE = uuid.UUID("0b6c2f1e-5d3a-4c39-9a57-6c1f0e2b8d41")

ROWS_SQL = """
SELECT *, nullif(trim({id}), '') AS mailbox,
    CASE WHEN outcome = 'deliver' AND nullif(trim({id}), '') IS NULL THEN 'opted_out' ELSE outcome END AS push_outcome
FROM exports.export_outlook
WHERE {which}
"""

# The window as instants: from the first day's midnight in the zone where it comes first, to the
# day after the last day at midnight where that comes last. Undesired events starting inside are ours
# to delete; the reconcile reads a day more on each side, so events across an edge are seen too.
SPAN_SQL = """
SELECT min(timezone(time_zone, CAST(CAST(timezone(time_zone, $now) AS DATE) - $days_back AS TIMESTAMP))),
       max(timezone(time_zone, CAST(CAST(timezone(time_zone, $now) AS DATE) + $days_forward + 1 AS TIMESTAMP)))
FROM (SELECT DISTINCT time_zone FROM exports.export_outlook)
"""


def event(row: dict) -> dict:
    """The Graph event of one slot, as created (the update sends the same minus the create-only keys)."""
    return {
        "subject": row["subject"] or "",
        "body": {"contentType": "text", "content": row["body"] or ""},
        "start": {"dateTime": row["start_utc"], "timeZone": "UTC"},
        "end": {"dateTime": row["end_utc"], "timeZone": "UTC"},
        "showAs": row["show_as"],
        "categories": [CATEGORY],
    }


def controlled(evt: dict) -> dict:
    """The keys the push controls, in one canonical form (so what Graph gives back hashes the same)."""
    body = evt.get("body") or {}
    return {
        "subject": evt.get("subject") or "",
        "body": "\n".join(line.rstrip() for line in (body.get("content") or "").replace("\r\n", "\n").strip().split("\n")),
        "start": utc_text(evt.get("start")),
        "end": utc_text(evt.get("end")),
        "showAs": evt.get("showAs"),
        "categories": sorted(evt.get("categories") or []),
    }


def utc_text(when: dict | None) -> str | None:
    """Graph's {dateTime, timeZone} as UTC `YYYY-MM-DDTHH:MM:SS` (Graph adds fractions: 08:00:00.0000000)."""
    if not when or not when.get("dateTime"):
        return None
    text = when["dateTime"].rstrip("Z")
    main, _, fraction = text.partition(".")
    moment = dt.datetime.fromisoformat(main)
    zone = when.get("timeZone") or "UTC"
    if moment.tzinfo is None and zone not in ("UTC", "Etc/UTC"):
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def desired_events(conn: duckdb.DuckDBPyConnection, settings, now: dt.datetime) -> DesiredState:
    id_field = settings.personnel_id_field  # one of a fixed list of column names (validated)
    window = settings.window
    params = {"now": now, "days_back": window.days_back, "days_forward": window.days_forward}
    rows_sql = ROWS_SQL.format(id=id_field, which=IN_WINDOW)
    # Slots outside the window: their events are history (yesterday's shift), left alone.
    keep = {
        (mailbox, str(slot_id))
        for mailbox, slot_id in conn.execute(
            f"""SELECT mailbox, slot_id FROM ({ROWS_SQL.format(id=id_field, which=f"NOT ({IN_WINDOW})")})
                WHERE push_outcome = 'deliver'""",
            params,
        ).fetchall()
    }
    cursor = conn.execute(
        f"""SELECT slot_id, personnel_id, mailbox, start_at, subject, body, show_as, start_utc, end_utc
            FROM ({rows_sql}) WHERE push_outcome = 'deliver' ORDER BY slot_id""",
        params,
    )
    names = [c[0] for c in cursor.description]
    objects: list[Desired] = []
    for values in cursor.fetchall():
        row = dict(zip(names, values))
        key = str(row["slot_id"])
        body = event(row)
        body["singleValueExtendedProperties"] = [{"id": SLOT_PROPERTY, "value": key}]
        hashed = content_hash(controlled(body))
        body["transactionId"] = str(uuid.uuid5(TRANSACTION_NAMESPACE, f"{key}|{row['mailbox']}|{hashed}"))
        objects.append(Desired(row["mailbox"], key, body, hashed, f"person {row['personnel_id']}, slot {key}",
                               row["start_at"]))
    # What made no event, in one pass: slots per outcome, and people per outcome (the opted out).
    left_out = {
        outcome: (slots, people)
        for outcome, slots, people in conn.execute(
            f"""SELECT push_outcome, count(*), count(DISTINCT personnel_id) FROM ({rows_sql})
                WHERE push_outcome IN ('opted_out', 'placeholder', 'coverage_gap') GROUP BY ALL""",
            params,
        ).fetchall()
    }
    # A person Lightning Bolt does not know, or no longer active (a person without a mailbox opted out).
    problems = problems_from(
        conn,
        f"""SELECT 'person_not_exportable', 'slot ' || slot_id, 'personnel_id', problem_reason
            FROM ({rows_sql}) WHERE push_outcome = 'problem' ORDER BY slot_id""",
        params,
    )
    span = conn.execute(SPAN_SQL, params).fetchone()
    span = (span[0], span[1]) if span and span[0] is not None else (now, now)
    return DesiredState(
        objects=objects,
        problems=problems,
        counts={
            "events_wanted": len(objects),
            "opted_out_people": left_out.get("opted_out", (0, 0))[1],
            "opted_out_slots": left_out.get("opted_out", (0, 0))[0],
            "placeholder_slots": left_out.get("placeholder", (0, 0))[0],
            "unfilled_slots": left_out.get("coverage_gap", (0, 0))[0],
        },
        keep=frozenset(keep),
        span=span,
        read_range=(span[0] - dt.timedelta(days=1), span[1] + dt.timedelta(days=1)),
    )
