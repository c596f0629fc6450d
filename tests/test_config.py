"""Integration configuration: each kind of mistake names its file, key (or line) and reason.

Settings and mapping files are written by hand into the test's LB_CONFIG_DIR; every expected
message is written out in full.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import duckdb
import pytest

from lb_pipelines.integrations.config_files import ConfigError, MappingProblem, load_mapping, load_settings
from lb_pipelines.integrations.registry import integration, load_integration
from lb_pipelines.integrations.edw.settings import EdwSettings
from lb_pipelines.integrations.epic_on_call_finder.settings import (
    EpicOnCallFinderMappingRow,
    EpicOnCallFinderSettings,
)
from lb_pipelines.integrations.kronos_wfd.settings import KronosWfdMappingRow, KronosWfdSettings
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.settings import DATA_DIR
from lb_pipelines.warehouse.raw_load import load_entity

OCF, WFD, EDW = "epic_on_call_finder", "kronos_wfd", "edw"
WFD_SETTINGS = """\
pay_period:
  anchor: 2026-01-04
valid_comments: [Scheduled, Call, Transfer]
"""
NOT_AN_INTEGER = "Input should be a valid integer, unable to parse string as an integer"
BAD_SEGMENT = "Input should be 'REQUIRED', 'TRANSFER' or 'BREAK' (got 'OVERTIME')"
OCF_HEADER = "assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order\n"
WFD_HEADER = (
    "assignment_id,segment_type,work_rule_transfer,pay_code_edit,open_shift,business_structure,"
    "cost_center_transfer,labor_categories,comment\n"
)


def write(lb_env: Path, integration: str, name: str, text: str) -> Path:
    path = lb_env / "config" / integration / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused(integration: str, model, lb_env: Path, text: str) -> tuple[Path, str]:
    file = write(lb_env, integration, "settings.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(integration, model)
    assert caught.value.file == file
    return file, str(caught.value)


# --- settings.yaml ------------------------------------------------------------------------------


def test_absent_folder_means_off(lb_env):
    assert load_settings(OCF, EpicOnCallFinderSettings) is None
    assert load_integration(OCF) is None


def test_defaults_of_each_integration(lb_env):
    write(lb_env, OCF, "settings.yaml", "enabled: true\n")
    ocf = load_settings(OCF, EpicOnCallFinderSettings)
    assert (ocf.cadence, ocf.window.days_back, ocf.window.days_forward) == ("*/5 * * * *", 1, 30)
    assert ocf.personnel_id_field == "custom1"
    assert ocf.delivery.type == "outbox" and ocf.alerts.to == []

    write(lb_env, WFD, "settings.yaml", WFD_SETTINGS)
    wfd = load_settings(WFD, KronosWfdSettings)
    assert (wfd.cadence, wfd.personnel_id_field) == ("0 6 * * *", "emp_id")
    assert (wfd.pay_period.anchor, wfd.pay_period.length_days) == (dt.date(2026, 1, 4), 14)
    assert wfd.labor_category_delimiter == "|"

    write(lb_env, EDW, "settings.yaml", "enabled: false\n")
    edw = load_settings(EDW, EdwSettings)
    assert (edw.cadence, edw.enabled) == ("0 2 * * *", False)


def test_a_partial_window_keeps_the_integrations_other_default(lb_env):
    write(lb_env, OCF, "settings.yaml", "window: {days_back: 3}\n")
    window = load_settings(OCF, EpicOnCallFinderSettings).window
    assert (window.days_back, window.days_forward) == (3, 30)


def test_unknown_keys_top_level_and_nested(lb_env):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, """\
        enabled: true
        cadance: "*/5 * * * *"
        window: {days_bak: 1, days_forward: 30}
        """)
    assert message.splitlines() == [f"{file}: window.days_bak: unknown key", f"{file}: cadance: unknown key"]


def test_wrong_types(lb_env):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, """\
        cadence: 5
        window: {days_back: abc, days_forward: 30}
        alerts: {to: someone@health.example.org}
        """)
    assert message.splitlines() == [
        f"{file}: cadence: Input should be a valid string (got 5)",
        f"{file}: window.days_back: {NOT_AN_INTEGER} (got 'abc')",
        f"{file}: alerts.to: Input should be a valid list (got 'someone@health.example.org')",
    ]


def test_missing_required_keys(lb_env):
    file, message = refused(WFD, KronosWfdSettings, lb_env, "pay_period: {length_days: 14}\n")
    assert message.splitlines() == [
        f"{file}: pay_period.anchor: required key is missing",
        f"{file}: valid_comments: required key is missing",
    ]


def test_bad_cron(lb_env):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, 'cadence: "61 * * * *"\n')
    assert message == f"{file}: cadence: '61 * * * *' is not a valid cron expression"


def test_bad_personnel_id_field(lb_env):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, "personnel_id_field: custom5\n")
    assert message == (
        f"{file}: personnel_id_field: Input should be 'unique_id', 'custom1', 'custom2', 'custom3', "
        "'custom4' or 'emp_id' (got 'custom5')"
    )


def test_negative_window(lb_env):
    text = "window: {days_back: -1, days_forward: 30}\n"
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, text)
    assert message == f"{file}: window.days_back: Input should be greater than or equal to 0 (got -1)"


SFTP = """\
delivery:
  type: sftp
  host: sftp.health.example.org
  username: lightningbolt
  known_hosts: /etc/lb/known_hosts
