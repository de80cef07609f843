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


# --- hardening: squatting, the mail budget, password-change guessing -------------------------------


@pytest.fixture(scope="module")
def proxied_host(launch_devhost, settings, app_settings_values):
    """A host behind one more trusted proxy (TRUSTED_PROXY_COUNT=2), as behind Front Door:
    the test writes the client's address into X-Forwarded-For, so each request comes from
    a client of its own and no per-IP limit of a shared address gets in the way."""
    with launch_devhost({**app_settings_values, "TRUSTED_PROXY_COUNT": "2"}) as host:
        yield host


def a_client() -> dict[str, str]:
    return {"x-forwarded-for": "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))}


def register(host, address: str, password: str):
    return host.client.post("/api/users", json={"email": address, "password": password}, headers=a_client())


def mails_of(host, address: str, kind: str) -> list[dict]:
    response = host.client.get("/api/dev/mailbox", params={"to": address})
    assert response.status_code == 200, response.text
    return [m for m in response.json()["data"] if m.get("kind") == kind]


def test_registering_a_pending_address_again_answers_the_same_and_only_the_new_password_activates(proxied_host):
    host = proxied_host
    address = f"squat.{secrets.token_hex(4)}@example.com"
    squatter = register(host, address, PASSWORD)
    wait_for_mail(host, address, "activation")
    owner = register(host, address, NEW_PASSWORD)
    assert squatter.status_code == owner.status_code == 202
    assert squatter.json() == owner.json()
    code = re.search(r"code is (\d+)\.", wait_for_mail(host, address, "activation", count=2)["text"]).group(1)

    refused = host.client.post(
        "/api/users/activation", json={"code": code}, headers={**basic(address, PASSWORD), **a_client()}
    )
    assert refused.status_code == 401, refused.text
    activated = host.client.post(
        "/api/users/activation", json={"code": code}, headers={**basic(address, NEW_PASSWORD), **a_client()}
    )
    assert activated.status_code == 200, activated.text


def test_a_stranger_registering_the_first_admins_address_before_it_signed_in_gains_nothing(
    launch_devhost, settings, app_settings_values
):
    """A freshly started instance whose first request registers the address the settings
    name as the first admin: the admin already exists then, so the stranger's password
    opens nothing and the admin's signs in with role admin."""
    admin, password = f"first-admin.{secrets.token_hex(4)}@example.com", "Admin-" + secrets.token_urlsafe(12)
    settings = {**app_settings_values, "TRUSTED_PROXY_COUNT": "2", "INITIAL_ADMIN_EMAIL": admin,
                "INITIAL_ADMIN_PASSWORD": password}  # fmt: skip
    with launch_devhost(settings) as fresh:
        assert register(fresh, admin, PASSWORD).status_code == 202  # the same answer as for any address
        stranger = fresh.client.post("/api/sessions", json={"email": admin, "password": PASSWORD}, headers=a_client())
        assert stranger.status_code == 401
        signed_in = fresh.client.post("/api/sessions", json={"email": admin, "password": password}, headers=a_client())
        assert signed_in.status_code == 201
        assert signed_in.json()["data"]["role"] == "admin"


def test_past_three_activation_mails_an_hour_registration_answers_the_same_and_no_mail_goes(proxied_host):
    host = proxied_host
    for _ in range(2):  # once more if the four straddled the turn of an hour (a new window)
        hour = time.gmtime().tm_hour
        address = f"flood.{secrets.token_hex(4)}@example.com"
        answers = [register(host, address, PASSWORD) for _ in range(4)]
        if time.gmtime().tm_hour == hour:
            break
    assert [answer.status_code for answer in answers] == [202] * 4
    assert all(answer.json() == answers[0].json() for answer in answers)
    wait_for_mail(host, address, "activation", count=3)
    # a mail queued after the fourth registration arrives, and still no fourth code
    marker = f"marker.{secrets.token_hex(4)}@example.com"
    register(host, marker, PASSWORD)
    wait_for_mail(host, marker, "activation")
    time.sleep(1)
    assert len(mails_of(host, address, "activation")) == 3


def test_the_sixth_password_change_attempt_in_an_hour_answers_429_and_ends_the_session(host, settings):
    from shared.services import Services

    accounts = Services(settings)  # the host's storage and keys, on the real clock
    address = f"thief.{secrets.token_hex(4)}@example.com"
    accounts.accounts.register(address, PASSWORD)
    user = accounts.accounts.find_user(address)
    accounts.users.update(user, status="active", activated_at=accounts.clock.now())
    login = host.client.post("/api/sessions", json={"email": address, "password": PASSWORD})
    assert login.status_code == 201, login.text
    token = login.json()["data"]["token"]

    for _ in range(5):
        guess = {"oldPassword": "guess-" + secrets.token_urlsafe(8), "newPassword": NEW_PASSWORD}
        wrong = host.client.post("/api/users/me/password", json=guess, headers=bearer(token))
        assert wrong.status_code == 403, wrong.text
    refused = host.client.post(
        "/api/users/me/password", json={"oldPassword": PASSWORD, "newPassword": NEW_PASSWORD}, headers=bearer(token)
    )
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"] == "password_change_limit"
    assert refused.json()["requestObject"] == {"oldPassword": "***", "newPassword": "***"}
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert host.client.get("/api/users/me", headers=bearer(token)).status_code == 401
    again = host.client.post("/api/sessions", json={"email": address, "password": PASSWORD})
    assert again.status_code == 201, again.text  # the password did not change
