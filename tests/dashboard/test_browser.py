"""The UIs in a real browser: Debian's headless chromium, driven by Selenium through chromedriver.

On the test platform (real pipeline history, real `bentoml serve`) this starts the other UIs a user has -
the Dagster UI (`dagster-webserver` on the platform's instance), the MLflow UI (`mlflow server` on its
tracking store) and the viewer (`streamlit run`) - at the addresses the pipeline recorded its links with,
and follows the links from each UI to the others, by clicking them, as a person would.

`make browser` installs chromium and chromedriver. Every page's screenshot is taken; with
MLOPS_UPDATE_SCREENSHOTS=1 they replace the ones in docs/images/ (the README shows the main ones).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dashboard.ui import DEFAULT_PROPERTY, money
from mlops_assets.core.links import Links
from mlops_assets.storage.warehouse import Warehouse, model_history
from tests.conftest import missing_service
from tests.dashboard.conftest import Platform, wait_until
from tests.dashboard.pipeline_history import UI_URLS, dagster_home
from tests.dashboard.test_urls import URL_PATHS
from tests.processes import ROOT, start_process, stop_process, venv_bin

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
IMAGES = ROOT / "docs" / "images"
#: Screenshots replace docs/images/ only when asked, so a test run leaves git clean.
UPDATE_SCREENSHOTS = os.environ.get("MLOPS_UPDATE_SCREENSHOTS") == "1"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]  # fmt: skip
LINKS = Links.of(UI_URLS["dagster"], UI_URLS["mlflow"], UI_URLS["viewer"])
PAGE_WAIT_S = 120
"""A page of a single-page app loads its data after the document: how long a test waits for what it expects."""


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


def _start(name: str, command: list[str], env: dict[str, str], ready, log: Path) -> subprocess.Popen:
    """A server process, once `ready()` says it answers (its log in the error when it exits or never does)."""
    process = start_process(command, env, log)
    try:
        wait_until(ready, 180, f"{name} answers", process, log, name)
    except BaseException:
        stop_process(process)
        raise
    return process


@pytest.fixture(scope="module")
def viewer(platform: Platform, tmp_path_factory) -> Iterator[str]:
    """`streamlit run dashboard/app.py`, as `make dashboard` starts it, at the viewer URL of the platform's links."""
    url = UI_URLS["viewer"]
    command = [venv_bin("streamlit"), "run", "dashboard/app.py", "--server.headless", "true", "--server.address",
               "127.0.0.1", "--server.port", _port(url), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]  # fmt: skip
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    ready = lambda: requests.get(f"{url}/_stcore/health", timeout=2).text == "ok"  # noqa: E731
    process = _start("streamlit", command, {**os.environ, **platform.env()}, ready, log)
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
def dagster_ui(platform: Platform, tmp_path_factory) -> Iterator[str]:
    """`dagster-webserver` on workspace.yaml and the platform's Dagster instance, once its code location loaded."""
    url = UI_URLS["dagster"]
    env = {**os.environ, **platform.env(), "DAGSTER_HOME": str(dagster_home(platform.settings.home))}
    command = [venv_bin("dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", _port(url)]
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus locationOrLoadError { __typename "
    query += "... on PythonError { message } } } } } }"

    def loaded() -> bool:
        answer = requests.post(f"{url}/graphql", json={"query": query}, timeout=5).json()
        entries = answer["data"]["workspaceOrError"]["locationEntries"]
        errors = [e["locationOrLoadError"] for e in entries if (e["locationOrLoadError"] or {}).get("message")]
        if errors:
            raise RuntimeError(f"the code location failed to load: {errors}")
        return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

    log = tmp_path_factory.mktemp("dagster-ui") / "webserver.log"
    process = _start("dagster-webserver", command, env, loaded, log)
    yield url
    stop_process(process)


@pytest.fixture(scope="module")
def mlflow_ui(platform: Platform, tmp_path_factory) -> Iterator[str]:
    """`mlflow server` on the platform's tracking store (the runs' artifacts stay where the pipeline wrote them)."""
    url = UI_URLS["mlflow"]
    command = [venv_bin("mlflow"), "server", "--backend-store-uri", platform.settings.mlflow_tracking_uri,
               "--no-serve-artifacts", "--host", "127.0.0.1", "--port", _port(url), "--workers", "1"]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = tmp_path_factory.mktemp("mlflow-ui") / "server.log"
    process = _start("mlflow server", command, env, lambda: requests.get(f"{url}/health", timeout=2).ok, log)
    yield url
    stop_process(process)


@pytest.fixture
def browser() -> Iterator:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing_service("needs Debian's chromium and chromedriver: run `make browser`")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        for flag in [*FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def shows(browser, *expected: str) -> str:
    """The page's text once it contains every expected string (the app loads its data after the document)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def text(driver) -> str | bool:
        body = driver.find_element(By.TAG_NAME, "body").text
        return body if all(e in body for e in expected) else False

    try:
        return WebDriverWait(browser, PAGE_WAIT_S).until(text)
    except Exception as error:
        body = browser.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{browser.current_url} never showed {expected}; it shows: {body[:1500]}") from error


#: The page's visible link to an address (JavaScript: one call, no stale element between finding and testing it).
FIND_LINK = "return [...document.querySelectorAll('a')].find(a => a.href === arguments[0] && a.getClientRects().length)"
HREFS = "return [...document.querySelectorAll('a')].map(a => a.href)"
#: Clicks "Skip" on the Dagster UI's first-visit dialog (join the community); returns how many it clicked.
SKIP_DIALOG = "return [...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Skip')" + (
    ".filter(b => !b.click()).length"
)


def click_link(browser, href: str) -> None:
    """Click the link to `href`, as a person would, and follow it (into the tab it opens, if it opens one)."""
    from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    tabs = set(browser.window_handles)
    deadline = time.monotonic() + PAGE_WAIT_S
    while True:
        anchor = browser.execute_script(FIND_LINK, href)
        if anchor is not None:
            try:
                browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", anchor)
                anchor.click()
                break
            except StaleElementReferenceException:  # the app re-rendered it: find it again
                continue
            except ElementClickInterceptedException:  # the Dagster UI's first-visit dialog (join the community)
                browser.execute_script(SKIP_DIALOG)
        if time.monotonic() > deadline:
            shown = sorted(set(browser.execute_script(HREFS)))
            raise AssertionError(f"{browser.current_url} has no link to {href} to click; its links: {shown}")
        time.sleep(0.25)
    WebDriverWait(browser, 30).until(lambda d: set(d.window_handles) - tabs or d.current_url.rstrip("/") == href)
    [*opened] = set(browser.window_handles) - tabs
    if opened:
        browser.switch_to.window(opened[0])
        WebDriverWait(browser, 30).until(lambda d: d.current_url != "about:blank")


def links_to(browser, *expected: str) -> None:
    """Wait until the page has a link to each expected address."""
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, PAGE_WAIT_S).until(lambda d: set(expected) <= set(d.execute_script(HREFS)))
    except Exception as error:
        shown = sorted(set(browser.execute_script(HREFS)))
        raise AssertionError(f"{browser.current_url} links to {shown}, not {expected}") from error


def settled(browser) -> None:
    """A viewer page once its script finished and its placeholders were replaced (charts draw just after)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    busy = "[data-testid='stStatusWidget'], [data-testid='stSkeleton']"
    WebDriverWait(browser, PAGE_WAIT_S).until(lambda d: not d.find_elements(By.CSS_SELECTOR, busy))
    time.sleep(2)  # Vega draws its charts after Streamlit placed them: only the picture waits for it


def screenshot(browser, name: str, tmp_path: Path) -> None:
    """The page as a PNG (kept in docs/images/ when MLOPS_UPDATE_SCREENSHOTS=1)."""
    if browser.current_url.startswith(UI_URLS["viewer"]):
        settled(browser)
    if browser.current_url.startswith(UI_URLS["dagster"]):  # its first-visit dialog, out of the picture
        deadline = time.monotonic() + 10
        while not browser.execute_script(SKIP_DIALOG) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)  # the dialog fades out
    shot = tmp_path / f"{name}.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes().startswith(b"\x89PNG")
    if UPDATE_SCREENSHOTS:
        (IMAGES / shot.name).write_bytes(shot.read_bytes())


def model_row(platform: Platform, version: int) -> dict:
    db = Warehouse(platform.settings.database_url)
    rows = db.read(model_history.select().where(model_history.c.model_version == version))
    db.dispose()
    return rows.iloc[0].to_dict()


def test_the_predict_page_prices_a_property_in_a_real_browser(platform, viewer, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(viewer)
    wait.until(seen.element_to_be_clickable((By.XPATH, "//button[.//p[text()='Predict']]"))).click()
    value = (By.CSS_SELECTOR, "[data-testid='stMetricValue']")
    wait.until(lambda driver: driver.find_elements(*value) and driver.find_elements(*value)[0].text.startswith("$"))

    known = [s["state"] for s in requests.get(f"{platform.serving.url}/states", timeout=30).json()["states"]]
    house = {**DEFAULT_PROPERTY, "state": DEFAULT_PROPERTY["state"] if DEFAULT_PROPERTY["state"] in known else known[0]}
    expected = platform.serving.post("/predict", house)
    shown = [element.text for element in browser.find_elements(*value)]
    assert shown == [money(expected["price"]), money(expected["price"] / DEFAULT_PROPERTY["house_size"]), "v2"]
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "Answered by house-price v2" in page and f"in {house['state']} (for sale)" in page
    screenshot(browser, "dashboard-predict", tmp_path)

    click_link(browser, f"{viewer}/explain")  # the menu, in the same session: the property priced above
    shows(browser, "Base price (the model's average)", "By what you entered")
    metrics = [element.text for element in browser.find_elements(*value)]
    assert metrics[1] == money(expected["price"])  # one price, to the cent, on both pages
    screenshot(browser, "dashboard-explain", tmp_path)


@pytest.mark.parametrize("path", [p for p in URL_PATHS if p != "predict"])
def test_every_viewer_page_renders_in_a_real_browser(path, viewer, browser, tmp_path):
    """Opened by its address, each page shows its title and neither a traceback nor a "failed unexpectedly"."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{viewer}/{path}")
    title = (By.XPATH, f"//h1[normalize-space()='{URL_PATHS[path]}']")
    WebDriverWait(browser, PAGE_WAIT_S).until(lambda d: d.find_elements(*title))
    settled(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert "failed unexpectedly" not in browser.find_element(By.TAG_NAME, "body").text
    if path != "explain":  # empty in a new session: the predict test's explanation is the picture
        screenshot(browser, f"dashboard-{path.replace('_', '-')}", tmp_path)


def test_from_the_viewer_to_mlflow_and_on_to_dagster(platform, viewer, mlflow_ui, dagster_ui, browser, tmp_path):
    """Model history (v2, promoted on drift) -> its MLflow version -> the Dagster run (drift_sensor's) behind it."""
    v2 = model_row(platform, 2)
    browser.get(LINKS.viewer_page("models", version=2))
    shows(browser, "v2 was promoted")
    links_to(browser, LINKS.mlflow_run(v2["mlflow_run_id"]), LINKS.dagster_partition("candidate_model", "00003"))
    click_link(browser, LINKS.mlflow_version(platform.settings.model_name, 2))
    mlflow_page = shows(browser, "Version 2", "promoted:", "Dagster run", "Viewer: model history")
    assert "champion" in mlflow_page  # the alias is on v2
    screenshot(browser, "mlflow-model-version", tmp_path)

    click_link(browser, LINKS.dagster_run(v2["dagster_run_id"]))
    page = shows(browser, v2["dagster_run_id"][:8], "train_job", "Success", "drift_sensor")
    assert "Manually launched" not in page  # launched by the sensor, and it says so
    screenshot(browser, "dagster-run", tmp_path)


def test_from_dagster_to_mlflow_and_back_to_the_viewer(platform, viewer, mlflow_ui, dagster_ui, browser, tmp_path):
    """candidate_model's partition (v3, rejected) -> its MLflow run -> the viewer's page of v3."""
    v3 = model_row(platform, 3)
    browser.get(LINKS.dagster_partition("candidate_model", "00003"))
    shows(browser, "mlflow_run", "mlflow_model_version", "Materialized")
    screenshot(browser, "dagster-candidate-partition", tmp_path)
    click_link(browser, LINKS.mlflow_run(v3["mlflow_run_id"]))
    shows(browser, "v3 - batch 00003", "Model v3 of house-price, trained through batch 00003", "Dagster run")
    screenshot(browser, "mlflow-run", tmp_path)

    click_link(browser, LINKS.viewer_page("models", version=3))
    shows(browser, "v3 was rejected", "not enough better than the naive baseline")
    links_to(browser, LINKS.mlflow_run(v3["mlflow_run_id"]), LINKS.dagster_run(v3["dagster_run_id"]))
    click_link(browser, LINKS.dagster_partition("candidate_model", "00003"))  # and back where it started
    shows(browser, "mlflow_run", "Materialized")


def test_a_drift_report_from_dagster_to_the_viewer_and_back(platform, viewer, dagster_ui, browser, tmp_path):
    """drift_report's partition -> the viewer's Drift page on that report -> back to the partition and its run."""
    browser.get(LINKS.dagster_partition("drift_report", "00003"))
    shows(browser, "train: drift detected", "share_drifted")
    click_link(browser, LINKS.drift_report("00003-vs-v1"))
    page = shows(browser, "train: drift detected", "Model v2, trained on this report")
    assert "No drift report" not in page
    screenshot(browser, "dashboard-drift-report", tmp_path)
    click_link(browser, LINKS.dagster_partition("drift_report", "00003"))
    shows(browser, "train: drift detected", "share_drifted")


def test_a_batch_skipped_for_no_drift_shows_its_outcome_in_dagster(dagster_ui, browser, tmp_path):
    """Batch 00002 trained nothing: candidate_model's events say why, with a link to the report."""
    browser.get(f"{dagster_ui}/assets/candidate_model?view=events&partition=00002")
    shows(browser, "Partition 00002 observed", "skip: no drift", "no column moved past its threshold")
    screenshot(browser, "dagster-skipped-batch", tmp_path)
    click_link(browser, LINKS.drift_report("00002-vs-v1"))
    shows(browser, "skip: no drift")


def test_the_swagger_ui_tries_a_realistic_example(platform, browser, tmp_path):
    """Serving's own page: title and version from the project, an example that prices a house."""
    browser.get(f"{platform.serving.url}/")
    page = shows(browser, "/predict", "/explain")
    version = requests.get(f"{platform.serving.url}/docs.json", timeout=10).json()["info"]["version"]
    assert version in page and "None" not in page.split("\n")[0]
    screenshot(browser, "serving-swagger", tmp_path)
