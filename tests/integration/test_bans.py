"""Bans decided by the service (Azurite, a clock of the test's choosing): strikes from the
failure limits, never a ban for one limit hit, growing ban times, exempt networks, IPv6
per /64, the operator's lift, cleanup; and their publication to a Front Door WAF policy
through a fake Azure management API (HTTPS, with a managed identity token endpoint), the
one third party faked, at its HTTP edge."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from azure.identity import ManagedIdentityCredential
from azure.mgmt.frontdoor import FrontDoorManagementClient

from shared import errors
from shared.limits.bans import BAN_PARTITION, row_key
from shared.limits.sources import UNPARSABLE, source_of
from shared.limits.waf import ADDRESSES_PER_RULE, RULE_PREFIX, WafBanPublisher
from shared.services import Services

from .codes_support import all_audit_text, fresh_cursor  # noqa: F401 - a fixture

STRICT = {"limit_activation_per_ip": "1/1m", "ban_after_strikes": 3, "ban_first_seconds": 600}


def bans_of(svc: Services) -> dict[str, int]:
    return {ban.source: ban.offences for ban in svc.bans.active()}


def ban_of(svc: Services, source: str):
    """The source's active ban (the table is the session's: other tests' bans are there too)."""
    [ban] = [ban for ban in svc.bans.active() if ban.source == source]
    return ban


def hammer(svc: Services, source: str, tries: int = 5) -> int:
    """Activation attempts from `source` in the current window; how many were refused."""
    refused = 0
    for _ in range(tries):
        try:
            svc.abuse.activation(source)
        except errors.TooManyRequests:
            refused += 1
    return refused


def test_one_limit_hit_never_bans_however_many_requests_it_refuses(make_services):
    svc = make_services(**STRICT)
    assert hammer(svc, "198.51.100.10", tries=50) == 49
    assert "198.51.100.10" not in bans_of(svc)


def test_a_source_crossing_a_limit_in_enough_windows_is_banned_and_each_ban_lasts_longer(make_services, clock):
    svc = make_services(**STRICT)
    source = "198.51.100.11"
    for _ in range(3):
        assert hammer(svc, source) == 4
        clock.advance(minutes=1)
    ban = ban_of(svc, source)
    assert ban.offences == 1
    assert ban.until - ban.banned_at == timedelta(minutes=10)
    assert '"type":"ban"' in all_audit_text(svc) and source not in all_audit_text(svc)

    clock.advance(minutes=11)  # the ban ends; the same behaviour bans it for twice as long
    assert source not in bans_of(svc)
    for _ in range(3):
        hammer(svc, source)
        clock.advance(minutes=1)
    again = ban_of(svc, source)
    assert (again.offences, again.until - again.banned_at) == (2, timedelta(minutes=20))


def test_bans_stop_at_the_longest_and_forget_offences_after_the_memory(make_services, clock):
    svc = make_services(**STRICT, ban_longest_seconds=900, ban_memory_days=1)
    source = "198.51.100.12"
    lengths = []
    for _ in range(3):
        for _ in range(3):
            hammer(svc, source)
            clock.advance(minutes=1)
        ban = ban_of(svc, source)
        lengths.append(ban.until - ban.banned_at)
        clock.advance(seconds=(ban.until - clock.now()).total_seconds() + 1)
    assert lengths == [timedelta(minutes=10), timedelta(minutes=15), timedelta(minutes=15)]
    clock.advance(days=2)
    for _ in range(3):
        hammer(svc, source)
        clock.advance(minutes=1)
    fresh = ban_of(svc, source)
    assert fresh.offences == 1


def test_exempt_networks_and_the_unparsable_source_are_never_banned(make_services, clock):
    svc = make_services(**STRICT, ban_exempt_networks="203.0.113.0/24, 2001:db8:ffff::/48")
    proxy, proxy_v6 = "203.0.113.9", source_of("2001:db8:ffff:1::7")
    for _ in range(4):
        for source in (proxy, proxy_v6, UNPARSABLE):
            hammer(svc, source)
        clock.advance(minutes=1)
    assert not {proxy, proxy_v6, UNPARSABLE} & bans_of(svc).keys()


def test_an_ipv6_attacker_rotating_through_its_64_is_banned_as_the_64(make_services, clock):
    svc = make_services(**STRICT)
    for window in range(3):
        for host in range(5):  # a fresh address each try: the limits count the /64
            hammer(svc, source_of(f"2001:db8:7:7::{window}:{host}"), tries=1)
        clock.advance(minutes=1)
    assert bans_of(svc).get("2001:db8:7:7::/64") == 1


