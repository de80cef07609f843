"""The guest pages and the console at the HTTP edge, in process: CSRF refusals, cookie
attributes, and the services the pages read (resource summary, codes per hour, revoke by
id, user look-up). The page's 429 after real attempts: tests/e2e/test_attacks_e2e.py."""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import azure.functions as func
import pytest

from functions import console, guest
from shared import errors
from shared.clock import ManualClock
from shared.housekeeping.cleanup import JOB as CLEANUP_JOB
from shared.housekeeping.expiry import bucket_of
from shared.services import Services, services
from tests.browser.support import add_account, share_file


def request(method: str, path: str, *, form: dict | None = None, cookies: dict | None = None, route_params=None):
    ip = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    headers = {"x-forwarded-for": ip}
    if form is not None:
        headers["content-type"] = "application/x-www-form-urlencoded"
    if cookies:
        headers["cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return func.HttpRequest(
        method,
        f"http://localhost{path}",
        body=urlencode(form or {}).encode(),
        headers=headers,
        route_params=route_params or {},
        params=dict(re.findall(r"[?&]([^=&]+)=([^&]*)", path)),
    )


def hidden(html: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', html).group(1)


def cookie_value(response: func.HttpResponse, name: str) -> str:
    # a Secure cookie goes by its __Host- name (functions/web.py)
    return re.match(rf"(?:__Host-)?{name}=([^;]*)", response.headers["set-cookie"]).group(1)


@pytest.fixture
def svc(settings):
    return services()


@pytest.fixture
def owner(svc):
    return add_account(svc, "user", name="owner")


def open_guest_page(resource_id: str):
    page = guest.guest_resource(request("GET", f"/r/{resource_id}", route_params={"resourceId": resource_id}))
    assert page.status_code == 200
    return hidden(page.get_body().decode(), "csrfToken"), cookie_value(page, "form_nonce"), page


def post_code(resource_id: str, code: str, token: str | None, nonce: str | None):
    form = {"code": code, **({"csrfToken": token} if token else {})}
    return guest.guest_resource(
        request("POST", f"/r/{resource_id}", form=form, cookies={"form_nonce": nonce} if nonce else None,
                route_params={"resourceId": resource_id})
    )  # fmt: skip


def test_the_guest_page_shows_name_and_size_but_neither_the_owners_address_nor_a_code(svc, owner):
    resource, code = share_file(svc, owner, "plan.pdf", b"x" * 2048, "application/pdf")
    _, _, page = open_guest_page(resource.resource_id)
    html = page.get_body().decode()
    assert "plan.pdf" in html and "2.0 KB" in html
    assert owner.email not in html
    assert code not in html
    assert "script" not in html.lower()
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_the_form_cookie_is_httponly_and_strict_and_not_secure_where_cookie_secure_is_off(svc, owner):
    # the Secure, __Host- prefixed form: tests/e2e/test_edge_hardening_e2e.py, on a host configured as in Azure
    resource, _ = share_file(svc, owner, "a.txt", b"a")
    _, _, page = open_guest_page(resource.resource_id)
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
    assert "Secure" not in page.headers["set-cookie"]  # COOKIE_SECURE=false in tests


def test_a_guest_post_without_the_form_token_is_refused_and_burns_nothing(svc, owner):
    resource, code = share_file(svc, owner, "b.txt", b"b")
    token, nonce, _ = open_guest_page(resource.resource_id)
    assert post_code(resource.resource_id, code, None, nonce).status_code == 403
    assert post_code(resource.resource_id, code, token, None).status_code == 403
    assert post_code(resource.resource_id, code, token, svc.csrf.new_nonce()).status_code == 403
    accepted = post_code(resource.resource_id, code, token, nonce)
    assert accepted.status_code == 200
    assert 'id="download"' in accepted.get_body().decode()


def test_the_start_page_takes_a_pasted_link_and_the_code(svc, owner):
    resource, code = share_file(svc, owner, "d.txt", b"d")
    start = guest.guest_home(request("GET", "/"))
    token, nonce = hidden(start.get_body().decode(), "csrfToken"), cookie_value(start, "form_nonce")
    link = f"https://codes.example.com/r/{resource.resource_id}"
    cookies = {"form_nonce": nonce}
    no_link = guest.guest_home(request("POST", "/", form={"link": "nope", "code": code, "csrfToken": token},
                                       cookies=cookies))  # fmt: skip
    assert no_link.status_code == 400 and "Paste the link" in no_link.get_body().decode()
    wrong = guest.guest_home(request("POST", "/", form={"link": link, "code": "000 000" if code != "000000" else "1",
                                                        "csrfToken": token}, cookies=cookies))  # fmt: skip
    assert wrong.status_code == 400 and "That code did not work" in wrong.get_body().decode()
    ok = guest.guest_home(request("POST", "/", form={"link": link, "code": code, "csrfToken": token}, cookies=cookies))
    assert ok.status_code == 200 and "Download d.txt" in ok.get_body().decode()


def test_an_unknown_guest_link_is_a_404_page(settings):
    page = guest.guest_resource(request("GET", "/r/x", route_params={"resourceId": "x"}))
    assert page.status_code == 404
    assert "does not lead to a file" in page.get_body().decode()


@pytest.fixture
def recent_cursor(svc):
    """Cleanup's cursor just behind now, so the button's run reads a bucket or two, not the
    day of counters the suite wrote before; gone afterwards, as tests of cleanup expect."""
    svc.jobs.advance_cursor(CLEANUP_JOB, bucket_of(svc.clock.now() - timedelta(minutes=10)))
    yield
    svc.storage.table("jobs").delete_entity("cursor", CLEANUP_JOB)


@pytest.mark.usefixtures("recent_cursor")
def test_console_posts_need_the_session_token(svc):
    admin = add_account(svc, "admin")
    login = svc.accounts.login(admin.email, admin.password)
    cookies = {"console_session": login.token}
    refused = console.console_run_cleanup(request("POST", "/admin/jobs/cleanup", form={}, cookies=cookies))
    assert refused.status_code == 403
    token = svc.csrf.for_session(login.session)
    ran = console.console_run_cleanup(
        request("POST", "/admin/jobs/cleanup", form={"csrfToken": token}, cookies=cookies)
    )
    assert ran.status_code == 303 and ran.headers["location"].startswith("/admin/jobs?ran=")
    no_session = console.console_run_cleanup(request("POST", "/admin/jobs/cleanup", form={"csrfToken": token}))
    assert no_session.status_code == 303 and no_session.headers["location"] == "/admin/login?returnUrl=%2Fadmin"


def test_console_pages_render_for_an_admin(svc, owner):
    admin = add_account(svc, "admin")
    login = svc.accounts.login(admin.email, admin.password)
    cookies = {"console_session": login.token}
    share_file(svc, owner, "e.txt", b"e")
    for handler, path in [
        (console.console_home, "/admin"),
        (console.console_jobs, "/admin/jobs"),
        (console.console_audit, "/admin/audit?type=issue&outcome=ok"),
        (console.console_codes, "/admin/codes"),
        (console.console_users, f"/admin/users?q={owner.user_id}"),
        (console.console_bans, "/admin/bans"),
    ]:
        page = handler(request("GET", path, cookies=cookies))
        assert page.status_code == 200, (path, page.get_body()[:500])
    bad = console.console_audit(request("GET", "/admin/audit?from=yesterday", cookies=cookies))
    assert bad.status_code == 400 and "Check: from" in bad.get_body().decode()


def test_an_admin_revokes_a_code_by_its_id_and_the_audit_names_both(svc, owner):
    admin = add_account(svc, "admin")
    resource, _ = share_file(svc, owner, "f.txt", b"f")
    issued = svc.codes.issue(owner.user_id, resource.resource_id)
    view = svc.codes.revoke_by_id(issued.code_id, actor=admin.user_id)
    assert view["state"] == "revoked"
    with pytest.raises(errors.InvalidInput):
        svc.codes.redeem(resource.resource_id, issued.code, source="ip:test")
    with pytest.raises(errors.NotFound):
        svc.codes.revoke_by_id("no-such-code", actor=admin.user_id)
    now = svc.clock.now()
    revokes = svc.audit.read(now - timedelta(minutes=5), now + timedelta(minutes=1), types={"revoke"})
    (event,) = [e for e in revokes if e.code_id == issued.code_id]
    assert (event.actor, event.user_id) == (admin.user_id, owner.user_id)


def test_codes_per_hour_count_issued_and_redeemed_in_the_current_hour(svc, owner):
    before = svc.admin.code_activity(24)
    resource, code = share_file(svc, owner, "g.txt", b"g")
    svc.codes.redeem(resource.resource_id, code, source="ip:test")
    after = svc.admin.code_activity(24)
    assert len(after) == 24 and after[-1]["hour"] <= svc.clock.now()
    assert after[-1]["issued"] - before[-1]["issued"] >= 1
    assert after[-1]["redeemed"] - before[-1]["redeemed"] >= 1
    chart = console.bar_chart(after)
    assert len(chart["bars"]) == 24 * 3 and all(b["height"] >= 0 for b in chart["bars"])


def test_an_admin_finds_a_user_by_email_or_id(svc, owner):
    assert svc.accounts.find_user(owner.email.upper()).user_id == owner.user_id
    assert svc.accounts.find_user(owner.user_id).email == owner.email
    assert svc.accounts.find_user("nobody@example.com") is None
    assert svc.accounts.find_user("not an email@") is None


def test_an_admin_sees_a_ban_in_the_console_and_lifts_it_with_the_session_token(svc):
    source = f"198.51.100.{secrets.randbelow(200) + 1}"
    clock = ManualClock(datetime.now(UTC))
    strict = Services(svc.settings.model_copy(update={"limit_activation_per_ip": "1/1m"}), clock=clock)
    for _ in range(3):  # a failure limit crossed in three windows: banned
        for _ in range(2):
            with contextlib.suppress(errors.TooManyRequests):
                strict.abuse.activation(source)
        clock.advance(minutes=1)
    admin = add_account(svc, "admin")
    login = svc.accounts.login(admin.email, admin.password)
    cookies = {"console_session": login.token}
    page = console.console_bans(request("GET", "/admin/bans", cookies=cookies)).get_body().decode()
    assert f"<code>{source}</code>" in page
    form = {"source": source}
    refused = console.console_lift_ban(request("POST", "/admin/bans/lift", form=form, cookies=cookies))
    assert refused.status_code == 403
    token = svc.csrf.for_session(login.session)
    junk = {"source": "not#a?source", "csrfToken": token}
    bad = console.console_lift_ban(request("POST", "/admin/bans/lift", form=junk, cookies=cookies))
    assert bad.status_code == 400 and "Not a source" in bad.get_body().decode()
    lifted = console.console_lift_ban(
        request("POST", "/admin/bans/lift", form={**form, "csrfToken": token}, cookies=cookies)
    )
    assert lifted.status_code == 200 and "is lifted" in lifted.get_body().decode()
    assert source not in [ban.source for ban in svc.bans.active()]
