"""The Predict page in a real browser: Debian's headless chromium, driven by Selenium through chromedriver.

`make browser` installs both. With MLOPS_UPDATE_SCREENSHOTS=1 its screenshot replaces the README's (docs/images/).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from dashboard.ui import DEFAULT_PROPERTY, money
from tests.conftest import free_port, missing_service
from tests.dashboard.conftest import Platform, eventually
from tests.processes import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: The README's picture; refreshed only when asked (MLOPS_UPDATE_SCREENSHOTS=1), so a test run leaves git clean.
README_SCREENSHOT = ROOT / "docs" / "images" / "dashboard-predict.png"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900"]  # fmt: skip


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/_stcore/health", timeout=2).text == "ok"
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def dashboard_url(platform: Platform, tmp_path_factory) -> Iterator[str]:
    """`streamlit run dashboard/app.py`, the way `make dashboard` starts it, on this platform."""
    port = free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    streamlit = str(Path(sys.executable).parent / "streamlit")
    with open(log, "w") as output:
        process = subprocess.Popen(
            [streamlit, "run", "dashboard/app.py", "--server.headless", "true", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--client.toolbarMode", "viewer"],
            cwd=ROOT, env={**os.environ, **platform.env()}, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: process.poll() is not None or _healthy(url), "streamlit answers", timeout=60)
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}: {log.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(15)


@pytest.fixture
def browser() -> Iterator[object]:
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


def test_the_predict_page_prices_a_property_in_a_real_browser(platform, dashboard_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(dashboard_url)
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

    screenshot = tmp_path / "dashboard-predict.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("MLOPS_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOT.write_bytes(screenshot.read_bytes())
