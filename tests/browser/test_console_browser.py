"""The admin console in a real browser: headless Chromium through chromium-driver.

Each test signs in through the form with the keyboard, works the pages as an admin would,
and ends by checking the browser's console: no CSP violation, no failed resource.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import LiveGateway, screenshot
from tests.gateway.console.entra_cycle import STEPS, new_user

ADMIN = ("admin",)


def arrive(browser, url: str) -> None:
    """Wait for a navigation a key press or click started (bounded; a miss fails the test)."""
    WebDriverWait(browser, 10).until(expected_conditions.url_to_be(url))


def load(browser, element, *keys: str) -> None:
    """Click ``element`` (or type ``keys`` into it) and wait until the next page replaced this one."""
    page = browser.find_element(By.TAG_NAME, "html")
    if keys:
        element.send_keys(*keys)
    else:
        element.click()

    def replaced(_driver) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:  # stale, or chromedriver's "does not belong to the document"
            return True
        return False

    WebDriverWait(browser, 10).until(replaced)


def sign_in(browser, live: LiveGateway, token: str) -> None:
    browser.get(live.url + "/admin/")
    assert browser.current_url == live.url + "/admin/signin"
    field = browser.find_element(By.ID, "token")
    assert browser.switch_to.active_element == field  # autofocus: type at once
    load(browser, field, token, Keys.ENTER)
    arrive(browser, live.url + "/admin/users")


def console_problems(browser) -> list[str]:
    """Console messages that mean something went wrong: CSP violations, failed loads, errors."""
    return [entry["message"] for entry in browser.get_log("browser")
            if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]]


def entra_cycle(live: LiveGateway, token: str, user_name: str) -> str:
    status, body = live.http("POST", "/scim/v2/Users", token, json.dumps(new_user(user_name)).encode())
    assert status == 201, body
    user_id = json.loads(body)["id"]
    for method, patch, expected in STEPS:
        status, body = live.http(method, f"/scim/v2/Users/{user_id}", token, json.dumps(patch).encode())
        assert status == expected, body
    return user_id


def wait_for_file(folder: Path, name: str, seconds: float = 20) -> bytes:
    """Chromium writes a download under a temporary name, then renames it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        path = folder / name
        if path.exists() and not list(folder.glob("*.crdownload")):
            return path.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded into {folder}: {list(folder.iterdir())}")


