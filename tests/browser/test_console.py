"""The admin console in a real browser: sign-in round trips to the exact URL asked for,
roles, logout by POST with its token, and return URLs that leave the site."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

pytestmark = pytest.mark.browser


def sign_in(page, account) -> None:
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_role("button", name="Sign in").click()


def test_first_visit_to_admin_goes_to_login_and_comes_back_to_admin(page, context, host, admin):
    page.goto("/admin")
    assert page.url == f"{host.url}/admin/login?returnUrl=%2Fadmin"
    sign_in(page, admin)
    page.wait_for_url(f"{host.url}/admin")
    assert page.get_by_role("heading", level=1).inner_text() == "Console"
    assert admin.email in page.inner_text("main")
    assert "Storage tables: answering" in page.inner_text("main")
    (session_cookie,) = [c for c in context.cookies() if c["name"] == "console_session"]
    assert session_cookie["httpOnly"] is True
    assert session_cookie["sameSite"] == "Strict"
    assert session_cookie["path"] == "/admin"
    assert session_cookie["secure"] is False  # COOKIE_SECURE=false: the tests' host is plain http


def test_a_deep_link_with_a_query_string_comes_back_whole(page, host, admin):
    page.goto("/admin/audit?type=redeem&page=2")
    sign_in(page, admin)
    page.wait_for_url(f"{host.url}/admin/audit?type=redeem&page=2")
    assert page.get_by_label("Type").input_value() == "redeem"
    assert "page 2" in page.inner_text("main")


def test_a_signed_in_user_without_role_admin_lands_on_denied(page, host, member):
    page.goto("/admin/users")
    sign_in(page, member)
    page.wait_for_url(f"{host.url}/admin/denied")
    assert "role user" in page.get_by_role("alert").inner_text()


def test_logout_is_a_post_with_the_token_and_a_forged_post_is_refused(page, context, host, admin):
    page.goto("/admin")
    sign_in(page, admin)
    page.wait_for_url(f"{host.url}/admin")
    token = next(c["value"] for c in context.cookies() if c["name"] == "console_session")

    # the browser's cookie goes along, the form's token does not: refused, still signed in
    assert context.request.post(f"{host.url}/admin/logout", form={}).status == 403
    assert context.request.post(f"{host.url}/admin/logout", form={"csrfToken": "0" * 64}).status == 403
    # no GET route: the Functions host answers 404 itself (it routes on path and method)
    assert context.request.get(f"{host.url}/admin/logout").status == 404
    page.goto("/admin")
    assert page.url == f"{host.url}/admin"

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{host.url}/admin/login")
    assert not [c for c in context.cookies() if c["name"] == "console_session"]
    gone = httpx.get(f"{host.url}/api/users/me", headers={"authorization": f"Bearer {token}"})
    assert gone.status_code == 401  # the session itself ended, not just the cookie
    page.goto("/admin")
    assert page.url.startswith(f"{host.url}/admin/login?")


def test_open_redirect_attempts_land_on_admin(page, context, host, admin):
    # the rest of the refused shapes: tests/unit/test_console_return_url.py
    for target in ("//evil.example", "https://evil.example", "/\\evil.example", "/\t/evil.example"):
        context.clear_cookies()
        page.goto(f"/admin/login?returnUrl={quote(target, safe='')}")
        sign_in(page, admin)
        page.wait_for_url(f"{host.url}/admin")
        # signed in already: the login page sends the same returnUrl to /admin straight away
        page.goto(f"/admin/login?returnUrl={quote(target, safe='')}")
        assert page.url == f"{host.url}/admin", target
