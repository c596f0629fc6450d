"""The TigerConnect fake answers as the webhook does, over real HTTP: the API push's tests rely on it."""

from __future__ import annotations

import pytest
import requests

from fakes.tigerconnect import DOWNLOAD_PATH, UPLOAD_PATH, TigerConnectFake

ORG, INTEGRATION = "org-1", "int-7"
CHICAGO, NEW_YORK = "America/Chicago", "America/New_York"


@pytest.fixture
def fake():
    with TigerConnectFake(username="lb-sync", password="s3cret-pw", organizations=(ORG,)) as server:
        yield server


HEADER = "JOB_TOKEN,USER_ID,START,END\r\n"


def post(
    fake, path, body=b"", *, zone=CHICAGO, auth=("lb-sync", "s3cret-pw"), content_type="text/csv", **headers
):
    sent = {
        "Content-Type": content_type,
        "TT-X-Organization-Key": ORG,
        "TT-X-Integration-Id": INTEGRATION,
        "TT-X-Timezone": zone,
        **headers,
    }
    sent = {name: value for name, value in sent.items() if value is not None}  # None leaves a header out
    return requests.post(fake.base_url + path, data=body, auth=auth, headers=sent, timeout=5)


def upload(fake, text, **kwargs):
    return post(fake, UPLOAD_PATH, text.encode("utf-8") if isinstance(text, str) else text, **kwargs)


def download(fake, **kwargs):
    return post(fake, DOWNLOAD_PATH, content_type=None, **kwargs)


def test_upload_then_download_round_trip_keeps_zones_apart(fake):
    # BOM and LF line ends on the way in; rows out of order.
    chicago = (
        "\ufeffJOB_TOKEN,USER_ID,START,END\n"
        "icu-night,u2,2026-11-02 19:00,2026-11-03 07:00\n"
        "icu-day,u1,2026-11-02 07:00,2026-11-02 19:00\n"
    )
    new_york = HEADER + "er-day,u9,2026-11-02 08:00,2026-11-02 20:00\r\n"

    first = upload(fake, chicago, zone=CHICAGO)
    second = upload(fake, new_york, zone=NEW_YORK)

    assert first.status_code == 200 and first.json() == {"status": "ok", "rows": 2, "job_tokens": 2}
    assert second.json() == {"status": "ok", "rows": 1, "job_tokens": 1}
    got = download(fake, zone=CHICAGO)
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("text/csv")
    assert got.text == (
        "JOB_TOKEN,USER_ID,START,END\r\n"  # CRLF throughout, as Python's csv writer
        "icu-day,u1,2026-11-02 07:00,2026-11-02 19:00\r\n"
        "icu-night,u2,2026-11-02 19:00,2026-11-03 07:00\r\n"
    )
    assert download(fake, zone=NEW_YORK).text == HEADER + "er-day,u9,2026-11-02 08:00,2026-11-02 20:00\r\n"
    assert fake.held(ORG, INTEGRATION, NEW_YORK) == [("er-day", "u9", "2026-11-02 08:00", "2026-11-02 20:00")]
    assert [(u["zone"], len(u["rows"])) for u in fake.uploads] == [(CHICAGO, 2), (NEW_YORK, 1)]


def test_upload_overwrites_only_the_job_tokens_it_names(fake):
    fake.preload(ORG, INTEGRATION, CHICAGO, [
        ("icu-day", "old-1", "2026-11-02 07:00", "2026-11-02 19:00"),
        ("icu-day", "old-2", "2026-11-03 07:00", "2026-11-03 19:00"),
        ("or-call", "u5", "2026-11-02 17:00", "2026-11-03 07:00"),
    ])

    answer = upload(fake, HEADER + "icu-day,new-1,2026-11-02 07:00,2026-11-02 19:00\r\n")

    assert answer.json() == {"status": "ok", "rows": 1, "job_tokens": 1}
    assert fake.held(ORG, INTEGRATION, CHICAGO) == [
        ("icu-day", "new-1", "2026-11-02 07:00", "2026-11-02 19:00"),
        ("or-call", "u5", "2026-11-02 17:00", "2026-11-03 07:00"),  # not in the upload: kept
    ]


