"""The Dagster UI behind the sign-in layer, in a real headless browser (Debian's chromium, driven by
selenium through Debian's chromedriver; scripts/install-test-services.sh installs both): sent to
the OpenID Connect provider's sign-in page, signed in there, back on the UI with Dagster's app
rendered and its GraphQL answering, the asset graph and the runs page rendered (screenshots), and
the sign-in in the audit trail."""

from __future__ import annotations

import json

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ui_helpers import oidc_world

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with oidc_world(tmp_path_factory.mktemp("ui")) as world:
        yield world


@pytest.fixture
def driver(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit chromedriver: selenium-manager never runs, so nothing is downloaded.
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield browser
    finally:
        browser.quit()


WEBSOCKET_PROBE = """
    const done = arguments[arguments.length - 1], seen = [];
    const ws = new WebSocket(location.origin.replace('http', 'ws') + '/graphql', 'graphql-ws');
    ws.onopen = () => { seen.push('open ' + ws.protocol); ws.send(JSON.stringify({type: 'connection_init', payload: {}})); };
    ws.onmessage = (m) => { seen.push(m.data); ws.close(); };
    ws.onclose = (e) => done(seen);
    setTimeout(() => done(seen.concat(['timeout'])), 10000);
"""


def wait_for(driver, what: str, condition, timeout: float = 60):
    """Wait for the condition; on a timeout, fail with where the browser is and what its console said."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        console = "\n".join(f"{e['level']} {e['message']}" for e in driver.get_log("browser"))
        pytest.fail(f"no {what} after {timeout}s at {driver.current_url} ({driver.title!r})\n"
                    f"console:\n{console}\npage:\n{driver.page_source[:3000]}")


def shown(driver, css: str) -> bool:
    return any(e.is_displayed() for e in driver.find_elements(By.CSS_SELECTOR, css))


def test_a_person_signs_in_with_a_real_browser_and_uses_the_dagster_ui(world, driver, tmp_path):
    world.add_user("otto@health.example.org", ["LB Operators"])

    driver.get(f"{world.ui}/")
    assert driver.current_url.startswith(world.idp), driver.current_url  # the provider's sign-in page
    driver.find_element(By.NAME, "sub").send_keys("otto@health.example.org")
    driver.find_element(By.XPATH, "//button[@type='submit' and normalize-space()='Authorize']").click()

    # Back on the UI, and Dagster's React app rendered (its navigation is drawn by the app, not in
    # the HTML the webserver sends).
    wait_for(driver, "rendered Dagster app", lambda d: d.current_url.startswith(world.ui)
             and shown(d, "a[href='/runs']") and shown(d, "a[href='/jobs']") and shown(d, "a[href='/assets']"))
    assert "/auth/" not in driver.current_url and "initialization-data" in driver.page_source  # Dagster's page

    driver.get(f"{world.ui}/asset-groups")  # the global asset graph: nodes drawn from GraphQL answers
    wait_for(driver, "rendered asset graph", lambda d: all(  # its groups, one per integration folder
        name in d.find_element(By.TAG_NAME, "body").text
        for name in ("Global asset lineage", "lightning_bolt_raw", "warehouse_marts", "demographic_import")))
    for skip in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):  # Dagster's welcome box
        if skip.is_displayed():
            skip.click()
    assert driver.save_screenshot(str(tmp_path / "asset-graph.png"))

    driver.get(f"{world.ui}/runs")
    # The runs page, with what its GraphQL queries brought back through the layer (no runs yet).
    wait_for(driver, "rendered runs page", lambda d: shown(d, "a[href='/runs?view=backfills']")
             and "Launched by" in d.find_element(By.TAG_NAME, "body").text
             and "Queued (0)" in d.find_element(By.TAG_NAME, "body").text
             and "No runs found" in d.find_element(By.TAG_NAME, "body").text)
    assert driver.current_url == f"{world.ui}/runs"

    shot = tmp_path / "runs.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5_000

    assert driver.execute_async_script(
        "fetch('/auth/whoami').then(r => r.json()).then(arguments[arguments.length - 1])") == {
        "signed_in": True, "name": "otto", "role": "operator", "via": "oidc"}
    # The websocket Dagster's subscriptions use opens through the layer with the session cookie.
    assert driver.execute_async_script(WEBSOCKET_PROBE) == ["open graphql-ws", '{"type":"connection_ack"}']
    assert [r for r in world.layer.audit.rows()
            if (r["event"], r["who"], r["outcome"]) == ("sign_in", "otto", "ok")], json.dumps(world.layer.audit.rows())
