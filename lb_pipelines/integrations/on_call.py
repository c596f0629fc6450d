"""The on-call engine: who is on call now, and next, for each mapped (vendor, team, role).

One rule, shared by every secure-messaging adapter and the on-call feed. Its rows come from each
vendor's export model (the dbt macro `on_call_rows`: one row per published slot of a mapped
assignment x mapping row, with real instants); the moment ("now", the pinned clock) is applied
here, in SQL, when a push is built or a feed request is answered:

- an entry is on call at `now` when `start_at <= now < end_at`: the handover is at the exact
  instant (07:00 belongs to the next person), across midnight and daylight saving alike;
- a team's list is the entries not yet ended, up to the window's last day: first those on call
  now, by call order (the mapping's `priority`: 1 = first call), then the following ones by
  start, then call order;
- a placeholder is an entry with its contact details (no vendor user id); an unfilled slot is a
  gap: never an entry, counted (and the feed says nobody);
- a person without the vendor's id, unknown or inactive, is a problem row, never an entry.

Each vendor is one integration folder declared with
`on_call_push`; its mapping is `assignment_id, team_id, role, priority` (the vendor is the folder).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, get_args

import duckdb
from pydantic import Field

from lb_pipelines import settings as paths
from lb_pipelines.delivery.settings import PushDelivery
from lb_pipelines.integrations.config_tables import SETTINGS_TABLE, mapping_table
from lb_pipelines.integrations.declaration import DOCS_DIR, ApiPush, Triggers
from lb_pipelines.integrations.exporting import person_problems_sql, problems_from
from lb_pipelines.integrations.pushing import Desired, DesiredState, content_hash
from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PersonnelIdField,
    WindowSettings,
)

# ---------------------------------------------------------------------------------------------
# Settings and mapping every secure-messaging vendor shares


class OnCallMappingRow(MappingRow):
    """Which team (or group) and role an assignment's slots are on call for, in which call order.
    One assignment may feed several teams or roles (one row each)."""

    team_id: NonEmptyStr  # the vendor's team, group or site id
    role: NonEmptyStr  # the on-call role as the vendor names it ("Attending", "First Call")
    priority: int = Field(1, ge=1, le=99)  # call order within the team: 1 = first call


class BackgroundUserDelivery(PushDelivery):
    """A vendor API reached by signing in as the background user created for Lightning Bolt in the
    vendor's platform (its username and password are environment variables' names)."""

    base_url: Optional[str] = None  # the vendor's API root, e.g. https://<host>/api
    username_env: Optional[str] = None  # the environment variable holding the background user's name
    password_env: Optional[str] = None  # ... and its password
    max_in_flight: int = Field(2, ge=1, le=16)  # requests at once per team

    def connection_keys(self) -> tuple[str, ...]:
        return ("base_url", "username_env", "password_env")


class OnCallSettings(CommonSettings):
    """The settings of a secure-messaging vendor: every 10 minutes (a reconcile) and on change; the
    lists run from now to the end of the window's last day (`days_back` does not apply: an entry
    that has not ended is on the list whatever day it started)."""

    cadence: str = "*/10 * * * *"
    window: WindowSettings = WindowSettings(days_back=0, days_forward=7)
    delivery: BackgroundUserDelivery = BackgroundUserDelivery()

    @property
    def change_days_back(self) -> int:
        # A slot that started yesterday may be on call now (a slot lasts at most 24 hours).
        return max(1, self.window.days_back)


PERSONNEL_ID_FIELDS = frozenset(get_args(PersonnelIdField))

# ---------------------------------------------------------------------------------------------
# The rule

# One vendor's rows with the vendor's user id (from the field the settings name, `{id}`: a
# validated column name) and what becomes of each row.
VENDOR_ROWS_SQL = """
SELECT rows.*, assignments.assignment_name,
    nullif(trim(rows.{id}), '') AS vendor_user_id,
    CASE WHEN rows.outcome = 'deliver' AND rows.person_status = 'filled' AND nullif(trim(rows.{id}), '') IS NULL
         THEN 'person_without_vendor_id' ELSE rows.outcome END AS file_outcome