def test_failed_sign_ins_and_redemptions_strike_too(make_services, clock):
    svc = make_services(limit_login_failures_per_ip="1/1m", limit_redeem_failures_per_ip="1/1m", ban_after_strikes=2)
    for source, attempt in (
        ("198.51.100.13", lambda s: svc.abuse.password_attempt(s, "someone@example.com")),
        ("198.51.100.14", lambda s: svc.abuse.reserve_redemption(s)),
    ):
        for _ in range(2):
            attempt(source)
            with pytest.raises(errors.TooManyRequests):
                attempt(source)
            clock.advance(minutes=1)
        assert source in bans_of(svc)


def test_an_operator_lifts_a_ban_and_it_still_counts_for_the_next(make_services, clock):
    svc = make_services(**STRICT)
    source = "198.51.100.15"
    for _ in range(3):
        hammer(svc, source)
        clock.advance(minutes=1)
    lifted = svc.bans.lift(source, actor="admin-1")
    assert lifted["liftedAt"] == clock.now() and source not in bans_of(svc)
    with pytest.raises(errors.NotFound):
        svc.bans.lift(source, actor="admin-1")
    for _ in range(3):
        hammer(svc, source)
        clock.advance(minutes=1)
    assert bans_of(svc).get(source) == 2
    assert '"type":"ban_lift"' in all_audit_text(svc)


@pytest.mark.usefixtures("fresh_cursor")
def test_cleanup_removes_strikes_and_bans_once_nothing_needs_them(make_services, clock, settings):
    svc = make_services(**STRICT, ban_memory_days=1)
    source = "198.51.100.16"
    for _ in range(3):
        hammer(svc, source)
        clock.advance(minutes=1)
    table = svc.storage.table("bans")
    strikes = f"strikes:{row_key(source)}"
    clock.advance(hours=2)  # past the find time: the strikes go, the ban is remembered
    svc.cleanup.run()
    assert list(table.query_entities("PartitionKey eq @p", parameters={"p": strikes})) == []
    assert table.get_entity(BAN_PARTITION, row_key(source))["offences"] == 1
    clock.advance(days=1)  # past the memory too
    svc.cleanup.run()
    assert (
        list(
            table.query_entities(
                "PartitionKey eq @p and RowKey eq @r", parameters={"p": BAN_PARTITION, "r": row_key(source)}
            )
        )
        == []
    )


# --- publication to the Front Door WAF policy ---------------------------------------------

POLICY_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-test/providers/"
    "Microsoft.Network/FrontDoorWebApplicationFirewallPolicies/waftest"
)
OWN_RULE = {
    "name": "RateLimitPerIp", "priority": 30, "enabledState": "Enabled", "ruleType": "RateLimitRule",
    "action": "Block", "rateLimitDurationInMinutes": 1, "rateLimitThreshold": 600,
    "matchConditions": [{"matchVariable": "RemoteAddr", "operator": "IPMatch", "negateCondition": True,
                         "matchValue": ["255.255.255.255/32"]}],
}  # fmt: skip


class FakeManagement:
    """Azure Resource Manager for one WAF policy, and the managed identity token endpoint."""

    def __init__(self):
        self.policy = {
            "id": POLICY_ID, "name": "waftest", "location": "Global", "sku": {"name": "Standard_AzureFrontDoor"},
            "properties": {"customRules": {"rules": [OWN_RULE]}, "provisioningState": "Succeeded"},
        }  # fmt: skip
        self.puts: list[dict] = []
        self.authorizations: set[str] = set()


@contextmanager
def serving(fake: FakeManagement, certificate: trustme.LeafCert) -> Iterator[ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.startswith("/msi/token"):
                assert self.headers["x-identity-header"] == "identity-header"
                self._answer(200, {"access_token": "token-for-arm", "expires_on": "9999999999",
                                   "resource": "https://management.azure.com", "token_type": "Bearer"})  # fmt: skip
                return
            fake.authorizations.add(self.headers.get("authorization", ""))
            assert self.path.split("?")[0].lower() == POLICY_ID.lower()
            self._answer(200, fake.policy)

        def do_PUT(self) -> None:
            fake.authorizations.add(self.headers.get("authorization", ""))
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            fake.puts.append(body)
            fake.policy = {**fake.policy, "properties": {**body["properties"], "provisioningState": "Succeeded"}}
            self._answer(200, fake.policy)

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture
def management(monkeypatch, tmp_path) -> Iterator[tuple[FakeManagement, str, str]]:
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(ca_file))
    fake = FakeManagement()
    with serving(fake, certificate) as server:
        base = f"https://127.0.0.1:{server.server_port}"
        # the managed identity as the Functions platform offers it (App Service's endpoint)
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"{base}/msi/token")
        monkeypatch.setenv("IDENTITY_HEADER", "identity-header")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
        yield fake, base, str(ca_file)


