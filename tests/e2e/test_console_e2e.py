"""The web console in a real browser (headless Chromium driven by selenium) on the stack.

Screenshots of every page go to `.local/screenshots/`. Skips, with the reason, where
Chromium, its driver or selenium are missing (`.ci/run` installs Debian's `chromium` and
`chromium-driver`).
"""

import json
import shutil
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from tests.e2e.helpers import make_key

pytestmark = pytest.mark.e2e

SHOTS = Path(__file__).resolve().parents[2] / ".local" / "screenshots"
JOBS = "/v1/projects/p/locations/us-central1/batchPredictionJobs"
WAIT = 60
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _browser_skip_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "no chromium binary (apt-get install chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (apt-get install chromium-driver)"
    return None


@pytest.fixture
def browser(stack):
    reason = _browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vbg-chromium-")
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1280,800")
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
    driver.set_page_load_timeout(WAIT)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, what: str, timeout: float = WAIT):
    """Poll `condition`; an element the page's refresh replaced mid-read is read again."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.2,
            ignored_exceptions=(StaleElementReferenceException, AttributeError),
        ).until(lambda d: condition(d), message=f"waiting for {what}")
    except TimeoutException:
        driver.save_screenshot(str(SHOTS / "failed.png"))
        raise


def css(driver, selector: str):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, selector)
    return found[0] if found else None


def sign_in(driver, stack, key: str) -> None:
    driver.get(f"{stack['gateway_url']}/ui/")
    field = wait(driver, lambda d: css(d, "#signin-key"), "the sign-in form")
    field.send_keys(key)
    css(driver, "#signin-form button").click()
    wait(driver, lambda d: css(d, "#jobs-table"), "the jobs page")
    # The key is in this tab's sessionStorage, never in the URL.
    assert driver.execute_script("return sessionStorage.getItem('vbg-key')") == key
    assert key not in driver.current_url


def create_job(stack, key: str, folder: str, labels: dict, rows: int = 3) -> str:
    from shared.core import clients

    name = f"{folder}/in/{uuid.uuid4().hex[:6]}.jsonl"
    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"q {n}"}]}]}}
        for n in range(rows)
    ]
    clients.storage().bucket(stack["bucket"]).blob(name).upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    body = {
        "displayName": f"console-{labels.get('sim-fault', 'ok')}",
        "model": "gemini-3.5-flash-lite",
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{stack['bucket']}/{name}"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{stack['bucket']}/{folder}/out/"},
        },
        "labels": labels,
    }
    reply = requests.post(
        stack["gateway_url"] + JOBS, json=body, headers={"x-goog-api-key": key}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["name"].rsplit("/", 1)[-1]


def shown_usd(value: str) -> str:
    """The console's money format, written independently: $ and the digits without
    trailing zeros, at least cents."""
    text = format(Decimal(value).normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def test_a_user_signs_in_sees_a_job_run_its_cost_spend_and_cancels(stack_env, browser):
    stack = stack_env
    folder = f"ui-{uuid.uuid4().hex[:8]}"
    key = make_key(stack, "browser-user", folder=folder, team="ui", budgetUsd="1")
    driver = browser

    driver.get(f"{stack['gateway_url']}/ui/")
    wait(driver, lambda d: css(d, "#signin-key"), "the sign-in form")
    driver.save_screenshot(str(SHOTS / "signin.png"))
    bad = css(driver, "#signin-key")
    bad.send_keys("vbg-not-a-key")
    css(driver, "#signin-form button").click()
    wait(driver, lambda d: "not valid" in css(d, "#signin-error").text, "the sign-in error")
    bad.clear()
    sign_in(driver, stack, key)

    job_id = create_job(stack, key, folder, {"project": "ui"})
    row = f'#jobs-table tr[data-job="{job_id}"]'
    wait(driver, lambda d: css(d, row), f"job {job_id} in the list (auto-refresh)")
    final_cell = f'{row} td[data-final="true"]'
    cell = wait(driver, lambda d: css(d, final_cell), f"job {job_id} to show its final cost")
    cost = requests.get(
        f"{stack['gateway_url']}/v1/gateway/jobs/{job_id}/cost",
        headers={"x-goog-api-key": key},
        timeout=30,
    ).json()
    assert cost["costFinal"] and Decimal(cost["costUsd"]) > 0
    assert cell.text == shown_usd(cost["costUsd"])
    assert "SUCCEEDED" in css(driver, f"{row} .state").text
    driver.save_screenshot(str(SHOTS / "jobs.png"))

    css(driver, f"{row} a").click()
    wait(driver, lambda d: css(d, '#job-cost[data-final="true"]'), "the job page's final cost")
    assert css(driver, "#job-cost").text == shown_usd(cost["costUsd"]) + " (final)"
    timeline = css(driver, "#job-timeline").text
    assert "PENDING" in timeline and "SUCCEEDED" in timeline
    assert "predictions.jsonl" in css(driver, "#job-files").text
    driver.save_screenshot(str(SHOTS / "job.png"))

    css(driver, 'a[data-page="spend"]').click()
    wait(
        driver,
        lambda d: d.execute_script(
            "const c = window.vbgChart; return c && c.data.datasets.length > 0"
        ),
        "the spend chart",
    )
    plotted = driver.execute_script(
        "return window.vbgChart.data.datasets"
        ".map(s => [s.label, s.data.reduce((a, b) => a + b, 0)])"
    )
    assert plotted[0][0] == "gemini-3.5-flash-lite" and plotted[0][1] > 0
    inked = driver.execute_script(
        """const c = document.getElementById('spend-chart');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n;"""
    )
    assert inked > 1000
    assert css(driver, "#spend-total").text == shown_usd(cost["costUsd"])
    wait(driver, lambda d: css(d, "#budgets .budget"), "the budget bar")
    assert "limit $1.00" in css(driver, "#budgets .budget").text
    driver.save_screenshot(str(SHOTS / "spend.png"))

    stuck = create_job(stack, key, folder, {"sim-fault": "stuck-queued"})
    driver.get(f"{stack['gateway_url']}/ui/#/jobs/{stuck}")
    button = wait(
        driver,
        lambda d: (b := css(d, "#job-cancel")) and b.is_displayed() and b,
        "the cancel button",
    )
    button.click()
    alert = wait(driver, lambda d: d.switch_to.alert, "the confirm dialog")
    assert "Cancel job" in alert.text
    alert.accept()
    wait(driver, lambda d: css(d, "#job-state").text == "CANCELLED", "the job to be cancelled")
    driver.save_screenshot(str(SHOTS / "job-cancelled.png"))

    driver.set_window_size(390, 844)
    driver.get(f"{stack['gateway_url']}/ui/#/jobs")
    wait(driver, lambda d: css(d, row), "the jobs page at phone width")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    driver.save_screenshot(str(SHOTS / "jobs-phone.png"))


def test_master_key_creates_shows_once_revokes_and_sets_a_team_budget(stack_env, browser):
    stack = stack_env
    driver = browser
    sign_in(driver, stack, stack["master_key"])
    css(driver, 'a[data-page="keys"]').click()
    form = wait(driver, lambda d: css(d, "#key-form"), "the keys page")
    alias = f"made-in-ui-{uuid.uuid4().hex[:6]}"
    team = f"team-{uuid.uuid4().hex[:6]}"
    form.find_element("name", "alias").send_keys(alias)
    form.find_element("name", "team").send_keys(team)
    form.find_element("name", "inputPrefixes").send_keys(f"gs://{stack['bucket']}/{alias}/")
    css(driver, "#key-form button[type=submit]").click()
    shown = wait(
        driver,
        lambda d: (f := css(d, "#key-created-value")) and f.get_attribute("value") and f,
        "the new key",
    )
    new_key = shown.get_attribute("value")
    assert new_key.startswith("vbg-")
    driver.save_screenshot(str(SHOTS / "keys-created.png"))
    me = requests.get(
        f"{stack['gateway_url']}/v1/gateway/me", headers={"x-goog-api-key": new_key}, timeout=30
    )
    assert me.status_code == 200 and me.json()["alias"] == alias
    key_id = me.json()["id"]

    # Shown once: after a reload the page holds no key.
    driver.refresh()
    wait(driver, lambda d: css(d, f'tr[data-key="{key_id}"]'), "the key in the list")
    assert new_key not in driver.page_source

    css(driver, f'button[data-revoke="{key_id}"]').click()
    alert = wait(driver, lambda d: d.switch_to.alert, "the revoke confirm")
    alert.accept()
    wait(driver, lambda d: not css(d, f'tr[data-key="{key_id}"]'), "the key to leave the list")
    me = requests.get(
        f"{stack['gateway_url']}/v1/gateway/me", headers={"x-goog-api-key": new_key}, timeout=30
    )
    assert me.status_code == 401

    css(driver, 'a[data-page="teams"]').click()
    form = wait(driver, lambda d: css(d, "#team-form"), "the teams page")
    form.find_element("name", "team").send_keys(team)
    form.find_element("name", "budgetUsd").send_keys("25")
    css(driver, "#team-form button[type=submit]").click()
    wait(driver, lambda d: "Saved the budget" in css(d, "#status").text, "the save")
    got = requests.get(
        f"{stack['gateway_url']}/v1/gateway/teams/{team}",
        headers={"x-goog-api-key": stack["master_key"]},
        timeout=30,
    ).json()
    assert got["budgetUsd"] == "25" and got["budgetPeriod"] == "month"
    css(driver, "#team-show").click()
    wait(driver, lambda d: "limit $25.00" in css(d, "#team-view").text, "the team budget bar")
    driver.save_screenshot(str(SHOTS / "teams.png"))


def test_the_console_shows_runs_and_a_run_page_with_its_pieces(stack_env, browser):
    from shared.core import clients

    stack = stack_env
    folder = f"ui-run-{uuid.uuid4().hex[:8]}"
    key = make_key(stack, "run-viewer", folder=folder)
    driver = browser
    sign_in(driver, stack, key)
    name = f"{folder}/in/big.jsonl"
    lines = [{"request": {"contents": [{"parts": [{"text": f"r {n}"}]}]}} for n in range(230)]
    clients.storage().bucket(stack["bucket"]).blob(name).upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    body = {
        "displayName": "console run",
        "model": "gemini-3.5-flash-lite-small-jobs",
        "inputConfig": {"gcsSource": {"uris": [f"gs://{stack['bucket']}/{name}"]}},
        "outputConfig": {
            "gcsDestination": {"outputUriPrefix": f"gs://{stack['bucket']}/{folder}/out/"}
        },
    }
    reply = requests.post(
        f"{stack['gateway_url']}/v1/gateway/runs",
        json=body,
        headers={"x-goog-api-key": key},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    run_id = reply.json()["runId"]

    css(driver, 'a[data-page="runs"]').click()
    row = f'#runs-table tr[data-run="{run_id}"]'
    wait(driver, lambda d: css(d, row), f"run {run_id} in the runs list")
    assert css(driver, f"{row} td[data-label='Pieces']").text == "3"
    css(driver, f"{row} a").click()
    wait(driver, lambda d: css(d, '#run-cost[data-final="true"]'), "the run's final cost")
    cost = requests.get(
        f"{stack['gateway_url']}/v1/gateway/runs/{run_id}/cost",
        headers={"x-goog-api-key": key},
        timeout=30,
    ).json()
    assert css(driver, "#run-cost").text == shown_usd(cost["totalUsd"]) + " (final)"
    pieces = css(driver, "#run-pieces").text
    for piece in cost["pieces"]:
        assert piece["jobId"] in pieces
    assert "1\u2013100" in pieces and "201\u2013230" in pieces
    assert "SUCCEEDED" in css(driver, "#run-state").text
    driver.save_screenshot(str(SHOTS / "run.png"))
