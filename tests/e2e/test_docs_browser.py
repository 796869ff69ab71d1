"""Swagger UI renders in a real headless browser, offline, from files the local stack serves.

Debian's ``chromium`` and ``chromium-driver`` drive the page (``.ci/run`` installs them). The
machine has no route to the internet, and the test also checks that every resource the page
loaded came from the stack itself: a CDN reference would leave the page blank.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from routes import ROUTES
from tests.e2e.conftest import Stack

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Headless, and none of Chromium's own connections (updates, sync, metrics) on a closed network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,2000",
)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    for program in (CHROMIUM, CHROMEDRIVER):
        assert os.access(program, os.X_OK), f"{program} is missing: apt-get install chromium chromium-driver"
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not try to download anything
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_swagger_ui_renders_every_operation_offline(stack: Stack, browser: webdriver.Chrome) -> None:
    browser.get(f"{stack.base_url}/docs")

    # Swagger UI fetched openapi.json and rendered one block per operation.
    WebDriverWait(browser, 30).until(
        lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) >= len(ROUTES)
    )
    text = browser.find_element(By.ID, "swagger-ui").text
    assert "Datasets API" in text
    for summary in ("Query rows", "Insert (or upsert) rows", "Create a dataset", "Create an API key"):
        assert summary in text, summary
    paths = {
        element.text.replace("\u200b", "")
        for element in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")
    }
    assert {route.path for route in ROUTES.values()} <= paths

    # Every file the page loaded came from the stack, none from a CDN.
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name).concat([location.href]);"
    )
    hosts = {urlsplit(url).netloc for url in loaded}
    assert hosts == {urlsplit(stack.base_url).netloc}, loaded
    assert any(url.endswith("/v1/docs/swagger-ui-bundle.js") for url in loaded)
    assert any(url.endswith("/v1/openapi.json") for url in loaded)