def publisher(svc: Services, base: str, ca_file: str, rules: int) -> WafBanPublisher:
    credential = ManagedIdentityCredential()
    return WafBanPublisher(
        lambda subscription: FrontDoorManagementClient(
            credential, subscription, base_url=base, connection_verify=ca_file
        ),
        POLICY_ID,
        rules,
        svc.audit,
    )


def seed_bans(svc: Services, sources: list[str], clock) -> None:
    """Bans as BanList writes them, many at once (a transaction per 100)."""
    table, now = svc.storage.table("bans"), clock.now()
    rows = [
        {"PartitionKey": BAN_PARTITION, "RowKey": row_key(source), "source": source,
         "until": now + timedelta(hours=1), "offences": 1, "bannedAt": now - timedelta(seconds=n)}
        for n, source in enumerate(sources)
    ]  # fmt: skip
    for start in range(0, len(rows), 100):
        table.submit_transaction([("upsert", row) for row in rows[start : start + 100]])


def test_the_published_rules_block_exactly_the_active_bans_and_keep_the_policys_own(make_services, clock, management):
    fake, base, ca_file = management
    svc = make_services(**STRICT)
    for _ in range(3):
        hammer(svc, "198.51.100.20")
        for host in range(3):
            hammer(svc, source_of(f"2001:db8:20:20::{host}"), tries=1)
        hammer(svc, source_of("2001:db8:20:20::9"), tries=1)
        clock.advance(minutes=1)
    active = {ban.source for ban in svc.bans.active()}
    assert {"198.51.100.20", "2001:db8:20:20::/64"} <= active

    summary = publisher(svc, base, ca_file, rules=2).publish(svc.bans.active())
    [put] = fake.puts
    rules = put["properties"]["customRules"]["rules"]
    ban_rules = [rule for rule in rules if rule["name"].startswith(RULE_PREFIX)]
    assert [rule for rule in rules if not rule["name"].startswith(RULE_PREFIX)] == [OWN_RULE]
    published = {value for rule in ban_rules for value in rule["matchConditions"][0]["matchValue"]}
    assert published == active
    assert all(r["action"] == "Block" and r["matchConditions"][0]["matchVariable"] == "SocketAddr" for r in ban_rules)
    assert all(r["priority"] < OWN_RULE["priority"] for r in ban_rules)
    assert summary == {"published": len(active), "leftOut": 0, "rules": 1, "changed": True}
    assert fake.authorizations == {"Bearer token-for-arm"}

    publisher(svc, base, ca_file, rules=2).publish(svc.bans.active())
    assert len(fake.puts) == 1  # nothing changed: nothing written


def test_over_the_waf_limit_the_worst_offenders_are_published_first(make_services, clock, management):
    fake, base, ca_file = management
    svc = make_services()
    clock.advance(days=30)  # past every other test's bans in the session's table
    newcomers = [f"192.0.2.{n}" for n in range(1, 11)]
    seed_bans(svc, [f"198.18.{n // 250}.{n % 250}" for n in range(ADDRESSES_PER_RULE)] + newcomers, clock)
    table = svc.storage.table("bans")
    repeat = table.get_entity(BAN_PARTITION, row_key("192.0.2.10"))
    table.upsert_entity({**repeat, "offences": 3})  # banned three times: it goes first

    summary = publisher(svc, base, ca_file, rules=1).publish(svc.bans.active())
    [rule] = [r for r in fake.puts[-1]["properties"]["customRules"]["rules"] if r["name"].startswith(RULE_PREFIX)]
    published = rule["matchConditions"][0]["matchValue"]
    assert len(published) == ADDRESSES_PER_RULE and published[0] == "192.0.2.10"
    assert summary["leftOut"] == 10 and summary["published"] == ADDRESSES_PER_RULE

    clock.advance(hours=2)  # every ban has ended: the rules go
    publisher(svc, base, ca_file, rules=1).publish(svc.bans.active())
    assert fake.puts[-1]["properties"]["customRules"]["rules"] == [OWN_RULE]
