"""Browser fixtures: Playwright for Python driving Debian's Chromium (`apt-get install
chromium`; `make test` and CI install it) against the local host of tests/e2e.

    def test_something(page, host, admin):
        page.goto("/admin")          # base_url is the host's
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.services import Services
from tests.browser.support import CHROMIUM, Account, add_account, launch_chromium
from tests.e2e import conftest as e2e

# the local host fixtures of the end-to-end tests (the browser tests get a host of their own)
launch_devhost = e2e.launch_devhost
host = e2e.host

pytestmark = pytest.mark.browser


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser, host):
    context = browser.new_context(base_url=host.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture(scope="session")
def real_time_services(settings) -> Services:
    """Services on the host's storage and keys, on the system clock (the host's): codes
    issued with them are live on the host."""
    return Services(settings)


@pytest.fixture(scope="session")
def admin(real_time_services) -> Account:
    return add_account(real_time_services, "admin")


@pytest.fixture(scope="session")
def member(real_time_services) -> Account:
    return add_account(real_time_services, "user", name="member")
