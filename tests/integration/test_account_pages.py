"""The account pages at the HTTP edge, in process, as a browser without JavaScript sends
them: the same answer for a free and a taken address, CSRF on every form, a return URL
kept under /account, a code shown once (grouped 3 + 3, with the guest link and its QR
code) and never again, an upload over the cap refused, an expired password sent to the
password page. The whole journey in a real browser: tests/browser/test_account_journey.py."""

from __future__ import annotations

import contextlib
import re
import secrets
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from functions import account
from shared import errors
from shared.services import services
from tests.browser.support import add_account

from .test_accounts import mailbox
from .test_pages import cookie_value, hidden, request


@pytest.fixture
def svc(settings):
    return services()  # the pages' own


@pytest.fixture
def owner(svc):
    return add_account(svc, "user", name="owner")


def signed_in(svc, owner) -> dict[str, str]:
    login = svc.accounts.login(owner.email, owner.password)
    return {"account_session": login.token}


def session_token(page: func.HttpResponse) -> str:
    return hidden(page.get_body().decode(), "csrfToken")


def multipart(fields: dict[str, str], file_name: str, data: bytes) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in
             fields.items()]  # fmt: skip
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        "Content-Type: text/plain\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(cookies: dict[str, str], token: str, file_name: str, data: bytes) -> func.HttpResponse:
    body, content_type = multipart({"csrfToken": token}, file_name, data)
    cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    headers = {"content-type": content_type, "cookie": cookie_header, "x-forwarded-for": "10.9.8.7"}
    req = func.HttpRequest("POST", "http://localhost/account/files", body=body, headers=headers)
    return account.account_upload(req)


def register(email: str, password: str) -> func.HttpResponse:
    form_page = account.account_register(request("GET", "/account/register"))
    nonce = cookie_value(form_page, "form_nonce")
    form = {"email": email, "password": password, "csrfToken": session_token(form_page)}
    return account.account_register(request("POST", "/account/register", form=form, cookies={"form_nonce": nonce}))


def test_registering_a_taken_address_looks_the_same_as_a_free_one(svc, owner):
    free = f"new.{secrets.token_hex(4)}@example.com"
    pages = [register(free, "violet-Harbor-engine-42"), register(owner.email, "violet-Harbor-engine-42")]
    assert [p.status_code for p in pages] == [200, 200]
    bodies = [re.sub(r'value="[^"]*"', "", p.get_body().decode()) for p in pages]
    assert bodies[0] == bodies[1]
    assert "a code is on its way" in bodies[0]


def test_a_refused_password_shows_the_reasons_at_the_field_without_javascript(svc):
    page = register(f"weak.{secrets.token_hex(4)}@example.com", "password1")
    html = page.get_body().decode()
    assert page.status_code == 400
    assert 'id="password"' in html and 'aria-invalid="true"' in html and "form-error" in html
    assert "too weak" in html and "Very weak" in html


def test_every_signed_in_form_needs_the_sessions_token(svc, owner):
    cookies = signed_in(svc, owner)
    resource, _ = svc.resources.put(owner.user_id, "plan.txt", b"plan", "text/plain")
    for handler, path in ((account.account_issue, "/account/codes"), (account.account_rotate, "/account/files/link")):
        refused = handler(request("POST", path, form={"resourceId": resource.resource_id, "ttlMinutes": "5"},
                                  cookies=cookies))  # fmt: skip
        assert refused.status_code == 403
    assert svc.codes.list(owner.user_id) == []
    assert svc.resources.get(resource.resource_id) is not None  # not moved to a new link
    assert upload(cookies, "not-the-token", "x.txt", b"x").status_code == 403


def test_the_return_url_stays_under_account(svc, owner):
    for asked, kept in (("/account/password", "/account/password"), ("https://evil.example/", "/account"),
                        ("/admin", "/account"), ("//evil.example", "/account")):  # fmt: skip
        login_page = account.account_login(request("GET", f"/account/login?returnUrl={asked}"))
        assert f'name="returnUrl" value="{kept}"' in login_page.get_body().decode()


def test_a_page_without_a_session_sends_to_sign_in_and_back(svc):
    answer = account.account_home(request("GET", "/account"))
    assert answer.status_code == 303 and answer.headers["location"] == "/account/login?returnUrl=%2Faccount"