def test_a_row_with_only_the_job_token_empties_it(fake):
    fake.preload(ORG, INTEGRATION, CHICAGO, [
        ("icu-day", "u1", "2026-11-02 07:00", "2026-11-02 19:00"),
        ("or-call", "u5", "2026-11-02 17:00", "2026-11-03 07:00"),
    ])

    answer = upload(fake, HEADER + "icu-day,,,\r\n")

    assert answer.json() == {"status": "ok", "rows": 0, "job_tokens": 1}
    assert fake.held(ORG, INTEGRATION, CHICAGO) == [("or-call", "u5", "2026-11-02 17:00", "2026-11-03 07:00")]
    assert fake.uploads[-1]["rows"] == [("icu-day", "", "", "")]


def test_wrong_password_is_401_and_the_body_does_not_echo_it(fake):
    answer = upload(fake, HEADER, auth=("lb-sync", "guessed-pw"))
    missing = upload(fake, HEADER, auth=None)

    assert answer.status_code == 401 == missing.status_code
    assert answer.json() == {"error": "unauthorized", "message": "invalid credentials"}
    assert "guessed-pw" not in answer.text and "s3cret-pw" not in answer.text
    assert fake.uploads == []


@pytest.mark.parametrize(
    "body, line, words",
    [
        ("JOB_TOKEN,USER_ID,START\r\nicu-day,u1,2026-11-02 07:00\r\n", 1, "header"),
        (
            HEADER + "icu-day,u1,2026-11-02 07:00,2026-11-02 19:00\r\n"
            "icu-night,u2,2026-11-02 7:00,2026-11-03 07:00\r\n",  # START without its leading zero
            3, "START",
        ),
        (HEADER + "\r\nicu-day,u1,2026-11-02 19:00,2026-11-02 19:00\r\n", 3, "not after"),  # a blank line 2
    ],
    ids=["bad-header", "bad-date", "end-not-after-start"],
)
def test_a_bad_csv_is_400_naming_the_line_and_nothing_is_applied(fake, body, line, words):
    answer = upload(fake, body)

    assert answer.status_code == 400
    assert answer.json()["line"] == line
    assert f"line {line}:" in answer.json()["message"] and words in answer.json()["message"]
    assert fake.held(ORG, INTEGRATION, CHICAGO) == [] and fake.uploads == []  # line 2 was fine, yet not kept


@pytest.mark.parametrize(
    "headers, status, named",
    [
        ({"TT-X-Timezone": None}, 400, "TT-X-Timezone"),
        ({"TT-X-Integration-Id": None}, 400, "TT-X-Integration-Id"),
        ({"TT-X-Timezone": "America/Gotham"}, 400, "TT-X-Timezone"),
        ({"TT-X-Organization-Key": "org-other"}, 403, "TT-X-Organization-Key"),
    ],
    ids=["no-zone", "no-integration", "unknown-zone", "wrong-org"],
)
def test_headers_are_checked(fake, headers, status, named):
    answer = upload(fake, HEADER, **headers)

    assert answer.status_code == status and answer.json()["header"] == named


def test_an_upload_that_is_not_text_csv_is_415(fake):
    answer = upload(fake, HEADER, content_type="application/json")

    assert answer.status_code == 415 and fake.uploads == []


def test_injected_500_after_apply_keeps_the_upload(fake):
    fake.answer("POST", r"/csv$", 500, after_apply=True)
    fake.answer("POST", r"/csv$", 429, headers={"Retry-After": "2"})
    body = HEADER + "icu-day,u1,2026-11-02 07:00,2026-11-02 19:00\r\n"

    lost = upload(fake, body)
    throttled = upload(fake, HEADER + "icu-day,,,\r\n")

    assert lost.status_code == 500
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    # The 500 came after applying; the 429 came instead of applying (the token is not cleared).
    assert fake.held(ORG, INTEGRATION, CHICAGO) == [("icu-day", "u1", "2026-11-02 07:00", "2026-11-02 19:00")]
    assert len(fake.uploads) == 1
    assert [r.status for r in fake.requests("POST", r"/csv$")] == [500, 429]
