"""A new user's whole journey through the account pages, in a real browser: register
(the meter moving from weak to strong), read the mailbox, activate, sign in, upload (by
button and by drag and drop), issue a code, a guest redeeming it in a second browser
context and downloading the same bytes, the code shown as redeemed; then revoke, a new
guest link, and a password change. Every page is checked with axe-core (0 serious or
critical violations), and the files page at a phone's width.

With SCREENSHOTS_DIR set (make screenshots), each page is saved there as it is checked."""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.support import PASSWORD, serious_violations, with_axe

pytestmark = pytest.mark.browser

NEW_PASSWORD = "amber-Canyon-whistle-77"
PHONE = {"width": 375, "height": 740}
WEAK, STRONG = r"^(Very weak|Weak)\.", r"^(Strong|Very strong)\."  # the meter's words


@pytest.fixture
def user_context(browser, host):
    context = browser.new_context(base_url=host.url, accept_downloads=True)
    context.set_default_timeout(15_000)
    with_axe(context)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=host.url)
    yield context
    context.close()


def checked(page, name: str) -> None:
    """The page has no serious or critical accessibility violation; saved as a screenshot
    when SCREENSHOTS_DIR is set."""
    assert serious_violations(page) == [], name
    if os.environ.get("SCREENSHOTS_DIR"):
        page.screenshot(path=Path(os.environ["SCREENSHOTS_DIR"]) / f"account-{name}.png", full_page=True)


def type_password(page, field: str, password: str, judged: str) -> int:
    """Type into a password field, wait for the meter to judge what was typed (the words
    `judged` matches), and return the meter's score."""
    page.locator(f"#{field}").fill(password)
    expect(page.locator(f"#{field}-meter-text")).to_contain_text(re.compile(judged))
    return page.evaluate(f"document.querySelector('#{field}-meter meter').value")


def activation_code(context, email: str) -> str:
    """The code of the newest activation mail in the dev mailbox (the host's queue trigger
    delivers it within a few seconds)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = context.request.get("/api/dev/mailbox", params={"to": email})
        mails = [m for m in answer.json()["data"] if m["kind"] == "activation"]
        if mails:
            return re.search(r"code is (\d+)\.", mails[-1]["text"]).group(1)
        time.sleep(0.3)
    raise AssertionError(f"no activation mail for {email}")


def test_a_new_user_registers_shares_a_file_and_manages_its_codes(user_context, browser, host):
    page = user_context.new_page()
    email = f"journey.{secrets.token_hex(4)}@example.com"

    # register: the meter moves from weak to strong as the password grows
    page.goto("/account/register")
    page.get_by_label("Email").fill(email)
    assert type_password(page, "password", "abc", WEAK) < 2
    assert type_password(page, "password", PASSWORD, STRONG) >= 3
    checked(page, "register")
    page.get_by_role("button", name="Create account").click()

    # activate with the code from the mailbox
    assert "a code is on its way" in page.get_by_role("status").inner_text()
    assert page.get_by_label("Email").input_value() == email
    checked(page, "activate")
    page.get_by_label("Code from the mail").fill(activation_code(user_context, email))
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Activate").click()

    # sign in
    assert "Your account is active" in page.get_by_role("status").inner_text()
    checked(page, "login")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{host.url}/account")
    assert any(c["name"].endswith("device") for c in user_context.cookies())  # the known-device cookie

    # upload by the button, with the progress bar (recorded across the page change)
    data = secrets.token_bytes(3 * 1024 * 1024)
    page.evaluate(
        """() => { const bar = document.querySelector('progress');
                   new MutationObserver(() => sessionStorage.setItem('progress', String(bar.value)))
                       .observe(bar, {attributes: true}); }"""
    )
    page.set_input_files("#file", files=[{"name": "report.bin", "mimeType": "application/octet-stream",
                                          "buffer": data}])  # fmt: skip
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(f"{host.url}/account?done=uploaded")
    assert page.evaluate("sessionStorage.getItem('progress')") == "100"
    assert "The file is stored." in page.get_by_role("status").inner_text()

    # upload by drag and drop
    dropped = page.evaluate_handle(
        """() => { const transfer = new DataTransfer();
                   transfer.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
                   return transfer; }"""
    )
    page.locator("[data-dropzone]").dispatch_event("drop", {"dataTransfer": dropped})
    page.get_by_role("heading", name="dropped.txt").wait_for()

    # issue a code: shown once, grouped 3 + 3, with the guest link, a copy button and a QR code
    report = page.locator("article.file", has=page.get_by_role("heading", name="report.bin"))
    report.get_by_label("Code works for").select_option("5")
    report.get_by_role("button", name="Issue a code").click()
    shown = page.locator("#issued-code").inner_text()
    assert re.fullmatch(r"\d{3} \d{3}", shown)
    link = page.get_by_label("Guest link").input_value()
    assert re.fullmatch(rf"{re.escape(host.url)}/r/[A-Za-z0-9_-]+", link)
    assert page.locator("figure.qr svg").count() == 1
    page.get_by_role("button", name="Copy code").click()
    assert page.evaluate("navigator.clipboard.readText()") == shown
    checked(page, "code")
    page.goto("/account")
    assert shown not in page.content()  # shown once

    # a guest, in a browser of their own, opens the link and types the code
    guest_context = browser.new_context(accept_downloads=True)
    guest = guest_context.new_page()
    guest.goto(link)
    guest.get_by_label("6-digit code").fill(shown)
    guest.get_by_role("button", name="Download").click()
    with guest.expect_download() as download:
        guest.get_by_role("link", name="Download report.bin").click()
    assert download.value.path().read_bytes() == data

    # the owner sees the code redeemed
    page.reload()
    report = page.locator("article.file", has=page.get_by_role("heading", name="report.bin"))
    assert report.locator(".state-redeemed").count() == 1
    checked(page, "files")

    # revoke a second code
    report.get_by_role("button", name="Issue a code").click()
    page.goto("/account")
    report = page.locator("article.file", has=page.get_by_role("heading", name="report.bin"))
    report.get_by_role("button", name=re.compile("^Revoke")).click()
    assert "The code is revoked." in page.get_by_role("status").inner_text()
    report = page.locator("article.file", has=page.get_by_role("heading", name="report.bin"))
    assert report.locator(".state-revoked").count() == 1 and report.locator(".state-active").count() == 0

    # a new guest link: the old one shows nothing any more
    old_path = link.removeprefix(host.url)
    report.get_by_role("button", name="New guest link").click()
    assert "new guest link" in page.get_by_role("status").inner_text()
    assert old_path not in page.content()
    guest.goto(link)
    assert "report.bin" not in guest.inner_text("main")
    guest_context.close()

    # the files page fits a phone's width
    page.set_viewport_size(PHONE)
    page.goto("/account")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert serious_violations(page) == []

    # change the password: every session ends; the new one signs in
    page.goto("/account/password")
    page.get_by_label("Current password").fill(PASSWORD)
    assert type_password(page, "newPassword", "abc", WEAK) < 2
    assert type_password(page, "newPassword", NEW_PASSWORD, STRONG) >= 3
    checked(page, "password")
    page.get_by_role("button", name="Change password").click()
    assert "Your password is changed" in page.get_by_role("status").inner_text()
    page.goto("/account")
    page.wait_for_url(re.compile(r"/account/login\?returnUrl="))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{host.url}/account")

    # sign out
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{host.url}/account/login")
