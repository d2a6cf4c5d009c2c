"""/docs in a real browser: headless Chromium loads Swagger UI (served locally, no network), a tenant
authorizes with an API key and "Try it out" on GET /api/v1/sms/me answers the success envelope."""

from __future__ import annotations

import json
import shutil

import pytest
import requests

from tests.conftest import skip_unless_installed
from tests.e2e.processes import run_cli, running, service_env, start_gunicorn

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 30


@pytest.fixture
def browser(tmp_path):
    skip_unless_installed(CHROMIUM and CHROMEDRIVER, "Chromium (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(
        executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log")
    )
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def sms_api(databases, tmp_path):
    """The SMS API under gunicorn on loopback, migrated, with one tenant."""
    env = service_env(
        "SMS",
        ENV="development",
        DATABASE_URL=databases.create("docs"),
        BROKER_URL=f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    )
    run_cli("sms_service", env, "db", "upgrade")
    tenant = json.loads(run_cli("sms_service", env, "tenant", "create", "--name", "文档测试租户"))
    api, base_url = start_gunicorn("sms_service:create_app()", env, tmp_path, workers=1)
    with running(api):
        yield base_url, tenant


def test_try_it_out_with_an_api_key_gets_the_success_envelope(browser, sms_api):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    base_url, tenant = sms_api
    wait = WebDriverWait(browser, TIMEOUT)

    def click(selector: str):
        element = wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, selector)))
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()
        return element

    browser.get(base_url + "/docs")
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".swagger-ui .info .title")))
    assert "SMS service" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text

    click(".swagger-ui .auth-wrapper .btn.authorize")
    key_input = wait.until(
        ready.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux input[type=text]"))
    )
    key_input.send_keys(tenant["api_key"])
    click(".modal-ux .auth-btn-wrapper .btn.modal-btn.auth.authorize")
    click(".modal-ux .auth-btn-wrapper .btn-done")

    click('.opblock-get .opblock-summary-path[data-path="/api/v1/sms/me"]')
    click(".opblock.is-open .try-out__btn")
    click(".opblock.is-open .btn.execute")
    body = wait.until(
        ready.visibility_of_element_located(
            (By.CSS_SELECTOR, ".opblock.is-open .live-responses-table .response-col_description pre")
        )
    )
    answer = json.loads(body.text)
    assert answer["code"] == 0 and answer["message"] == "success"
    assert answer["data"]["tenant_id"] == tenant["tenant_id"]
    status = browser.find_element(
        By.CSS_SELECTOR, ".opblock.is-open .live-responses-table tr.response .response-col_status"
    )
    assert status.text.strip() == "200"


def test_only_the_offline_docs_page_is_offered(browser, sms_api):
    """No page that needs a CDN: ReDoc is not served, and /docs loads nothing from another host."""
    base_url, _ = sms_api
    assert requests.get(base_url + "/redoc", timeout=10).status_code == 404
    browser.get(base_url + "/docs")
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(function (entry) { return entry.name; });"
    )
    assert loaded and all(url.startswith(base_url) for url in loaded), loaded
