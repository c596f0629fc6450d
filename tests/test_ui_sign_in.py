"""The Dagster UI behind the sign-in layer, with a real OpenID Connect provider on loopback: the
authorization-code flow with PKCE, roles on every mutation, the audit trail, refusals of a
tampered state or nonce, an expired session, sign-out, and the loopback rule without sign-in."""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from lb_pipelines.ui import layer as layer_module
from lb_pipelines.ui.roles import ADMIN_MUTATIONS, OPERATOR_MUTATIONS
from lb_pipelines.ui.server import RefusedToListen, check_host
from ui_helpers import LAUNCH_RUN, World, launch_run, oidc_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with oidc_world(tmp_path_factory.mktemp("ui")) as world:
        world.add_user("vera@health.example.org", ["LB Viewers"])
        world.add_user("otto@health.example.org", ["LB Operators", "Cafeteria"])
        world.add_user("nobody@health.example.org", ["Cafeteria"])
        world.add_user("ada@health.example.org", ["LB Viewers", "LB Admins"])  # the highest role counts
        yield world


def audit_rows(world: World, **where) -> list[dict]:
    return [r for r in world.layer.audit.rows() if all(r[k] == v for k, v in where.items())]


def test_nothing_without_signing_in(world):
    anonymous = requests.Session()
    page = anonymous.get(f"{world.ui}/runs", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["location"] == "/auth/login?next=%2Fruns"
    assert anonymous.post(f"{world.ui}/graphql", json={"query": "{ version }"}, timeout=10).status_code == 401
    assert launch_run(anonymous, world.ui).status_code == 401


def test_the_code_flow_with_pkce_signs_in_and_lands_on_the_ui(world):
    browser = requests.Session()
    authorize = world.start_sign_in(browser)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0] and query["redirect_uri"] == [f"{world.ui}/auth/callback"]
    landed = world.finish_sign_in(browser, authorize, "otto@health.example.org")
    assert landed.status_code == 200 and landed.url == f"{world.ui}/runs"
    assert "__NEXT_DATA__" in landed.text and "Dagster" in landed.text  # the webserver's own page
    assert browser.get(f"{world.ui}/auth/whoami", timeout=10).json() == {
        "signed_in": True, "name": "otto", "role": "operator", "via": "oidc"}
    cookie = next(c for c in browser.cookies if c.name == "lb_ui_session")
    assert {k.lower() for k in cookie._rest} >= {"httponly", "samesite"} and cookie._rest.get("samesite") == "lax"
    assert not cookie.secure  # plain http here; behind TLS (an https LB_UI_BASE_URL) it is Secure
    assert audit_rows(world, event="sign_in", who="otto", outcome="ok")


def test_a_viewer_sees_everything_and_changes_nothing(world):
    viewer = world.sign_in("vera@health.example.org")
    answer = viewer.post(f"{world.ui}/graphql", json={"query": "{ version }"}, timeout=30)
    assert answer.status_code == 200 and "version" in answer.json()["data"]
    refused = launch_run(viewer, world.ui, job="kronos_wfd_export")
    assert refused.status_code == 403 and "viewer may not launchRun" in refused.json()["errors"][0]["message"]
    [row] = audit_rows(world, who="vera", event="mutation")
    assert (row["outcome"], row["operation"], row["role"]) == ("refused", "launchRun", "viewer")
    assert '"jobName": "kronos_wfd_export"' in row["target"] and row["address"] == "127.0.0.1"
    stop = viewer.post(f"{world.ui}/graphql", json={
        "query": "mutation { stopSensor(jobOriginId: \"x\", jobSelectorId: \"y\") { __typename } }"}, timeout=30)
    assert stop.status_code == 403
    assert viewer.post(f"{world.ui}/report_asset_materialization/a", timeout=30).status_code == 403


def test_an_operator_launches_and_the_audit_says_who_did_what(world):
    operator = world.sign_in("otto@health.example.org")
    answer = launch_run(operator, world.ui)
    assert answer.status_code == 200  # Dagster's own answer: the layer let it through
    assert answer.json()["data"]["launchRun"]["__typename"] in ("PipelineNotFoundError", "RunConfigValidationInvalid",
                                                                "InvalidSubsetError", "PythonError")
    allowed = audit_rows(world, who="otto", event="mutation", operation="launchRun")
    assert [r["outcome"] for r in allowed] == ["allowed"] and '"jobName": "no_such_job"' in allowed[0]["target"]
    wipe = operator.post(f"{world.ui}/graphql", json={
        "query": "mutation { wipeAssets(assetPartitionRanges: []) { __typename } }"}, timeout=30)
    assert wipe.status_code == 403  # destroying history is the admin's


def test_a_person_without_a_mapped_group_is_refused_after_signing_in(world):
    browser = requests.Session()
    page = world.finish_sign_in(browser, world.start_sign_in(browser), "nobody@health.example.org")
    assert page.status_code == 403 and "none of your groups gives a role here" in page.text
    assert browser.get(f"{world.ui}/auth/whoami", timeout=10).status_code == 401
    assert audit_rows(world, event="sign_in", who="nobody", outcome="refused")