FROM exports.{model} AS rows
LEFT JOIN marts.dim_assignments AS assignments ON assignments.assignment_id = rows.assignment_id
"""

# The rule itself, over rows of one or more vendors ({rows} has a `vendor` column): the entries
# not ended at $now whose slot starts by the window's last day ($days_forward days after today in
# the slot's zone), each with whether it is on call now and its position in its team's list
# (counted over the rows {listed} keeps: a vendor's list, or the feed's, which shows gaps too).
ENTRIES_SQL = """
SELECT *,
    start_at <= $now AND $now < end_at AS on_call_now,
    row_number() OVER (
        PARTITION BY vendor, team_id
        ORDER BY start_at <= $now DESC,
                 CASE WHEN start_at <= $now THEN call_order END,
                 start_at, call_order, role, slot_id, mapping_line
    ) AS position
FROM ({rows})
WHERE end_at > $now
  AND slot_date <= CAST(timezone(time_zone, $now) AS DATE) + $days_forward
  AND {listed}
"""
# What goes on a vendor's list: a filled slot with the vendor's id, or a placeholder.
ON_LIST = "file_outcome = 'deliver'"
# The feed, read by people, also says when nobody is there, and lists a person this vendor has no
# id for (still the one to call): only unknown and inactive people are left off.
ON_FEED = "file_outcome IN ('deliver', 'coverage_gap', 'person_without_vendor_id')"
PROBLEM_RECORD = "'slot ' || slot_id || ' (team ' || team_id || ', ' || role || ')'"
PROBLEM_ORDER = "team_id, start_at, slot_id, mapping_line"
ENTRY_COLUMNS = (
    "team_id, role, call_order, position, on_call_now, slot_id, assignment_id, assignment_name, time_zone, "
    "start_at, end_at, local_start_at, local_end_at, person_status, personnel_id, vendor_user_id, "
    "display_name, pager, cell_phone"
)


def vendor_rows_sql(slug: str, id_field: str) -> str:
    """One vendor's rows, with its vendor column (`id_field` is a validated column name)."""
    return f"SELECT '{slug}' AS vendor, * FROM ({VENDOR_ROWS_SQL.format(id=id_field, model=f'export_{slug}')})"


@dataclass(frozen=True)
class Entry:
    """One line of a team's on-call list."""

    team_id: str
    role: str
    call_order: int
    position: int  # 1-based, in the team's list
    on_call_now: bool
    slot_id: int
    assignment_id: int
    assignment_name: Optional[str]
    time_zone: str
    start_at: dt.datetime
    end_at: dt.datetime
    local_start_at: dt.datetime
    local_end_at: dt.datetime
    person_status: str  # filled | placeholder
    personnel_id: Optional[int]
    vendor_user_id: Optional[str]  # personal: the vendor's id of the person
    display_name: Optional[str]  # personal (a placeholder's name is its contact label)
    pager: Optional[str]
    cell_phone: Optional[str]

    @property
    def is_placeholder(self) -> bool:
        return self.person_status == "placeholder"


@dataclass
class OnCallLists:
    """Every mapped team's list at a moment, and what was left off it."""

    entries: dict[str, list[Entry]]  # team id -> its entries in list order (every mapped team, maybe empty)
    problems: list
    gaps: list[tuple[str, int, dt.datetime, bool]]  # (team, slot, start, on now): unfilled, nobody to call
    counts: dict[str, int] = field(default_factory=dict)


def on_call_lists(conn: duckdb.DuckDBPyConnection, slug: str, settings: OnCallSettings, now: dt.datetime) -> OnCallLists:
    """The engine for one vendor: each mapped team's list at `now` (the pinned clock)."""
    rows = vendor_rows_sql(slug, settings.personnel_id_field)
    entries_sql = ENTRIES_SQL.format(rows=rows, listed=ON_LIST)
    left_off_sql = ENTRIES_SQL.format(rows=rows, listed="NOT " + ON_LIST)  # gaps and problems, same moment
    params = {"now": now, "days_forward": settings.window.days_forward}
    teams = [t for (t,) in conn.execute(f"SELECT DISTINCT team_id FROM {mapping_table(slug)} ORDER BY 1").fetchall()]
    lists: dict[str, list[Entry]] = {t: [] for t in teams}
    for row in conn.execute(
        f"SELECT {ENTRY_COLUMNS} FROM ({entries_sql}) ORDER BY team_id, position", params
    ).fetchall():
        lists.setdefault(row[0], []).append(Entry(*row))
    gaps = [
        tuple(r) for r in conn.execute(
            f"""SELECT team_id, slot_id, start_at, on_call_now FROM ({left_off_sql})
                WHERE file_outcome = 'coverage_gap' ORDER BY team_id, start_at, slot_id""",
            params,
        ).fetchall()
    ]
    problems = problems_from(
        conn,
        person_problems_sql(left_off_sql, PROBLEM_RECORD, f"the {slug} user id", PROBLEM_ORDER),
        params | {"id_field": settings.personnel_id_field},
    )
    every = [e for team in lists.values() for e in team]
    counts = {
        "teams": len(lists),
        "entries": len(every),
        "on_call_now": sum(e.on_call_now for e in every),
        "placeholder_entries": sum(e.is_placeholder for e in every),
        "coverage_gaps": len(gaps),
        "coverage_gaps_now": sum(1 for g in gaps if g[3]),
        "teams_with_nobody_now": sum(1 for t in lists.values() if not any(e.on_call_now for e in t)),
    }
    return OnCallLists(lists, problems, gaps, counts)