def test_create_a_token_read_it_once_use_it_and_revoke_it(browser, live: LiveGateway):
    sign_in(browser, live, live.tenant_token("tokens", ADMIN))
    load(browser, browser.find_element(By.LINK_TEXT, "Tokens"))
    screenshot(browser, "tokens")
    browser.find_element(By.ID, "description").send_keys("Microsoft Entra ID")
    browser.find_element(By.ID, "owner").send_keys("entra@example.com")
    checked = [box.get_attribute("value") for box in browser.find_elements(By.NAME, "scope") if box.is_selected()]
    assert checked == ["scim:read", "scim:write"]  # preselected for a SCIM integration
    load(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/admin/tokens'] button[type=submit]"))

    assert browser.find_element(By.TAG_NAME, "h1").text == "Token created"
    secret = browser.find_element(By.ID, "secret").get_attribute("value")
    assert secret.startswith("scgw_")
    browser.find_element(By.ID, "copy").click()  # the page's one script, allowed by the CSP
    status = browser.find_element(By.ID, "copy-status")
    WebDriverWait(browser, 10).until(lambda _: status.text != "")
    assert status.text in ("Copied.", "Selected: press Ctrl+C to copy.")
    screenshot(browser, "token-created")
    assert live.http("GET", "/scim/v2/Users", secret)[0] == 200

    load(browser, browser.find_element(By.LINK_TEXT, "Back to tokens"))
    arrive(browser, live.url + "/admin/tokens")
    assert secret not in browser.page_source  # shown once
    token_id = browser.find_element(By.XPATH, "//tr[td[1]='Microsoft Entra ID']").get_attribute("data-token-id")
    load(browser, browser.find_element(By.CSS_SELECTOR, f"tr[data-token-id='{token_id}'] button.danger"))
    row = browser.find_element(By.CSS_SELECTOR, f"tr[data-token-id='{token_id}']")
    assert row.find_element(By.CLASS_NAME, "status").text.startswith("revoked ")
    assert live.http("GET", "/scim/v2/Users", secret)[0] == 401
    assert console_problems(browser) == []


def test_a_users_history_picture_shows_each_step_of_an_entra_cycle(browser, live: LiveGateway):
    scim = live.tenant_token("history")
    user_id = entra_cycle(live, scim, "ada@example.com")
    sign_in(browser, live, live.tenant_token("history", ADMIN))
    screenshot(browser, "users")
    search = browser.find_element(By.ID, "q")
    load(browser, search, "ada", Keys.ENTER)
    arrive(browser, f"{live.url}/admin/users?q=ada&status=")
    load(browser, browser.find_element(By.LINK_TEXT, "ada@example.com"))
    arrive(browser, f"{live.url}/admin/users/{user_id}")

    steps = browser.find_elements(By.CSS_SELECTOR, "svg#timeline g.step")
    assert [step.get_attribute("data-action") for step in steps] == ["create", "update", "deactivate", "refused"]
    assert all(step.is_displayed() for step in steps)
    texts = [" ".join(t.text for t in step.find_elements(By.TAG_NAME, "text")) for step in steps]
    assert "userName = \"ada@example.com\"" in texts[0]
    assert 'name.givenName: "Ada" → "Augusta"' in texts[1]
    assert "active: true → false" in texts[2]
    assert "-> 400 invalidValue" in texts[3] and "cooldown" in texts[3]
    assert all("by scim-bot@example.com" in text for text in texts)
    # Each step's circle is drawn in the colour the stylesheet gives its kind.
    fills = [step.find_element(By.TAG_NAME, "circle").value_of_css_property("fill") for step in steps]
    assert len(set(fills)) == 4
    screenshot(browser, "user")
    assert console_problems(browser) == []


def test_filter_the_log_to_failures_expand_and_download_the_apis_bytes(browser, live: LiveGateway, downloads):
    scim = live.tenant_token("log")
    entra_cycle(live, scim, "grace@example.com")
    sign_in(browser, live, live.tenant_token("log", ADMIN))
    load(browser, browser.find_element(By.LINK_TEXT, "Provisioning log"))
    assert len(browser.find_elements(By.CSS_SELECTOR, "details.entry")) == 4
    screenshot(browser, "log")
    Select(browser.find_element(By.ID, "f-result")).select_by_value("failure")
    load(browser, browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
    WebDriverWait(browser, 10).until(expected_conditions.url_contains("result=failure"))
    entries = browser.find_elements(By.CSS_SELECTOR, "details.entry")
    assert [entry.get_attribute("data-result") for entry in entries] == ["failure"]

    summary = entries[0].find_element(By.TAG_NAME, "summary")
    summary.send_keys(Keys.ENTER)  # expands with the keyboard
    assert entries[0].get_attribute("open") == "true"
    steps = [step.text for step in entries[0].find_elements(By.CSS_SELECTOR, "ol.steps li")]
    assert steps == ["auth ok", "parse ok", "validate failed: 400 invalidValue", "apply not reached"]
    assert "cooldown" in entries[0].find_element(By.CSS_SELECTOR, "p.error").text
    screenshot(browser, "log-failure-expanded")

    link = browser.find_element(By.ID, "download")
    query = link.get_attribute("href").split("?", 1)[1]
    link.click()
    downloaded = wait_for_file(downloads, "provisioning-log.csv")
    status, api = live.http("GET", "/api/2/audit/provisioning?" + query, scim)
    assert status == 200
    assert downloaded == api
    assert downloaded.count(b"\r\n") == 2 and b",failure,400," in downloaded
    assert console_problems(browser) == []


def test_a_script_user_name_is_text_in_the_browser(browser, live: LiveGateway):
    token = live.tenant_token("hostile", profile="rfc")
    status, body = live.http("POST", "/scim/v2/Users", token, json.dumps(
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "<script>alert(1)</script>"}).encode())
    assert status == 201, body
    sign_in(browser, live, live.tenant_token("hostile", ADMIN, profile="rfc"))
    link = browser.find_element(By.CSS_SELECTOR, "#users tbody a")
    assert link.text == "<script>alert(1)</script>"
    load(browser, link)
    assert browser.find_element(By.TAG_NAME, "h1").text == "<script>alert(1)</script>"
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.accept()  # there is none: the script did not run
    assert console_problems(browser) == []


def test_settings_and_health_pages_work_and_sign_out_ends_the_session(browser, live: LiveGateway):
    sign_in(browser, live, live.tenant_token("pages", ADMIN))
    load(browser, browser.find_element(By.LINK_TEXT, "Tenant settings"))
    cooldown = browser.find_element(By.ID, "s-reactivation_cooldown_days")
    cooldown.clear()
    cooldown.send_keys("30")
    load(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/admin/settings'] button[type=submit]"))
    assert browser.find_element(By.CSS_SELECTOR, "p.ok").text == "Saved."
    assert browser.find_element(By.ID, "s-reactivation_cooldown_days").get_attribute("value") == "30"
    screenshot(browser, "settings")
    load(browser, browser.find_element(By.LINK_TEXT, "Health"))
    assert browser.find_element(By.ID, "database").text.startswith("Reachable")
    screenshot(browser, "health")
    load(browser, browser.find_element(By.CSS_SELECTOR, "form.signout button"))
    arrive(browser, live.url + "/admin/signin")
    screenshot(browser, "signin")
    browser.get(live.url + "/admin/health")
    assert browser.current_url == live.url + "/admin/signin"
    assert console_problems(browser) == []


def test_every_page_reflows_at_200_percent_zoom(browser, live: LiveGateway):
    """200 % zoom of a 1280 px window is a 640 px CSS viewport: no page may need sideways scrolling."""
    scim = live.tenant_token("zoom")
    user_id = entra_cycle(live, scim, "zoe@example.com")
    sign_in(browser, live, live.tenant_token("zoom", ADMIN))
    browser.set_window_size(640, 1000)
    try:
        for path in ("/admin/users", f"/admin/users/{user_id}", "/admin/log", "/admin/tokens", "/admin/settings",
                     "/admin/health"):
            browser.get(live.url + path)
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{path} is {overflow} px too wide"
    finally:
        browser.set_window_size(1280, 1000)
    assert console_problems(browser) == []


def test_the_console_log_check_does_catch_a_csp_violation(browser, live: LiveGateway):
    """The control for every ``console_problems(...) == []`` above: an inline script is refused
    by the policy, and the refusal reaches the log this suite reads."""
    browser.get(live.url + "/admin/signin")
    browser.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = true';"
        " document.head.appendChild(s);")
    assert browser.execute_script("return window.ran === undefined")
    problems = console_problems(browser)
    assert len(problems) == 1 and "Content Security Policy" in problems[0], problems
