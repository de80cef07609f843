"""Abuse resistance over HTTP, through the local host: input limits, security headers,
answers that do not reveal whether an account exists, and login throttling with
Retry-After.

The host here stands behind one more trusted proxy (TRUSTED_PROXY_COUNT=2), as behind
Azure Front Door: the test plays that proxy and writes the client's address into
X-Forwarded-For, the local host appends the peer address after it, and the app takes the
entry two hops from the right. That is how one test acts as many clients; anything a
client writes further left is ignored.
"""

from __future__ import annotations

import secrets
import statistics
import time

import httpx
import pytest

from shared.limits.guard import limit_from
from shared.services import Services

from .test_accounts_e2e import PASSWORD, basic, bearer

pytestmark = pytest.mark.e2e

TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def edge_host(launch_devhost, settings, app_settings_values):
    with launch_devhost({**app_settings_values, "TRUSTED_PROXY_COUNT": "2"}) as host:
        yield host


@pytest.fixture(scope="module")
def accounts(settings) -> Services:
    """Services on the same storage and keys as the host, on the real clock."""
    return Services(settings)


def a_client() -> str:
    """A client address of its own (counters persist in the session's storage)."""
    return "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


def from_client(ip: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"x-forwarded-for": ip, **(headers or {})}


def an_address(label: str) -> str:
    return f"{label}.{secrets.token_hex(6)}@example.com"


def active_user(accounts: Services, label: str = "owner") -> str:
    """An activated account with PASSWORD; returns its address."""
    address = an_address(label)
    accounts.accounts.register(address, PASSWORD)
    user = accounts.accounts.find_user(address)
    accounts.users.update(user, status="active", activated_at=accounts.clock.now())
    return address


def pending_user(accounts: Services) -> str:
    address = an_address("pending")
    accounts.accounts.register(address, PASSWORD)
    return address


def login(host, address: str, password: str, ip: str) -> httpx.Response:
    return host.client.post("/api/sessions", json={"email": address, "password": password}, headers=from_client(ip))


