"""Without a browser the console's browser tests fail under CI and are skipped elsewhere."""

from tests.browser.conftest import gate


def test_a_missing_browser_fails_under_ci():
    assert gate("/usr/bin/chromium", ci=True) == (
        "fail", "browser tests need /usr/bin/chromium (apt-get install chromium chromium-driver); "
                "under CI=true they must run")


def test_a_missing_browser_is_a_skip_with_the_reason_elsewhere():
    assert gate("/usr/bin/chromedriver", ci=False) == (
        "skip", "browser tests need /usr/bin/chromedriver (apt-get install chromium chromium-driver)")


def test_a_present_browser_runs():
    assert gate(None, ci=True) is None
