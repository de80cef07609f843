"""An account's life over HTTP through the local host: register, read the dev mailbox
(the queue function delivered the mail), activate, log in, me, change the password, the
old token is refused, log in with the new one."""

from __future__ import annotations

import base64
import re
import secrets
import time

import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "violet-Harbor-engine-42"
NEW_PASSWORD = "amber-Canyon-whistle-77"


def wait_for_mail(host, address: str, kind: str, count: int = 1, timeout: float = 20.0) -> dict:
    """The newest mail of `kind`, once the host's queue polling has delivered `count` of them."""
    deadline = time.monotonic() + timeout
    while True:
        response = host.client.get("/api/dev/mailbox", params={"to": address})
        assert response.status_code == 200, response.text
        mails = [m for m in response.json()["data"] if m["subject"] and kind in m.get("kind", kind)]
        if len(mails) >= count:
            return mails[-1]
        assert time.monotonic() < deadline, f"no {kind} mail after {timeout}s; host log:\n{host.logs()[-3000:]}"
        time.sleep(0.3)


def basic(address: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{address}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_register_activate_login_change_password_and_log_in_again(host):
    address = f"E2E.{secrets.token_hex(4)}@Example.com"
    client = host.client

    registered = client.post("/api/users", json={"email": address, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    assert registered.json()["requestObject"]["password"] == "***"

    mail = wait_for_mail(host, address.lower(), "activation")
    assert set(mail) >= {"to", "subject", "text", "sentAt"}
    code = re.search(r"code is (\d+)\.", mail["text"]).group(1)

    activated = client.post("/api/users/activation", json={"code": code}, headers=basic(address.lower(), PASSWORD))
    assert activated.status_code == 200, activated.text
    assert activated.json()["requestObject"]["code"] == "***"

    login = client.post("/api/sessions", json={"email": address, "password": PASSWORD})
    assert login.status_code == 201, login.text
    token = login.json()["data"]["token"]
    assert login.json()["data"]["passwordExpired"] is False

    me = client.get("/api/users/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["data"]["email"] == address
    assert me.json()["data"]["activated"] is True
    assert me.json()["data"]["passwordAgeDays"] == 0

    introspected = client.post(
        "/api/sessions/introspect", json={"token": token}, headers={"x-functions-key": host.function_key}
    )
    assert introspected.status_code == 200, introspected.text
    assert introspected.json()["data"]["active"] is True

    changed = client.post(
        "/api/users/me/password",
        json={"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD},
        headers=bearer(token),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["requestObject"] == {"oldPassword": "***", "newPassword": "***"}

    refused = client.get("/api/users/me", headers=bearer(token))
    assert refused.status_code == 401

    old_login = client.post("/api/sessions", json={"email": address, "password": PASSWORD})
    assert old_login.status_code == 401
    new_login = client.post("/api/sessions", json={"email": address, "password": NEW_PASSWORD})
    assert new_login.status_code == 201, new_login.text
    assert client.get("/api/users/me", headers=bearer(new_login.json()["data"]["token"])).status_code == 200
    assert wait_for_mail(host, address, "password_changed")["subject"]


def test_introspection_needs_the_function_key(host):
    response = host.client.post("/api/sessions/introspect", json={"token": secrets.token_urlsafe(32)})
    assert response.status_code == 401