# ---------------------------------------------------------------------------------------------
# One replace-per-team list as the desired state (PerfectServe, Amtelco, Voalte, Epic Secure Chat, Vocera)


def utc_text(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_body(entry: Entry, user_key: str = "user_id") -> dict[str, Any]:
    """An entry as the team-list vendors receive it: the person by the vendor's id, or a
    placeholder by its contact details."""
    body: dict[str, Any] = {
        "position": entry.position,
        "role": entry.role,
        "call_order": entry.call_order,
        "assignment_id": entry.assignment_id,
        "start": utc_text(entry.start_at),
        "end": utc_text(entry.end_at),
        "time_zone": entry.time_zone,
    }
    if entry.is_placeholder:
        body["placeholder"] = {"name": entry.display_name, "pager": entry.pager, "phone": entry.cell_phone}
    else:
        body[user_key] = entry.vendor_user_id
    return body


def team_label(team_id: str) -> str:
    return f"team {team_id}"


def team_lists(
    conn: duckdb.DuckDBPyConnection, slug: str, settings: OnCallSettings, now: dt.datetime,
    body_of: Callable[[str, list[Entry]], dict[str, Any]],
) -> DesiredState:
    """One object per mapped team: its whole list, replaced at once (`body_of(team, entries)` is the
    vendor's body). A team with nobody on its list gets an empty list, which still replaces."""
    found = on_call_lists(conn, slug, settings, now)
    objects = []
    for team, entries in found.entries.items():
        body = body_of(team, entries)
        objects.append(Desired(team, team, body, content_hash(body), team_label(team)))
    return DesiredState(
        objects=objects, problems=found.problems, counts=found.counts,
        # A list has no start and the span is empty: nothing is ever ours to delete (a team no
        # longer mapped keeps what it was last sent; the vendor's own team stays).
        span=(now, now), read_range=None, targets=frozenset(found.entries),
    )


# ---------------------------------------------------------------------------------------------
# The declaration


@dataclass(frozen=True, kw_only=True)
class OnCallPush(ApiPush):
    """A secure-messaging vendor: an API push whose rows are the on-call engine's (its export model
    is `{{ on_call_rows(source(slug, 'mapping')) }}`); the feed serves every one of them.
    `publishes_documents`: the vendor polls instead of being pushed to, so its push writes one
    document per team into `published_teams_dir(slug)`, which the feed serves at
    `/<slug>/teams/<team_id>.json`."""

    publishes_documents: bool = False

    @property
    def docs_path(self) -> Path:
        return DOCS_DIR / "secure_messaging.md"  # one page for the six vendors: one engine, one section each


def on_call_push(
    *, slug: str, title: str, description: str, desired: Callable[..., DesiredState], adapter: Callable[..., Any],
    settings_model: type[OnCallSettings] = OnCallSettings, personal_preview_columns: frozenset[str] = frozenset(),
    publishes_documents: bool = False,
) -> OnCallPush:
    return OnCallPush(
        slug=slug, title=title, description=description,
        settings_model=settings_model, mapping_row_model=OnCallMappingRow,
        models=(f"export_{slug}",), triggers=Triggers(cadence=True, change_log=True),
        desired=lambda conn, settings, occasion: desired(conn, settings, occasion.now),
        adapter=adapter, personal_preview_columns=personal_preview_columns,
        publishes_documents=publishes_documents,
    )


SAFE_TEAM = re.compile(r"^[A-Za-z0-9._-]{1,100}$")  # a team id that is safe as a file name and in a URL


def published_teams_dir(slug: str) -> Path:
    """Where a polled vendor's team documents are published (the feed service serves this folder)."""
    return paths.outbox_dir() / slug / "teams"


def on_call_integrations() -> list[OnCallPush]:
    from lb_pipelines.integrations.registry import integrations

    return [i for i in integrations().values() if isinstance(i, OnCallPush)]


# ---------------------------------------------------------------------------------------------
# The feed: every vendor's lists, from the BI copy


def _tables(conn: duckdb.DuckDBPyConnection) -> set[str]:
    """Every table and view of the database, as schema.name (one query: the feed asks per request)."""
    return {f"{schema}.{name}" for schema, name in conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
    ).fetchall()}