def test_a_code_is_shown_once_with_its_link_and_qr_code(svc, owner):
    cookies = signed_in(svc, owner)
    resource, _ = svc.resources.put(owner.user_id, "plan.txt", b"plan", "text/plain")
    token = session_token(account.account_home(request("GET", "/account", cookies=cookies)))
    issued = account.account_issue(
        request("POST", "/account/codes", form={"resourceId": resource.resource_id, "ttlMinutes": "5",
                                               "csrfToken": token}, cookies=cookies)
    )  # fmt: skip
    html = issued.get_body().decode()
    code = re.search(r'id="issued-code"[^>]*>(\d{3} \d{3})<', html).group(1)
    assert f"http://localhost/r/{resource.resource_id}" in html and "<svg" in html
    [listed] = svc.codes.list(owner.user_id)
    assert listed["state"] == "active"
    assert (listed["expiresAt"] - listed["createdAt"]).total_seconds() == 300
    again = account.account_home(request("GET", "/account", cookies=cookies)).get_body().decode()
    assert code not in again and code.replace(" ", "") not in again
    assert svc.codes.redeem(resource.resource_id, code, source="10.1.2.3")


def test_an_upload_over_the_cap_is_refused_and_stores_nothing(svc, owner):
    cookies = signed_in(svc, owner)
    token = session_token(account.account_home(request("GET", "/account", cookies=cookies)))
    too_big = b"x" * (svc.settings.resource_max_bytes + 1)
    assert upload(cookies, token, "big.txt", too_big).status_code == 413
    assert svc.resources.list(owner.user_id) == []
    stored = upload(cookies, token, "small.txt", b"small")
    assert stored.status_code == 303 and stored.headers["location"] == "/account?done=uploaded"
    assert [r.name for r in svc.resources.list(owner.user_id)] == ["small.txt"]


def test_with_an_expired_password_every_page_but_the_password_page_sends_there(svc, owner):
    user = svc.users.by_id(owner.user_id)
    svc.users.update(user, password_changed_at=datetime.now(UTC) - timedelta(days=svc.settings.password_max_age_days))
    login = svc.accounts.login(owner.email, owner.password)
    assert login.session.password_expired
    cookies = {"account_session": login.token}
    home = account.account_home(request("GET", "/account", cookies=cookies))
    assert home.status_code == 303 and home.headers["location"] == "/account/password"
    password_page = account.account_password(request("GET", "/account/password", cookies=cookies))
    assert password_page.status_code == 200 and "Your password has expired" in password_page.get_body().decode()


def test_while_new_devices_are_paused_the_sign_in_page_offers_the_unlock_code(svc, owner):
    for source in ("10.77.0.1", "10.77.0.2"):  # a stranger's wrong passwords pause new devices
        for _ in range(5):
            with contextlib.suppress(errors.Unauthenticated, errors.TooManyRequests):
                svc.accounts.login(owner.email, "not-the-password", client_ip=source)

    form_page = account.account_login(request("GET", "/account/login"))
    nonce = {"form_nonce": cookie_value(form_page, "form_nonce")}
    credentials = {"email": owner.email, "password": owner.password, "csrfToken": session_token(form_page)}

    def post(handler, path: str, form: dict) -> func.HttpResponse:
        return handler(request("POST", path, form=form, cookies=nonce))

    paused = post(account.account_login, "/account/login", credentials)
    html = paused.get_body().decode()
    assert paused.status_code == 429 and 'name="unlockCode"' in html and "Mail me an unlock code" in html

    sent = post(account.account_unlock, "/account/unlock", {**credentials, "password": ""})
    assert "an unlock code is on its way" in sent.get_body().decode()
    [mail] = [m for m in mailbox(svc, owner.email) if m["kind"] == "unlock_code"]
    code = re.search(r"unlock code is (\d+)\.", mail["text"]).group(1)
    signed = post(account.account_login, "/account/login", {**credentials, "unlockCode": code})
    assert signed.status_code == 303 and signed.headers["location"] == "/account"
    assert "account_session=" in signed.headers["set-cookie"]
