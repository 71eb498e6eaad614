"""The console in a real browser (Debian's headless Chromium through Selenium): signing in, then the
playground streaming a reply through the customer's key, under the pages' Content-Security-Policy."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support import MODEL, AicyProcess

PASSWORD = "browser password 1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is installed by `make test`")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver must be installed (make test-servers)")
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (make test-servers installs them)"
        )
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_sign_in_and_stream_in_the_playground(
    aicy: AicyProcess, admin: httpx.Client, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser  # a selenium WebDriver
    name = f"browser-{time.monotonic_ns()}"
    key = admin.post("/admin/keys", json={"account": name}).json()["key"]
    assert admin.post(f"/admin/accounts/{name}/topup", json={"amount": "5"}).status_code == 200
    assert admin.post(f"/admin/accounts/{name}/login", json={"password": PASSWORD}).status_code == 200

    driver.get(f"{aicy.root_url}/console/login?lang=en")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "name").send_keys(name)  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)  # type: ignore[attr-defined]
    driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "balance"))
    assert driver.find_element(By.ID, "balance").text == "$5.00"  # type: ignore[attr-defined]

    driver.get(f"{aicy.root_url}/console/playground")  # type: ignore[attr-defined]
    driver.find_element(By.NAME, "key").send_keys(key)  # type: ignore[attr-defined]
    Select(driver.find_element(By.NAME, "model")).select_by_value(MODEL)  # type: ignore[attr-defined]
    limit = driver.find_element(By.NAME, "max_output_tokens")  # type: ignore[attr-defined]
    limit.clear()
    limit.send_keys("16")
    driver.find_element(By.CSS_SELECTOR, "#playground button[type=submit]").click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 180).until(
        lambda d: (
            d.find_element(By.ID, "status").text in ("completed", "incomplete")
            or ":" in d.find_element(By.ID, "status").text
        )
    )
    status = driver.find_element(By.ID, "status").text  # type: ignore[attr-defined]
    assert status in ("completed", "incomplete"), status
    assert driver.find_element(By.ID, "output").text.strip()  # type: ignore[attr-defined]
    usage = driver.find_element(By.ID, "usage").text  # type: ignore[attr-defined]
    assert usage.startswith("input ") and "output " in usage and "$" in usage
    problems = [
        entry["message"]
        for entry in driver.get_log("browser")  # type: ignore[attr-defined]
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]
    assert problems == []
