"""The demographic import's rules on small hand-made files: reading, matching, checking values,
keeping only what changes. Every expected value is worked out by hand."""

from __future__ import annotations

import re

import pytest

from lb_pipelines.integrations.demographic_import.rules import (
    FileRefused, holds, normalize_phone, plan_rows, read_file,
)

ALLOWED = ["email", "cell_phone", "pager"]
PEOPLE = [
    {"id": 11, "unique_id": "U11", "email": "ana.reyes@example.org", "cell_phone": "312-555-0111", "pager": "4011", "is_placeholder": False},
    {"id": 12, "unique_id": "U12", "email": None, "cell_phone": None, "pager": None, "is_placeholder": False},
    {"id": 15, "unique_id": "U15", "email": None, "cell_phone": None, "pager": None, "is_placeholder": False},
    {"id": 16, "unique_id": "U15", "email": None, "cell_phone": None, "pager": None, "is_placeholder": False},
    {"id": 19, "unique_id": "U19", "email": None, "cell_phone": None, "pager": "4999", "is_placeholder": True},
]


def plans(text: str, allowed=ALLOWED, key="unique_id"):
    return {p.line: p for p in plan_rows(read_file(text.encode(), key, allowed), PEOPLE)}


def test_bom_and_crlf_are_read_and_lines_counted_from_the_header():
    content = "\ufeffunique_id,pager\r\nU11,4012\r\n\r\nU12,5555\r\n".encode()
    parsed = read_file(content, "unique_id", ALLOWED)
    assert parsed.columns == ["pager"]
    assert [(r.line, r.values) for r in parsed.rows] == [
        (2, {"unique_id": "U11", "pager": "4012"}), (4, {"unique_id": "U12", "pager": "5555"})]


def test_header_names_as_hr_writes_them():
    parsed = read_file(b"UniqueID,E-mail Address,Cell Phone,PAGER\nU11,a@b.org,,\n", "unique_id", ALLOWED)
    assert parsed.columns == ["email", "cell_phone", "pager"]  # "E-mail Address" squashes to an alias of email
    parsed = read_file(b"Unique ID,Fax Number,email\nU11,1,\n", "unique_id", ["email"])
    assert parsed.notes[0].kind == "unknown_column" and parsed.notes[0].header == "Fax Number"


@pytest.mark.parametrize("content, says", [
    (b"email,pager\nx@y.org,1234\n", "no key column unique_id"),
    (b"", "empty"),
    (b"unique_id,fax\nU11,1\n", "no column the import may change"),
    (b"unique_id,pager,Pager Number\nU11,1,2\n", "column 3 (Pager Number) is pager again"),
    (b"unique_id,pager\nU11,\xff\xfe\n", "not UTF-8"),
    (b'unique_id,pager\nU11,"40\n', "not valid CSV"),
])
def test_unreadable_files_are_refused_with_the_reason(content, says):
    with pytest.raises(FileRefused, match=re.escape(says)):
        read_file(content, "unique_id", ALLOWED)


def test_one_row_per_outcome():
    got = plans(
        "unique_id,email,cell_phone,pager,fax\n"
        "U11,ana.reyes@example.org,(312) 555-0111,4012,9\n"   # 2: pager changes; the cell is the same number
        "U12,,,,\n"                                            # 3: empty cells never clear: unchanged
        "U99,x@example.org,,,\n"                               # 4: nobody has U99
        "U15,x@example.org,,,\n"                               # 5: two people have U15
        "U19,x@example.org,,,\n"                               # 6: only a placeholder has U19: not a person
        "U12,not-an-email,,,\n"                                # 7: U12 also on line 3 → both ambiguous
        ",x@example.org,,,\n"                                  # 8: no key
        "U11,a@b.org,\n"                                       # 9: 3 cells, header 5
    )
    assert {n: p.outcome for n, p in got.items()} == {
        2: "updated", 3: "ambiguous", 4: "unmatched", 5: "ambiguous", 6: "unmatched", 7: "ambiguous",
        8: "invalid", 9: "invalid"}
    assert got[2].changes == {"pager": "4012"} and got[2].person_id == 11
    assert "personnel 15, 16" in got[5].reason
    assert "also on line 7" in got[3].reason
    assert "3 cells where the header has 5" in got[9].reason
    parsed = read_file(b"unique_id,email,fax\nU11,a@b.org,1\n", "unique_id", ALLOWED)
    assert [(n.column, n.kind) for n in parsed.notes] == [(3, "unknown_column")]


def test_a_bad_value_stops_the_whole_row_and_the_reason_never_quotes_it():
    got = plans("unique_id,email,cell_phone\nU12,good@example.org,31255\nU11,bad@,312-555-0112\n")
    assert got[2].outcome == "invalid" and got[2].changes == {} and got[2].field == "cell_phone"
    assert got[3].outcome == "invalid" and got[3].field == "email"
    assert "31255" not in got[2].reason and "bad@" not in got[3].reason


def test_only_what_changes_is_sent_and_written_one_way():
    got = plans("unique_id,email,cell_phone,pager\n"
                "U11,Ana.Reyes@EXAMPLE.org,+1 312 555 0111,4011\n"    # case and format only: unchanged
                "U12,New.Person@Example.ORG,(773) 555-0142,773.555.0143\n")
    assert got[2].outcome == "unchanged"
    assert got[3].changes == {"email": "New.Person@example.org", "cell_phone": "773-555-0142", "pager": "773-555-0143"}


def test_fields_outside_update_fields_are_ignored_and_reported():
    parsed = read_file(b"unique_id,email,pager\nU11,new@example.org,4012\n", "unique_id", ["pager"])
    assert parsed.columns == ["pager"]
    assert [(n.header, n.kind) for n in parsed.notes] == [("email", "field_not_allowed")]
    [plan] = plan_rows(parsed, PEOPLE)
    assert plan.changes == {"pager": "4012"}


@pytest.mark.parametrize("value, style, expected", [
    ("(312) 555-0111", "dashed", "312-555-0111"),
    ("312.555.0111", "e164", "+13125550111"),
    ("3125550111", "national", "(312) 555-0111"),
    ("+44 20 7946 0958", "dashed", "+44 20 7946 0958"),  # another country keeps its code
])
def test_phone_formats(value, style, expected):
    assert normalize_phone(value, "US", style) == expected


def test_pager_may_be_its_own_short_number_but_a_cell_may_not():
    assert normalize_phone("4011", "US", "dashed", pager=True) == "4011"
    with pytest.raises(ValueError):
        normalize_phone("4011", "US", "dashed")
    with pytest.raises(ValueError):
        normalize_phone("40", "US", "dashed", pager=True)


def test_a_lost_answer_is_recognized_by_the_values_read_back():
    assert holds({"pager": "4012", "email": "a@b.org"}, {"pager": "4012"})
    assert not holds({"pager": "4011"}, {"pager": "4012"})
    assert not holds(None, {"pager": "4012"})