def feed_rows_sql(conn: duckdb.DuckDBPyConnection, tables: Optional[set[str]] = None) -> Optional[str]:
    """Every enabled vendor's rows as one relation, each with the user id its settings name (None
    when no vendor is on)."""
    tables = _tables(conn) if tables is None else tables
    if SETTINGS_TABLE not in tables:
        return None
    id_fields = dict(conn.execute(
        f"""SELECT integration, json_extract_string(settings, '$.personnel_id_field')
            FROM {SETTINGS_TABLE} WHERE enabled"""
    ).fetchall())
    parts = [
        vendor_rows_sql(declared.slug, id_fields[declared.slug])
        for declared in on_call_integrations()
        if id_fields.get(declared.slug) in PERSONNEL_ID_FIELDS and f"exports.export_{declared.slug}" in tables
    ]
    return " UNION ALL BY NAME ".join(parts) if parts else None


FEED_COLUMNS = f"vendor, file_outcome, {ENTRY_COLUMNS}"
# The entries of a local day: those overlapping [00:00, next 00:00) on the slot's own clock, in
# start order, "on call now" meaning at the day's 00:00.
DAY_SQL = """
SELECT *,
    start_at <= timezone(time_zone, $day::TIMESTAMP) AND timezone(time_zone, $day::TIMESTAMP) < end_at AS on_call_now,
    row_number() OVER (PARTITION BY vendor, team_id ORDER BY start_at, call_order, role, slot_id, mapping_line)
        AS position
FROM ({rows})
WHERE start_at < timezone(time_zone, ($day + 1)::TIMESTAMP) AND end_at > timezone(time_zone, $day::TIMESTAMP)
  AND {listed}
"""


def feed_entries(
    conn: duckdb.DuckDBPyConnection, now: dt.datetime, *, day: Optional[dt.date] = None,
    team: Optional[str] = None, vendor: Optional[str] = None,
) -> list[dict[str, Any]]:
    """The feed's answer, by the same rule: without `day`, who is on call at `now` in every team
    (gaps included, with nobody); with `day`, every entry (and gap) overlapping that local day."""
    rows = feed_rows_sql(conn)
    if rows is None:
        return []
    where = ["true"]
    params: dict[str, Any] = {}
    if day is None:
        sql = ENTRIES_SQL.format(rows=rows, listed=ON_FEED)
        params |= {"now": now, "days_forward": 0}
        where.append("on_call_now")
    else:
        sql = DAY_SQL.format(rows=rows, listed=ON_FEED)
        params["day"] = day
    for name, value in (("team_id", team), ("vendor", vendor)):
        if value is not None:
            where.append(f"{name} = ${name}")
            params[name] = value
    names = [c.strip() for c in FEED_COLUMNS.split(",")]
    found = conn.execute(
        f"SELECT {FEED_COLUMNS} FROM ({sql}) WHERE {' AND '.join(where)} ORDER BY vendor, team_id, position", params
    ).fetchall()
    return [dict(zip(names, r)) for r in found]


def feed_teams(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every (vendor, team) an enabled vendor maps: the feed lists a team with nobody on call too."""
    tables = _tables(conn)
    if SETTINGS_TABLE not in tables:
        return []
    enabled = {s for (s,) in conn.execute(f"SELECT integration FROM {SETTINGS_TABLE} WHERE enabled").fetchall()}
    teams: list[tuple[str, str]] = []
    for declared in on_call_integrations():
        table = mapping_table(declared.slug)
        if declared.slug in enabled and table in tables:
            teams += [(declared.slug, t) for (t,) in conn.execute(f"SELECT DISTINCT team_id FROM {table} ORDER BY 1").fetchall()]
    return teams
