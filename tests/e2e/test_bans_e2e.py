"""Bans at the edge, end to end: nginx (devhost/edge.py, the local stand-in for Front
Door) in front of the local host, fed the service's bans. A source that keeps failing
sign-ins is banned, gets 403 from nginx, and none of its later requests reach the app
(the host's request log shows none); its ban ends by itself, or an operator lifts it;
a well-behaved source is never affected.

The host trusts two proxies (nginx, then itself as the Functions front end), as behind
Front Door; nginx takes each test source from the X-Forwarded-For it is sent."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import httpx
import pytest

from devhost.azurite import free_port
from devhost.edge import BanFeed, EdgeProxy
from shared.limits.sources import source_of
from shared.services import Services
from tests.browser.support import add_account
from tests.conftest import settings_from

pytestmark = pytest.mark.e2e

BAN_SECONDS = 4
SETTINGS = {
    "TRUSTED_PROXY_COUNT": "2",
    "LIMIT_LOGIN_FAILURES_PER_IP": "2/2s",  # windows of 2 s: a strike every 2 s at most
    "BAN_AFTER_STRIKES": "2",
    "BAN_FINDTIME_SECONDS": "60",
    "BAN_FIRST_SECONDS": str(BAN_SECONDS),
}


@pytest.fixture(scope="module")
def edge(
    launch_devhost, settings, app_settings_values, tmp_path_factory
) -> Iterator[tuple[EdgeProxy, object, Services]]:
    values = {**app_settings_values, **SETTINGS}  # `settings` has created the tables
    host = launch_devhost(values)
    svc = Services(settings_from(values))
    proxy = EdgeProxy(free_port(), host.url, tmp_path_factory.mktemp("edge")).start()
    feed = BanFeed(proxy, lambda: [ban.source for ban in svc.bans.active()], every=0.2).start()
    yield proxy, host, svc
    feed.stop()
    proxy.stop()


def from_source(address: str) -> dict[str, str]:
    return {"x-forwarded-for": address}


def until(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def fail_sign_ins_until_banned(client: httpx.Client, address: str) -> None:
    """Wrong passwords from `address` window after window, until nginx answers 403."""

    def banned() -> bool:
        wrong = {"email": f"nobody.{secrets.token_hex(3)}@example.com", "password": "not the password 1"}
        return client.post("/api/sessions", json=wrong, headers=from_source(address)).status_code == 403

    assert until(banned), f"{address} was never banned"


def test_a_source_that_keeps_failing_is_banned_at_the_edge_and_never_reaches_the_app(edge):
    proxy, host, svc = edge
    client = httpx.Client(base_url=proxy.url, timeout=10)
    attacker, neighbour = "198.51.100.77", "198.51.100.78"
    fail_sign_ins_until_banned(client, attacker)
    assert attacker in [ban.source for ban in svc.bans.active()]

    probe = f"/probe-{secrets.token_hex(6)}"
    refused = client.get(probe, headers=from_source(attacker))
    assert refused.status_code == 403 and refused.json()["error"] == "banned"
    assert probe not in host.logs()  # nginx answered; the app never saw it
    fine = client.get(f"{probe}-neighbour", headers=from_source(neighbour))
    assert fine.status_code == 404  # the app's own answer to an unknown path
    assert until(lambda: f"{probe}-neighbour" in host.logs())
    assert client.get("/api/health", headers=from_source(neighbour)).status_code == 200

    # the ban ends by itself, and the edge lets the source through again
    assert until(lambda: client.get("/api/health", headers=from_source(attacker)).status_code == 200, BAN_SECONDS + 10)


def test_an_operator_lifts_a_ban_and_an_ipv6_attacker_is_banned_by_its_64(edge):
    proxy, host, svc = edge
    client = httpx.Client(base_url=proxy.url, timeout=10)
    attacker = f"2001:db8:{secrets.randbelow(9000) + 1000}:1::5"
    fail_sign_ins_until_banned(client, attacker)
    network = source_of(attacker)
    other_host_same_64 = attacker.replace("::5", "::6")
    assert client.get("/api/health", headers=from_source(other_host_same_64)).status_code == 403

    operator = add_account(svc, "admin", name="ban-operator")
    token, _ = svc.sessions.create(operator.user_id, "admin")
    listed = httpx.get(f"{host.url}/api/admin/bans", headers={"authorization": f"Bearer {token}"}).json()["data"]
    assert network in [ban["source"] for ban in listed["bans"]]
    lifted = httpx.post(
        f"{host.url}/api/admin/bans/lift", json={"source": network}, headers={"authorization": f"Bearer {token}"}
    )
    assert lifted.status_code == 200, lifted.text
    assert until(lambda: client.get("/api/health", headers=from_source(attacker)).status_code == 200)