def _with(url: str, **params) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | params
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.mark.parametrize("tamper", ["state", "nonce"])
def test_a_tampered_state_or_nonce_is_refused(world, tamper):
    browser = requests.Session()
    authorize = _with(world.start_sign_in(browser), **{tamper: "forged-by-an-attacker"})
    page = world.finish_sign_in(browser, authorize, "otto@health.example.org")
    assert page.status_code == 403 and "Sign-in refused" in page.text
    assert browser.get(f"{world.ui}/auth/whoami", timeout=10).status_code == 401
    assert audit_rows(world, event="sign_in", outcome="refused")


def test_an_expired_session_is_sent_back_to_sign_in(world, monkeypatch):
    browser = world.sign_in("otto@health.example.org")
    assert browser.get(f"{world.ui}/auth/whoami", timeout=10).status_code == 200

    class Later:
        @staticmethod
        def time():
            import time
            return time.time() + 61 * 60  # past the 60-minute session

    monkeypatch.setattr(layer_module, "time", Later)
    page = browser.get(f"{world.ui}/runs", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10)
    assert page.status_code == 302 and page.headers["location"].startswith("/auth/login")
    assert launch_run(browser, world.ui).status_code == 401


def test_sign_out_ends_the_session(world):
    browser = world.sign_in("otto@health.example.org")
    assert browser.get(f"{world.ui}/auth/logout", timeout=10).status_code == 200
    assert browser.get(f"{world.ui}/auth/whoami", timeout=10).status_code == 401
    assert launch_run(browser, world.ui).status_code == 401
    assert audit_rows(world, event="sign_out", who="otto")


def test_the_audit_trail_cannot_be_changed_and_holds_no_secret(world):
    conn = sqlite3.connect(world.layer.audit.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit SET who = 'someone else'")
    text = " ".join(str(v) for r in world.layer.audit.rows() for v in r.values())
    assert "ui-client-s3cret" not in text and "s" * 40 not in text and "eyJ" not in text  # no secret, no JWT


def test_without_sign_in_only_loopback():
    with pytest.raises(RefusedToListen, match="127.0.0.1 only"):
        check_host("0.0.0.0", "")
    check_host("127.0.0.1", "")
    check_host("0.0.0.0", "oidc")


def test_every_mutation_of_this_dagster_has_a_role_and_the_docs_list_them():
    from pathlib import Path

    from dagster_graphql.schema import create_schema

    schema = create_schema()
    mutations = set((getattr(schema, "graphql_schema", schema)).mutation_type.fields)
    assert mutations <= OPERATOR_MUTATIONS | ADMIN_MUTATIONS, sorted(mutations - OPERATOR_MUTATIONS - ADMIN_MUTATIONS)
    docs = (Path(__file__).parents[1] / "docs" / "operations.md").read_text()
    assert [m for m in sorted(mutations) if f"`{m}`" not in docs] == []


def test_the_websocket_needs_a_session_and_carries_no_mutation_for_a_viewer(world):
    import websocket

    url = world.ui.replace("http://", "ws://") + "/graphql"
    with pytest.raises((websocket.WebSocketBadStatusException, websocket.WebSocketConnectionClosedException)):
        anonymous = websocket.create_connection(url, subprotocols=["graphql-ws"], timeout=10)
        anonymous.send('{"type": "connection_init", "payload": {}}')
        anonymous.recv()  # closed before any answer
    viewer = world.sign_in("vera@health.example.org")
    cookie = f"lb_ui_session={viewer.cookies['lb_ui_session']}"
    socket_ = websocket.create_connection(url, subprotocols=["graphql-ws"], cookie=cookie, timeout=10)
    socket_.send('{"type": "connection_init", "payload": {}}')
    assert '"connection_ack"' in socket_.recv()  # a signed-in viewer may subscribe (read)
    socket_.send(json.dumps({"type": "start", "id": "1", "payload": {"query": LAUNCH_RUN, "variables": {}}}))
    with pytest.raises(websocket.WebSocketConnectionClosedException):  # not a timeout: closed
        while True:
            socket_.recv()  # closed instead of running it
    assert audit_rows(world, who="vera", event="mutation", outcome="refused", operation="launchRun")


def test_an_admin_may_do_what_destroys_history_and_it_is_audited(world):
    admin = world.sign_in("ada@health.example.org")
    assert admin.get(f"{world.ui}/auth/whoami", timeout=10).json()["role"] == "admin"
    wipe = admin.post(f"{world.ui}/graphql", json={
        "query": "mutation { wipeAssets(assetPartitionRanges: []) { __typename } }"}, timeout=30)
    assert wipe.status_code == 200 and wipe.json()["data"]["wipeAssets"]["__typename"]  # Dagster's own answer
    [row] = audit_rows(world, who="ada", event="mutation")
    assert (row["operation"], row["outcome"], row["role"]) == ("wipeAssets", "allowed", "admin")


def test_the_role_claim_may_be_a_dotted_path_into_nested_claims():
    from lb_pipelines.ui.layer import claim

    claims = {"groups": ["A"], "realm_access": {"roles": ["LB Operators"]}, "a.b": "flat"}
    assert claim(claims, "groups") == ["A"]
    assert claim(claims, "realm_access.roles") == ["LB Operators"]
    assert claim(claims, "a.b") == "flat"  # a claim whose own name has a dot wins
    assert claim(claims, "realm_access.missing") is None and claim(claims, "nope") is None
