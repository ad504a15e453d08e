"""Browser tests: Debian's Chromium driven by Playwright against the real web server.

They run in their own pytest process (`pytest -m e2e`): Playwright's event loop
would otherwise disturb the asyncio tests.
"""

import pytest

from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def login(browser, asgi_server):
    """Open a fresh browser context logged in as ``username``; returns its page.

    Every page is watched for Content-Security-Policy refusals (an inline script, handler or
    style, eval, a connection the policy does not allow): any one fails the test.
    """
    contexts = []
    csp_violations = []

    def _watch(message):
        if "Content Security Policy" in message.text:
            csp_violations.append(message.text)

    def _login(username, *, timezone_id="Europe/Berlin", viewport=None):
        context = browser.new_context(
            base_url=asgi_server, timezone_id=timezone_id, viewport=viewport or {"width": 1400, "height": 1000}
        )
        contexts.append(context)
        context.on("page", lambda new_page: new_page.on("console", _watch))
        page = context.new_page()
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/")
        return page

    yield _login
    for context in contexts:
        context.close()
    assert not csp_violations, "the Content-Security-Policy refused: " + "; ".join(csp_violations)