def shape(value):
    """Keys and types, not values: what a caller could tell two answers apart by."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


# --- input limits --------------------------------------------------------------------


def test_a_10_mb_body_to_a_json_endpoint_gets_413(edge_host):
    body = b'{"email": "big@example.com", "password": "' + b"a" * TEN_MB + b'"}'
    response = edge_host.client.post(
        "/api/users", content=body, headers=from_client(a_client(), {"content-type": "application/json"})
    )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_json_endpoint_refuses_another_content_type_with_415(edge_host):
    response = edge_host.client.post(
        "/api/sessions",
        content=b'{"email": "a@example.com", "password": "x"}',
        headers=from_client(a_client(), {"content-type": "text/plain"}),
    )
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_an_unknown_field_is_a_400_that_names_it(edge_host):
    response = edge_host.client.post(
        "/api/sessions",
        json={"email": "a@example.com", "password": "x", "remember": True},
        headers=from_client(a_client()),
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_input"
    assert {"field": "remember", "problem": "Extra inputs are not permitted"} in body["details"]
    assert body["requestObject"]["password"] == "***"


def test_an_over_long_query_string_gets_414(edge_host, settings):
    padding = "a" * (settings.max_query_string_bytes + 1)
    response = edge_host.client.get(f"/api/users/me?pad={padding}")
    assert response.status_code == 414
    assert response.json()["error"] == "uri_too_long"


# --- security headers ----------------------------------------------------------------


def test_json_success_and_error_answers_carry_nosniff_and_no_hsts_locally(edge_host):
    for response in (
        edge_host.client.get("/api/health"),
        edge_host.client.get("/api/users/me"),  # 401
        edge_host.client.post("/api/codes/redeem", json={"resourceId": "x"}, headers=from_client(a_client())),  # 400
    ):
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url
        assert "strict-transport-security" not in response.headers


@pytest.mark.parametrize("path", ["/", "/docs", "/admin/login", "/r/AAAAAAAAAAAAAAAAAAAAAA"])
def test_html_pages_carry_a_content_security_policy_and_nosniff(edge_host, path):
    response = edge_host.client.get(path)
    assert response.headers["content-type"].startswith("text/html"), path
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in response.headers


def test_answers_carrying_a_token_or_a_code_are_never_cached(edge_host, accounts):
    address, ip = active_user(accounts), a_client()
    signed_in = login(edge_host, address, PASSWORD, ip)
    assert signed_in.status_code == 201
    assert signed_in.headers["cache-control"] == "no-store"
    auth = bearer(signed_in.json()["data"]["token"])
    uploaded = edge_host.client.put(
        "/api/resources/note.txt", content=b"hello", headers={**auth, "content-type": "text/plain"}
    )
    assert uploaded.status_code in (200, 201), uploaded.text
    issued = edge_host.client.post(
        "/api/codes", json={"resourceId": uploaded.json()["data"]["resourceId"]}, headers=from_client(ip, auth)
    )
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    assert issued.headers["x-content-type-options"] == "nosniff"


# --- anti-enumeration ----------------------------------------------------------------


def test_registering_a_taken_address_gets_the_same_status_and_body_shape_as_a_new_one(edge_host, accounts):
    taken, new = active_user(accounts), an_address("new")
    answers = [
        edge_host.client.post(
            "/api/users", json={"email": email, "password": PASSWORD}, headers=from_client(a_client())
        )
        for email in (taken, new)
    ]
    assert answers[0].status_code == answers[1].status_code == 202
    first, second = (answer.json() for answer in answers)
    assert shape(first) == shape(second)
    assert first["message"] == second["message"]
    assert first["requestObject"]["password"] == second["requestObject"]["password"] == "***"


def test_login_with_an_unknown_address_answers_exactly_like_a_wrong_password(edge_host, accounts):
    known = active_user(accounts)
    unknown = login(edge_host, an_address("nobody"), PASSWORD, a_client())
    wrong = login(edge_host, known, PASSWORD + "x", a_client())
    assert unknown.status_code == wrong.status_code == 401
    without_echo = [{k: v for k, v in r.json().items() if k != "requestObject"} for r in (unknown, wrong)]
    assert without_echo[0] == without_echo[1]
    assert shape(unknown.json()) == shape(wrong.json())
    same_headers = ("www-authenticate", "cache-control", "content-type")
    assert [unknown.headers.get(h) for h in same_headers] == [wrong.headers.get(h) for h in same_headers]


def test_resending_activation_for_an_unknown_address_answers_like_for_a_known_one(edge_host, accounts):
    known = pending_user(accounts)

    def resend(address: str) -> httpx.Response:
        return edge_host.client.post(
            "/api/users/activation/resend", headers=from_client(a_client(), basic(address, PASSWORD + "x"))
        )

    unknown, known_answer = resend(an_address("nobody")), resend(known)
    assert unknown.status_code == known_answer.status_code == 401
    assert shape(unknown.json()) == shape(known_answer.json())
    assert {k: v for k, v in unknown.json().items() if k != "requestObject"} == {
        k: v for k, v in known_answer.json().items() if k != "requestObject"
    }


def medians(first, second, runs: int = 7) -> tuple[float, float]:
    """Median seconds of each call, the two taking turns so that load on the machine
    weighs on both alike."""
    durations: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for call, into in ((first, durations[0]), (second, durations[1])):
            started = time.perf_counter()
            call()
            into.append(time.perf_counter() - started)
    return statistics.median(durations[0]), statistics.median(durations[1])


def same_time_class(a: float, b: float, factor: float = 2.0) -> bool:
    return max(a, b) <= factor * min(a, b)


def test_unknown_and_known_accounts_are_answered_in_the_same_time_class(edge_host, accounts):
    """Medians of a handful over HTTP, within a generous factor (the machine is noisy; the
    precise comparison is bench/login_timing.py): both sides do the same bcrypt work."""
    known, pending = active_user(accounts), pending_user(accounts)
    client = edge_host.client
    login(edge_host, known, PASSWORD + "x", a_client())  # warm both paths
    login(edge_host, an_address("nobody"), PASSWORD, a_client())
    pairs = {
        "login": (
            lambda: login(edge_host, an_address("nobody"), PASSWORD, a_client()),
            lambda: login(edge_host, known, PASSWORD + "x", a_client()),
        ),
        "register": (
            lambda: client.post(
                "/api/users", json={"email": an_address("new"), "password": PASSWORD}, headers=from_client(a_client())
            ),
            lambda: client.post(
                "/api/users", json={"email": known, "password": PASSWORD}, headers=from_client(a_client())
            ),
        ),
        "resend": (
            lambda: client.post(
                "/api/users/activation/resend", headers=from_client(a_client(), basic(an_address("nobody"), PASSWORD))
            ),
            lambda: client.post(
                "/api/users/activation/resend", headers=from_client(a_client(), basic(pending, PASSWORD + "x"))
            ),
        ),
    }
    for name, (unknown_side, known_side) in pairs.items():
        unknown_median, known_median = medians(unknown_side, known_side)
        assert same_time_class(unknown_median, known_median), (name, unknown_median, known_median)


# --- login throttling ----------------------------------------------------------------


def count_of(spec: str) -> int:
    return int(spec.partition("/")[0])


def test_one_source_is_throttled_on_an_account_with_retry_after_while_the_owner_signs_in(edge_host, accounts, settings):
    owner, attacker = active_user(accounts), a_client()
    allowed = count_of(settings.limit_login_failures_per_ip_and_account)
    for n in range(allowed):
        # what the attacker writes to the left of X-Forwarded-For changes nothing
        assert login(edge_host, owner, f"guess-{n}", f"198.51.100.{n}, {attacker}").status_code == 401
    refused = login(edge_host, owner, "one-more-guess", attacker)
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    window = limit_from("login", settings.limit_login_failures_per_ip_and_account).window.total_seconds()
    assert 1 <= int(refused.headers["retry-after"]) <= window
    assert login(edge_host, owner, PASSWORD, attacker).status_code == 429  # even the right password, from there
    assert login(edge_host, owner, PASSWORD, a_client()).status_code == 201  # the owner, from elsewhere


def test_one_source_failing_on_many_accounts_is_throttled_per_ip(edge_host, accounts, settings):
    attacker, allowed = a_client(), count_of(settings.limit_login_failures_per_ip)
    for _ in range(allowed):
        assert login(edge_host, an_address("nobody"), PASSWORD, attacker).status_code == 401
    refused = login(edge_host, an_address("nobody"), PASSWORD, attacker)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert login(edge_host, active_user(accounts), PASSWORD, a_client()).status_code == 201


def test_failures_from_many_sources_pause_new_devices_briefly_with_retry_after(edge_host, accounts, settings):
    owner, allowed = active_user(accounts), count_of(settings.limit_login_failures_per_account)
    for n in range(allowed):
        assert login(edge_host, owner, f"guess-{n}", a_client()).status_code == 401
    paused = login(edge_host, owner, PASSWORD, a_client())
    assert paused.status_code == 429
    assert paused.json()["error"] == "sign_in_paused"
    window = limit_from("login", settings.limit_login_failures_per_account).window.total_seconds()
    assert 1 <= int(paused.headers["retry-after"]) <= window