"""


def test_sftp_delivery_needs_exactly_one_credential(lb_env):
    reason = "give exactly one of password_env or key_path_env (names of environment variables)"
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, SFTP)
    assert message == f"{file}: delivery: {reason}"
    both = SFTP + "  password_env: OCF_SFTP_PASSWORD\n  key_path_env: OCF_SFTP_KEY\n"
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, both)
    assert message == f"{file}: delivery: {reason}"

    write(lb_env, OCF, "settings.yaml", SFTP + "  key_path_env: OCF_SFTP_KEY\n")
    delivery = load_settings(OCF, EpicOnCallFinderSettings).delivery
    assert (delivery.type, delivery.port, delivery.key_path_env) == ("sftp", 22, "OCF_SFTP_KEY")


def test_sftp_delivery_key_paths_name_what_the_user_wrote(lb_env):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, """\
        delivery:
          type: sftp
          username: lightningbolt
          known_hosts: /etc/lb/known_hosts
          pasword_env: OCF_SFTP_PASSWORD
        """)
    assert message.splitlines() == [
        f"{file}: delivery.host: required key is missing",
        f"{file}: delivery.pasword_env: unknown key",
    ]


def test_unknown_or_missing_delivery_type(lb_env):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, "delivery: {type: ftp}\n")
    assert message == f"{file}: delivery.type: 'ftp' is not one of 'outbox', 'dry_run', 'sftp', 'http'"
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, "delivery: {host: x}\n")
    assert message == f"{file}: delivery.type: required key is missing"


def test_bad_email_address(lb_env):
    text = "alerts: {to: [ok@health.example.org, pager-team]}\n"
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, text)
    assert message == f"{file}: alerts.to: 'pager-team' is not a plausible e-mail address"


def test_wfd_options_are_checked(lb_env):
    file, message = refused(WFD, KronosWfdSettings, lb_env, """\
        pay_period: {anchor: 2026-02-30, length_days: 40}
        valid_comments: []
        labor_category_delimiter: "||||"
        """)
    assert message.splitlines() == [
        f"{file}: pay_period.anchor: Input should be a valid date or datetime, "
        "day value is outside expected range (got '2026-02-30')",
        f"{file}: pay_period.length_days: Input should be less than or equal to 31 (got 40)",
        f"{file}: valid_comments: List should have at least 1 item after validation, not 0",
        f"{file}: labor_category_delimiter: String should have at most 3 characters (got '||||')",
    ]


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("", "(file)", "is empty; it needs at least the integration's required keys"),
        ("# only a comment\n", "(file)", "is empty; it needs at least the integration's required keys"),
        ("enabled: true\n  cadence: x\n", "line 2, column 10",
         "not valid YAML: mapping values are not allowed here"),
        ("- enabled\n", "(file)", "expected a mapping of settings keys, got list ['enabled']"),
        ("enabled: true\nenabled: false\n", "line 2, column 1",
         "not valid YAML: key 'enabled' is given twice"),
    ],
)
def test_empty_or_invalid_yaml(lb_env, text, key, reason):
    file, message = refused(OCF, EpicOnCallFinderSettings, lb_env, text)
    assert message == f"{file}: {key}: {reason}"


def test_present_folder_without_settings_yaml(lb_env):
    folder = lb_env / "config" / OCF
    folder.mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        load_settings(OCF, EpicOnCallFinderSettings)
    assert str(caught.value) == (
        f"{folder / 'settings.yaml'}: (file): not found; a folder in the config directory turns the "
        "integration on, so it needs a settings.yaml (remove the folder to turn the integration off)"
    )


# --- mapping.csv --------------------------------------------------------------------------------


def ocf_mapping(lb_env: Path, text: str):
    write(lb_env, OCF, "settings.yaml", "enabled: true\n")
    write(lb_env, OCF, "mapping.csv", text)
    return load_integration(OCF).mapping


def wfd_mapping(lb_env: Path, text: str):
    write(lb_env, WFD, "settings.yaml", WFD_SETTINGS)
    write(lb_env, WFD, "mapping.csv", text)
    return load_integration(WFD).mapping


def test_mapping_loads_typed_rows_one_to_many_with_bom_and_blank_lines(lb_env):
    file = lb_env / "config" / OCF / "mapping.csv"
    file.parent.mkdir(parents=True)
    (file.parent / "settings.yaml").write_text("enabled: true\n")
    file.write_bytes(
        b"\xef\xbb\xbf" + OCF_HEADER.encode() +
        b"2002,OCF-ANES-01,Anesthesiology,Attending,Home call,,2\r\n"
        b"\r\n"
        b'2002,OCF-OBANES-01,OB Anesthesia,Attending,"Epidurals, C-sections",Banner,\r\n'
    )
    mapping = load_integration(OCF).mapping
    assert mapping.problems == []
    assert [(r.assignment_id, r.epic_team_id, r.note_prefix, r.team_comment, r.call_order, r.mapping_line)
            for r in mapping.rows] == [
        (2002, "OCF-ANES-01", "Home call", None, 2, 2),
        (2002, "OCF-OBANES-01", "Epidurals, C-sections", "Banner", 1, 4),
    ]


def test_optional_columns_may_be_left_out(lb_env):
    mapping = ocf_mapping(lb_env, "epic_team_id,assignment_id\nOCF-EM-01,2019\n")
    assert [(r.assignment_id, r.role, r.call_order) for r in mapping.rows] == [(2019, None, 1)]


def test_mapping_header_missing_a_required_column_or_naming_an_unknown_one(lb_env):
    with pytest.raises(ConfigError) as caught:
        ocf_mapping(lb_env, "assignment_id,team_id,call_order\n2002,OCF-ANES-01,1\n")
    file = lb_env / "config" / OCF / "mapping.csv"
    assert caught.value.errors == [
        ("header", "unknown column 'team_id'; the columns are assignment_id, epic_team_id, team_name, role, "
                   "note_prefix, team_comment, call_order"),
        ("header", "required column 'epic_team_id' is missing"),
    ]
    assert str(caught.value).splitlines()[1] == f"{file}: header: required column 'epic_team_id' is missing"


def test_missing_mapping_file(lb_env):
    write(lb_env, OCF, "settings.yaml", "enabled: true\n")
    with pytest.raises(ConfigError) as caught:
        load_integration(OCF)
    assert caught.value.file == lb_env / "config" / OCF / "mapping.csv"
    assert caught.value.errors == [(
        "(file)", "not found; this integration sends only mapped assignments, so it needs a mapping.csv with "
        "the columns assignment_id, epic_team_id, team_name, role, note_prefix, team_comment, call_order",
    )]


def test_bad_ocf_rows_are_skipped_with_line_field_and_reason(lb_env):
    mapping = ocf_mapping(lb_env, OCF_HEADER + "\n".join([
        "2002,OCF-ANES-01,,Attending,,,1",  # line 2: good
        "2006,OCF-ANES-01,,CRNA,,,0",  # line 3: call order 0
        "2008,OCF-ANES-01,,Resident,,,abc",  # line 4: not a number
        "2041,,,Attending,,,1",  # line 5: no team
        "x2042,OCF-ANES-02,,,,,1,extra",  # line 6: one cell too many
        "2002,OCF-ANES-01,,Attending,,,1",  # line 7: the same as line 2
        "2042,OCF-ANES-02,,,,,",  # line 8: good, call order defaults to 1
    ]) + "\n")
    file = lb_env / "config" / OCF / "mapping.csv"
    assert [(r.assignment_id, r.mapping_line) for r in mapping.rows] == [(2002, 2), (2042, 8)]
    assert mapping.problems == [
        MappingProblem(file, 3, "call_order", "Input should be greater than or equal to 1 (got '0')", 2006),
        MappingProblem(file, 4, "call_order", f"{NOT_AN_INTEGER} (got 'abc')", 2008),
        MappingProblem(file, 5, "epic_team_id", "required value is missing", 2041),
        MappingProblem(file, 6, "(row)", "8 cells, but the header has 7 columns"),
        MappingProblem(file, 7, "assignment_id", "repeats line 2 exactly", 2002),
    ]
    assert str(mapping.problems[2]) == f"{file}: line 5, epic_team_id: required value is missing"


def test_wfd_rows_parse_booleans_and_labor_categories(lb_env):
    mapping = wfd_mapping(lb_env, WFD_HEADER + "\n".join([
        "2003,required,,,Yes,,,Surgical Services; CRNA;;,Scheduled",
        "2004,TRANSFER,Late Diff,,n,Org/Sonoran West/CRNA,0102-7537,,Transfer",
        "2005,BREAK,,,,,,,Call",
    ]) + "\n")
    assert mapping.problems == []
    parsed = [(r.segment_type, r.open_shift, r.labor_categories, r.cost_center_transfer)
              for r in mapping.rows]
    assert parsed == [
        ("REQUIRED", True, ["Surgical Services", "CRNA"], None),
        ("TRANSFER", False, [], "0102-7537"),
        ("BREAK", False, [], None),
    ]


def test_bad_wfd_rows_are_skipped(lb_env):
    mapping = wfd_mapping(lb_env, WFD_HEADER + "\n".join([
        "2003,REQUIRED,,,false,,,A;B,Scheduled",  # line 2: good
        "2004,OVERTIME,,,false,,,,Scheduled",  # line 3: no such segment type
        "2005,REQUIRED,,,false,,,A;B;C;D;E;F;G,Scheduled",  # line 4: seven labor categories
        "2003,REQUIRED,,,false,,,,Call",  # line 5: assignment mapped twice
        "2006,REQUIRED,,,maybe,,,A|B,Scheduled",  # line 6: two bad values, two problems
        "2007,REQUIRED,,,,,,,",  # line 7: no comment: a missing value, not an invalid one
    ]) + "\n")
    file = lb_env / "config" / WFD / "mapping.csv"
    assert [r.assignment_id for r in mapping.rows] == [2003]
    assert mapping.problems == [
        MappingProblem(file, 3, "segment_type", BAD_SEGMENT, 2004),
        MappingProblem(file, 4, "labor_categories",
                       "List should have at most 6 items after validation, not 7", 2005),
        MappingProblem(file, 5, "assignment_id", "assignment 2003 is already mapped on line 2; "
                       "this integration takes one row per assignment", 2003),
        MappingProblem(file, 6, "open_shift", "'maybe' is not true or false (also yes/no, y/n, 1/0)", 2006),
        MappingProblem(file, 6, "labor_categories", "'A|B' contains the labor category delimiter '|'; "
                       "separate entries in this cell with ';'", 2006),
        MappingProblem(file, 7, "comment", "required value is missing", 2007),
    ]


def test_wfd_comment_not_in_the_valid_list_refuses_the_configuration(lb_env):
    with pytest.raises(ConfigError) as caught:
        wfd_mapping(lb_env, WFD_HEADER + "2003,REQUIRED,,,,,,,Scheduled\n\n2004,REQUIRED,,,,,,,scheduled\n")
    file = lb_env / "config" / WFD / "mapping.csv"
    assert str(caught.value) == (
        f"{file}: line 4, comment: 'scheduled' is not one of the valid comments in settings.yaml: "
        "'Scheduled', 'Call', 'Transfer'"
    )


def test_load_mapping_directly_with_the_settings(lb_env):
    write(lb_env, WFD, "mapping.csv", WFD_HEADER + "2003,REQUIRED,,,,,,,Call\n")
    settings = KronosWfdSettings(pay_period={"anchor": "2026-01-04"}, valid_comments=["Call"])
    result = load_mapping(WFD, KronosWfdMappingRow, settings)
    assert [r.comment for r in result.rows] == ["Call"]
    assert result.file == lb_env / "config" / WFD / "mapping.csv"


# --- into the warehouse -------------------------------------------------------------------------


def query(conn, sql):
    return conn.execute(sql).fetchall()


def raw_assignments(conn, ids):
    conn.execute("CREATE SCHEMA raw")
    conn.execute("CREATE TABLE raw.assignments (id BIGINT)")
    conn.executemany("INSERT INTO raw.assignments VALUES (?)", [[i] for i in ids])


def test_write_config_to_warehouse_typed_tables_and_unknown_assignments(lb_env):
    write(lb_env, WFD, "settings.yaml", WFD_SETTINGS)
    write(lb_env, WFD, "mapping.csv", WFD_HEADER + "\n".join([
        "2003,REQUIRED,,,true,,,Surgical Services;CRNA;Night,Scheduled",
        "999,REQUIRED,,,,,,,Call",
        "2005,OVERTIME,,,,,,,Call",
    ]) + "\n")
    config = load_integration(WFD)
    conn = duckdb.connect()
    raw_assignments(conn, [2003, 2005])
    problems = integration(WFD).write_config(conn, config)
    file = lb_env / "config" / WFD / "mapping.csv"
    assert problems == [
        MappingProblem(file, 4, "segment_type", BAD_SEGMENT, 2005),
        MappingProblem(file, 3, "assignment_id",
                       "assignment_id 999 is not in Lightning Bolt's assignments", 999),
    ]
    assert query(conn, """
        SELECT assignment_id, segment_type, open_shift, labor_categories, comment, mapping_line
        FROM config.kronos_wfd__mapping""") == [
        (2003, "REQUIRED", True, ["Surgical Services", "CRNA", "Night"], "Scheduled", 2)
    ]
    types = dict(query(conn, """
        SELECT column_name, data_type FROM information_schema.columns
        WHERE table_name = 'kronos_wfd__mapping'"""))
    assert [types[c] for c in ("assignment_id", "open_shift", "labor_categories", "mapping_line")] == [
        "BIGINT", "BOOLEAN", "VARCHAR[]", "INTEGER"]

    rows = query(conn, "SELECT integration, enabled, settings, settings_file, loaded_at "
                       "FROM config.integration_settings")
    assert len(rows) == 1
    slug, enabled, settings_json, settings_file, loaded_at = rows[0]
    assert (slug, enabled) == (WFD, True)
    assert settings_file == str(lb_env / "config" / WFD / "settings.yaml")
    assert json.loads(settings_json)["pay_period"] == {"anchor": "2026-01-04", "length_days": 14}
    assert loaded_at == dt.datetime(2026, 11, 2, 18, 0, tzinfo=dt.timezone.utc)  # the pinned clock


def test_without_raw_assignments_every_good_row_is_kept(lb_env):
    write(lb_env, OCF, "settings.yaml", "enabled: true\n")
    write(lb_env, OCF, "mapping.csv", OCF_HEADER + "999,OCF-X,,,,,\n")
    conn = duckdb.connect()
    assert integration(OCF).write_config(conn, load_integration(OCF)) == []
    mapped = query(conn, "SELECT assignment_id, call_order FROM config.epic_on_call_finder__mapping")
    assert mapped == [(999, 1)]


def test_off_or_disabled_integration_leaves_an_empty_mapping_table(lb_env):
    write(lb_env, OCF, "settings.yaml", "enabled: true\n")
    write(lb_env, OCF, "mapping.csv", OCF_HEADER + "2002,OCF-ANES-01,,,,,\n")
    conn = duckdb.connect()
    integration(OCF).write_config(conn, load_integration(OCF))
    count = "SELECT count(*) FROM config.epic_on_call_finder__mapping"
    assert conn.execute(count).fetchall() == [(1,)]

    write(lb_env, OCF, "settings.yaml", "enabled: false\n")
    assert integration(OCF).write_config(conn, load_integration(OCF)) == []
    assert conn.execute(count).fetchall() == [(0,)]
    assert query(conn, "SELECT integration, enabled FROM config.integration_settings") == [(OCF, False)]

    assert integration(OCF).write_config(conn, None) == []
    assert conn.execute(count).fetchall() == [(0,)]
    assert conn.execute("SELECT count(*) FROM config.integration_settings").fetchall() == [(0,)]


def test_off_integrations_still_get_their_tables(lb_env):
    conn = duckdb.connect()
    for slug in (OCF, WFD, EDW):
        integration(slug).write_config(conn, None)
    tables = query(conn, "SELECT table_name FROM information_schema.tables "
                         "WHERE table_schema = 'config' ORDER BY 1")
    assert tables == [("epic_on_call_finder__mapping",), ("integration_settings",), ("kronos_wfd__mapping",)]


def test_bundled_sample_configuration_loads_with_no_problems(lb_env):
    conn = duckdb.connect()
    load_entity(conn, DirectorySource(DATA_DIR / "sample"), "assignments")
    sizes = {}
    for slug in (OCF, WFD, EDW):
        config = load_integration(slug, config_dir=DATA_DIR / "config")
        assert config is not None and config.enabled
        assert integration(slug).write_config(conn, config) == []
        sizes[slug] = len(config.mapping.rows) if config.mapping else None
    assert sizes == {OCF: 24, WFD: 22, EDW: None}
    # at least two assignments feed several Epic teams
    assert query(conn, """
        SELECT count(*) FROM (
            SELECT assignment_id FROM config.epic_on_call_finder__mapping GROUP BY 1 HAVING count(*) > 1)
        """)[0][0] >= 2
    assert conn.execute("SELECT count(*) FROM config.integration_settings").fetchall() == [(3,)]
