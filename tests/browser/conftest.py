"""A live gateway on 127.0.0.1 and a headless Chromium driven through chromium-driver.

The gateway runs in a thread with its own event loop, so the blocking Selenium calls in the
tests do not stall it. Under ``CI=true`` a missing browser fails the tests; elsewhere they
are skipped with the reason (``apt-get install chromium chromium-driver`` fixes it).

Chromium (156) keeps ``Secure`` cookies on plain ``http://127.0.0.1`` and
``http://localhost`` alike (both are "potentially trustworthy" origins), so the tests use the
address ``serve`` prints and the session cookie is the production one.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from domain.tenant import SCOPES
from gateway.app import create_app
from gateway.http.keys import TENANCY
from gateway.settings import Settings
from tests.conftest import ACTOR, TEMPLATE, _admin, with_database

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,1000")
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: save a picture of each page there


def _browser_missing() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return ", ".join(missing) or None


def gate(missing: str | None, ci: bool) -> tuple[str, str] | None:
    """What to do without a browser: ("fail", reason) under CI, else ("skip", reason)."""
    if missing is None:
        return None
    reason = f"browser tests need {missing} (apt-get install chromium chromium-driver)"
    return ("fail", reason + "; under CI=true they must run") if ci else ("skip", reason)


@pytest.fixture(scope="session")
def browser_ready() -> None:
    decision = gate(_browser_missing(), os.environ.get("CI") == "true")
    if decision is not None:
        (pytest.fail if decision[0] == "fail" else pytest.skip)(decision[1])


@dataclass
class LiveGateway:
    url: str
    app: web.Application
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine):
        """Run a coroutine on the server's loop (the services live there)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def tenant_token(self, tenant: str, scopes=SCOPES, profile: str = "bynder",
                     owner: str = "scim-bot@example.com") -> str:
        async def make() -> str:
            tenancy = self.app[TENANCY]
            if tenant not in {t.name for t in await tenancy.tenants()}:
                await tenancy.create_tenant(tenant, profile, ACTOR)
            return (await tenancy.create_token(tenant, owner, "SCIM Token", tuple(scopes), ACTOR))[1]

        return self.run(make())

    def http(self, method: str, path: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


@pytest.fixture(scope="module")
def live(browser_ready, server_dsn: str, template_dsn: str) -> Iterator[LiveGateway]:
    name = f"scimgw_browser_{uuid.uuid4().hex[:12]}"
    admin = with_database(server_dsn, "postgres")
    asyncio.run(_admin(admin, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}"))
    settings = Settings(pool_min_size=1, pool_max_size=4, access_log=False)
    app = create_app(settings, with_database(server_dsn, name))
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    ready = threading.Event()
    port: list[int] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port.append(runner.addresses[0][1])
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="live-gateway", daemon=True)
    thread.start()
    assert ready.wait(30), "the gateway did not start"
    yield LiveGateway(f"http://127.0.0.1:{port[0]}", app, loop)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=30)
    loop.close()
    asyncio.run(_admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(browser_ready, tmp_path_factory: pytest.TempPathFactory, downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    # Lookups right after a click or key press wait for the next page (bounded).
    browser.implicitly_wait(10)
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield browser
    browser.quit()


@pytest.fixture
def browser(driver, live: LiveGateway):
    """The module's browser with no cookies and an empty console log."""
    driver.delete_all_cookies()
    driver.get(live.url + "/admin/signin")
    driver.delete_all_cookies()
    driver.get_log("browser")
    return driver


def screenshot(driver, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, max(700, min(height + 20, 2400)))
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))
        driver.set_window_size(1280, 1000)
