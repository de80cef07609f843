"""`__Host-` cookies in Chromium as Azure sends them. The Azure Functions Python worker
turns every Set-Cookie into a structured cookie whose missing Domain becomes an empty one,
and the host writes it back with `domain=` (Azure/azure-functions-python-worker#1902);
the local host writes cookies the same way, so each cookie here reaches Chromium in the
form Azure gives it. The decision this backs is in docs/decisions.md ("Cookie prefixes")."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.test_console import sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secure_host(launch_devhost, settings, app_settings_values):
    """The app with Secure cookies (the default); Chromium takes Secure cookies from
    http://127.0.0.1, a potentially trustworthy origin."""
    with launch_devhost({**app_settings_values, "COOKIE_SECURE": ""}) as running:
        yield running


@pytest.fixture
def secure_context(browser, secure_host):
    context = browser.new_context(base_url=secure_host.url)
    context.set_default_timeout(15_000)
    yield context
    context.close()


def kept_as_host_cookie(cookie: dict) -> bool:
    """Kept by Chromium the way `__Host-` demands: host-only, Secure, Path=/."""
    return (
        cookie["name"].startswith("__Host-")
        and cookie["secure"]
        and cookie["path"] == "/"
        and (not cookie["domain"].startswith("."))
    )


def test_the_host_writes_every_app_cookie_with_an_empty_domain(secure_host):
    header = secure_host.client.get("/").headers["set-cookie"]
    assert header.startswith("__Host-form_nonce=")
    assert "; domain=; path=/;" in header


def test_the_form_cookie_is_kept_and_round_trips_in_chromium(secure_context):
    page = secure_context.new_page()
    page.goto("/")
    (nonce,) = secure_context.cookies()
    assert nonce["name"] == "__Host-form_nonce"
    assert kept_as_host_cookie(nonce)
    assert (nonce["httpOnly"], nonce["sameSite"]) == (True, "Strict")
    page.get_by_label("Link or id").fill("not a link")
    page.get_by_label("6-digit code").fill("123456")
    page.get_by_role("button", name="Get the file").click()
    # the form's token matched the cookie's nonce: the page names the link, not the form's age
    assert "Paste the link you were sent" in page.get_by_role("alert").inner_text()


def test_console_session_and_device_cookies_are_kept_sent_and_cleared(secure_context, secure_host, admin):
    page = secure_context.new_page()
    page.goto("/admin")
    sign_in(page, admin)
    page.wait_for_url(f"{secure_host.url}/admin")  # the session cookie went back with the redirect
    assert admin.email in page.inner_text("main")
    cookies = {cookie["name"]: cookie for cookie in secure_context.cookies()}
    assert {"__Host-console_session", "__Host-device"} <= set(cookies)
    assert all(kept_as_host_cookie(cookie) for cookie in cookies.values())
    assert cookies["__Host-device"]["expires"] > 0  # a lasting cookie, not a session one
    token = cookies["__Host-console_session"]["value"]

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{secure_host.url}/admin/login")
    assert "__Host-console_session" not in {cookie["name"] for cookie in secure_context.cookies()}
    gone = httpx.get(f"{secure_host.url}/api/users/me", headers={"authorization": f"Bearer {token}"})
    assert gone.status_code == 401
