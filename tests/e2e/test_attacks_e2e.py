"""Attacks on the abuse limits, tried over HTTP through the local host as an attacker with
many addresses would, each the reproduction of a finding and the proof of its fix.

The host stands behind one more trusted proxy (TRUSTED_PROXY_COUNT=2, as behind Azure
Front Door): the test plays that proxy and writes each client's address into
X-Forwarded-For, so one test speaks for thousands of sources, IPv4 and IPv6. Limits are
the defaults unless a test's host says otherwise. The figures the README's table quotes
are printed (`pytest -s`) and asserted here.
"""

from __future__ import annotations

import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from functions.web import minutes_text
from shared.limits.guard import limit_from
from shared.services import Services

from .test_abuse_e2e import active_user
from .test_accounts_e2e import PASSWORD, basic, bearer, wait_for_mail

pytestmark = pytest.mark.e2e

ATTACK_LIMITS = {
    "TRUSTED_PROXY_COUNT": "2",
    # the defaults of every limit an attack here meets (tests/conftest.py loosens some)
    "LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE": "10/30m",
    "LIMIT_REDEEM_ATTEMPTS_PER_RESOURCE_AND_IP": "5/30m",
    "LIMIT_REDEEM_FAILURES_PER_IP": "20/10m",
    "MAX_ACTIVE_CODES_PER_RESOURCE": "3",
    # small, so that this test's botnet spends it
    "LIMIT_REDEEM_FAILURES_GLOBAL": "200/5m",
}


@pytest.fixture(scope="module")
def edge(launch_devhost, settings, app_settings_values):
    with launch_devhost({**app_settings_values, **ATTACK_LIMITS}) as host:
        yield host


@pytest.fixture(scope="module")
def accounts(settings) -> Services:
    """Services on the same storage and keys as the host."""
    return Services(settings)


def ipv4() -> str:
    return "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


def ipv6_subnet() -> str:
    return "2001:db8:" + ":".join(f"{secrets.randbelow(65535):x}" for _ in range(2))


def addresses(count: int) -> list[str]:
    """`count` sources: half IPv4 addresses, half IPv6 /64s (one address in each)."""
    return [ipv4() if n % 2 else f"{ipv6_subnet()}::{secrets.randbelow(65535):x}" for n in range(count)]


def via(address: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"x-forwarded-for": address, **(headers or {})}


def sign_in(host, email: str, password: str, source: str, *, device: str | None = None, **body) -> httpx.Response:
    headers = via(source, {"x-device-token": device} if device else None)
    return host.client.post("/api/sessions", json={"email": email, "password": password, **body}, headers=headers)


def in_parallel(call, items, workers: int = 16) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(call, items))


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counted: dict[int, int] = {}
    for response in responses:
        counted[response.status_code] = counted.get(response.status_code, 0) + 1
    return counted


# --- accounts ---------------------------------------------------------------------------


def wrong_passwords_beside_the_owner(budget, attack, sources: list[str], owner_signs_in, owner_tries: int):
    """Each source sends one wrong password, 16 at a time, while the owner signs in
    `owner_tries` times. Checks that every attack was refused and that no more passwords
    were checked than the account's budget in each window the attack touched; returns the
    attack's statuses and the owner's answers."""
    began = datetime.now(UTC)
    with ThreadPoolExecutor(16) as pool:
        attacks = pool.map(attack, sources)
        owner_during = [pool.submit(owner_signs_in) for _ in range(owner_tries)]
        seen = statuses(list(attacks))
    assert set(seen) <= {401, 429}
    windows = {budget.window_of(began)[0], budget.window_of(datetime.now(UTC))[0]}
    assert seen.get(401, 0) <= budget.limit * len(windows)
    return seen, [future.result() for future in owner_during]


def test_a_thousand_addresses_cannot_keep_the_owner_out(edge, accounts, settings):
    owner = active_user(accounts)
    device = sign_in(edge, owner, PASSWORD, ipv4()).json()["data"]["deviceToken"]
    budget = limit_from("login-fail-account", settings.limit_login_failures_per_account)
    seen, owner_during = wrong_passwords_beside_the_owner(
        budget,
        lambda source: sign_in(edge, owner, f"guess-{secrets.token_hex(4)}", source),
        addresses(1000),
        lambda: sign_in(edge, owner, PASSWORD, ipv4(), device=device),
        5,
    )
    print(f"\n1,000 addresses, one wrong password each: {seen}")
    assert all(answer.status_code == 201 for answer in owner_during)

    # a new device: paused, the same answer with the right password as with a wrong one
    right = sign_in(edge, owner, PASSWORD, ipv4())
    wrong = sign_in(edge, owner, "not-the-password", ipv4())
    assert right.status_code == wrong.status_code == 429
    assert right.json()["error"] == wrong.json()["error"] == "sign_in_paused"
    assert right.json()["message"] == wrong.json()["message"]
    assert 1 <= int(right.headers["retry-after"]) <= 15 * 60

    # ... and the owner gets in on it with an unlock code by mail
    owner_source = ipv4()
    asked = edge.client.post("/api/sessions/unlock", json={"email": owner}, headers=via(owner_source))
    assert asked.status_code == 202
    code = re.search(r"unlock code is (\d{6})\.", wait_for_mail(edge, owner, "unlock_code")["text"]).group(1)
    unlocked = sign_in(edge, owner, PASSWORD, owner_source, unlockCode=code)
    assert unlocked.status_code == 201, unlocked.text
    assert unlocked.json()["requestObject"]["unlockCode"] == "***"
    new_device = unlocked.json()["data"]["deviceToken"]
    assert sign_in(edge, owner, PASSWORD, ipv4(), device=new_device).status_code == 201
    # the owner heard of the attack once, not once per window
    notices = edge.client.get("/api/dev/mailbox", params={"to": owner}).json()["data"]
    assert sum(1 for mail in notices if mail.get("kind") == "sign_in_paused") <= 1


def test_an_unlock_request_answers_alike_for_unknown_addresses(edge, accounts):
    known, unknown = active_user(accounts), f"nobody.{secrets.token_hex(6)}@example.com"
    answers = [
        edge.client.post("/api/sessions/unlock", json={"email": e}, headers=via(ipv4())) for e in (known, unknown)
    ]
    assert answers[0].status_code == answers[1].status_code == 202
    assert answers[0].json()["message"] == answers[1].json()["message"]


def test_rotating_through_an_ipv6_64_meets_the_limit_of_one_address(edge, accounts):
    owner, subnet = active_user(accounts), ipv6_subnet()
    forms = [f"{subnet}::{n:x}" for n in range(1, 5)] + [f"[{subnet}::{n:x}]:{50000 + n}" for n in range(5, 9)]
    answers = [sign_in(edge, owner, f"guess-{n}", form).status_code for n, form in enumerate(forms)]
    print(f"\n8 addresses of one /64: {answers}")
    assert answers == [401] * 5 + [429] * 3
    assert sign_in(edge, owner, PASSWORD, ipv4()).status_code == 201


def test_sixty_parallel_wrong_passwords_get_at_most_five_checks(edge, accounts):
    owner, source = active_user(accounts), ipv4()
    answers = statuses(in_parallel(lambda n: sign_in(edge, owner, f"guess-{n}", source), range(60)))
    print(f"\n60 parallel wrong passwords from one address: {answers}")
    assert answers.get(401, 0) <= 5
    assert answers.get(401, 0) + answers.get(429, 0) == 60


def test_sixty_parallel_registrations_from_one_address_pass_at_most_the_limit(edge, settings):
    source = ipv4()
    answers = statuses(
        in_parallel(
            lambda n: edge.client.post(
                "/api/users",
                json={"email": f"burst.{secrets.token_hex(6)}@example.com", "password": PASSWORD},
                headers=via(source),
            ),
            range(60),
        )
    )
    print(f"\n60 parallel registrations from one address: {answers}")
    assert answers.get(202, 0) <= int(settings.limit_register_per_ip.partition("/")[0])
    assert answers.get(202, 0) + answers.get(429, 0) == 60


@pytest.mark.parametrize(("path", "body"), [("/api/users/activation", {"code": "0000"}),
                                            ("/api/users/activation/resend", None)])  # fmt: skip
def test_sixty_parallel_activation_calls_from_one_address_pass_at_most_the_limit(edge, accounts, settings, path, body):
    pending = f"pending.{secrets.token_hex(6)}@example.com"
    accounts.accounts.register(pending, PASSWORD)
    source = ipv4()
    limit = settings.limit_activation_per_ip if path.endswith("activation") else settings.limit_resend_per_ip
    answers = statuses(
        in_parallel(
            lambda _: edge.client.post(path, json=body, headers=via(source, basic(pending, "wrong"))), range(60)
        )
    )
    print(f"\n60 parallel {path} from one address: {answers}")
    assert 60 - answers.get(429, 0) <= int(limit.partition("/")[0])


# --- codes ------------------------------------------------------------------------------


def a_file(host, accounts) -> tuple[dict[str, str], str]:
    """A signed-in owner's bearer headers and a resource id of theirs."""
    owner = active_user(accounts)
    token = sign_in(host, owner, PASSWORD, ipv4()).json()["data"]["token"]
    auth = bearer(token)
    uploaded = host.client.put(
        "/api/resources/leak.txt", content=b"secret", headers={**auth, "content-type": "text/plain"}
    )
    assert uploaded.status_code == 201, uploaded.text
    return auth, uploaded.json()["data"]["resourceId"]


def issue(host, auth, resource_id: str) -> dict:
    issued = host.client.post("/api/codes", json={"resourceId": resource_id}, headers=via(ipv4(), auth))
    assert issued.status_code == 201, issued.text
    return issued.json()["data"]


def redeem(host, resource_id: str, code: str, source: str) -> httpx.Response:
    return host.client.post("/api/codes/redeem", json={"resourceId": resource_id, "code": code}, headers=via(source))


def test_sixty_parallel_failed_redemptions_from_one_address_pass_at_most_the_limit(edge):
    budget = limit_from("redeem-fail-ip", ATTACK_LIMITS["LIMIT_REDEEM_FAILURES_PER_IP"])
    source = ipv4()
    began = datetime.now(UTC)
    answers = statuses(
        in_parallel(
            lambda _: redeem(edge, secrets.token_urlsafe(16), f"{secrets.randbelow(10**6):06d}", source), range(60)
        )
    )
    print(f"\n60 parallel failed redemptions from one address: {answers}")
    # the source's budget, in each of its windows the burst touched (they are fixed windows)
    windows = {budget.window_of(began)[0], budget.window_of(datetime.now(UTC))[0]}
    assert answers.get(400, 0) <= budget.limit * len(windows)
    assert answers.get(400, 0) + answers.get(429, 0) == 60


def test_a_leaked_link_is_rotated_and_the_new_link_works_while_the_attacker_keeps_going(edge, accounts):
    auth, leaked = a_file(edge, accounts)
    old_code = issue(edge, auth, leaked)["code"]
    attackers = addresses(40)

    def guess(source: str) -> httpx.Response:
        return redeem(edge, leaked, f"{secrets.randbelow(10**6):06d}", source)

    first_wave = statuses([guess(source) for source in attackers[:20]])
    # the owner sees the attack, the guest link is frozen
    listed = {r["resourceId"]: r for r in edge.client.get("/api/resources", headers=auth).json()["data"]["resources"]}
    assert listed[leaked]["redemption"]["paused"] is True
    assert listed[leaked]["redemption"]["failedAttempts"] >= 10
    assert redeem(edge, leaked, old_code, ipv4()).status_code == 429

    rotated = edge.client.post(f"/api/resources/{leaked}/link", headers=auth)
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["data"]["resourceId"]
    assert fresh != leaked and rotated.json()["data"]["redeemUrl"].endswith(f"/r/{fresh}")
    new_code = issue(edge, auth, fresh)["code"]
    second_wave = statuses([guess(source) for source in attackers[20:]])  # the attacker keeps going on the old id
    print(f"\nleaked link: before rotation {first_wave}, after {second_wave}")
    assert set(second_wave) <= {400, 429}  # the old id redeems nothing (and is still frozen)
    guest = redeem(edge, fresh, new_code, ipv4())
    assert guest.status_code == 200, guest.text
    assert redeem(edge, leaked, old_code, ipv4()).status_code in (400, 429)  # its codes were revoked


def on_the_guest_page(host, resource_id: str, code: str, source: str, form: tuple[str, str]) -> httpx.Response:
    """The guest page's form posted as the browser that opened it (form token and its cookie)."""
    token, nonce = form
    return host.client.post(
        f"/r/{resource_id}", data={"code": code, "csrfToken": token}, headers=via(source, {"cookie": nonce})
    )


def test_the_guest_page_past_one_addresss_limit_says_when_to_try_again_and_the_code_still_works(edge, accounts):
    auth, resource_id = a_file(edge, accounts)
    code = issue(edge, auth, resource_id)["code"]
    guest = ipv4()
    page = edge.client.get(f"/r/{resource_id}", headers=via(guest))
    token = re.search(r'name="csrfToken" value="([^"]+)"', page.text).group(1)
    form = (token, page.headers["set-cookie"].partition(";")[0])
    wrong = "000000" if code != "000000" else "111111"
    tries = [on_the_guest_page(edge, resource_id, wrong, guest, form) for _ in range(5)]  # the limit: 5 per address
    assert [answer.status_code for answer in tries] == [400] * 5
    # past it even the right code is not looked at, and the page says when to come back
    limited = on_the_guest_page(edge, resource_id, code, guest, form)
    assert limited.status_code == 429
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= 30 * 60
    assert f"Too many attempts. Try again in {minutes_text(wait)}." in limited.text
    # the code was not burned: from another address it opens the file
    assert on_the_guest_page(edge, resource_id, code, ipv4(), form).status_code == 200


def test_a_botnet_of_a_thousand_addresses_does_not_slow_a_guest_who_never_failed(edge, accounts):
    auth, resource_id = a_file(edge, accounts)
    code = issue(edge, auth, resource_id)["code"]
    botnet = statuses(
        in_parallel(lambda source: redeem(edge, secrets.token_urlsafe(16), "123456", source), addresses(1000))
    )
    print(f"\nbotnet of 1,000 addresses, one failure each: {botnet}")
    assert botnet.get(400, 0) >= 200  # the global budget (200 here) is spent
    guest = ipv4()
    typos = [redeem(edge, secrets.token_urlsafe(16), "654321", guest).status_code for _ in range(19)]
    assert typos == [400] * 19  # the full per-address allowance (20), not the tightened 3
    assert redeem(edge, resource_id, code, guest).status_code == 200


def keep_cookies(jar: dict[str, str], response: httpx.Response) -> None:
    """Keep what a browser keeps from the answer's Set-Cookie headers. httpx's cookie jar
    (http.cookiejar) drops a cookie carrying the empty `domain=` the Functions host
    writes, where browsers ignore the attribute (RFC 6265 5.2.3), so the test keeps them."""
    for header in response.headers.get_list("set-cookie"):
        name, _, value = header.partition(";")[0].partition("=")
        jar[name] = value


def browser_form(edge, jar: dict[str, str], page: str, action: str, source: str, fields: dict[str, str]):
    """Open `page` and post its form to `action` as a browser holding these cookies does
    (the page's form token and its cookie); the browser keeps what the answers set."""

    def as_the_browser(response: httpx.Response) -> httpx.Response:
        keep_cookies(jar, response)
        return response

    def headers() -> dict[str, str]:
        return {**via(source), "cookie": "; ".join(f"{name}={value}" for name, value in jar.items())}

    form = as_the_browser(edge.client.get(page, headers=headers()))
    token = re.search(r'name="csrfToken" value="([^"]+)"', form.text).group(1)
    return as_the_browser(edge.client.post(action, data={**fields, "csrfToken": token}, headers=headers()))


def form_sign_in(edge, jar: dict[str, str], base: str, email: str, password: str, source: str, **fields):
    """A sign-in page's form (`base`: /admin, the console, or /account), from a browser
    holding these cookies (none signed in)."""
    jar.pop("console_session", None)
    jar.pop("account_session", None)
    fields = {"email": email, "password": password, "returnUrl": base, **fields}
    return browser_form(edge, jar, f"{base}/login", f"{base}/login", source, fields)


def console_sign_in(edge, jar: dict[str, str], email: str, password: str, source: str) -> httpx.Response:
    return form_sign_in(edge, jar, "/admin", email, password, source)


def test_the_console_keeps_a_device_cookie_that_signs_in_while_new_devices_are_paused(edge, accounts):
    owner = active_user(accounts)
    known: dict[str, str] = {}
    first = console_sign_in(edge, known, owner, PASSWORD, ipv4())
    assert first.status_code == 303
    device_cookie = next(c for c in first.headers.get_list("set-cookie") if c.startswith("device="))
    assert "httponly" in device_cookie.lower() and "samesite=strict" in device_cookie.lower()
    for source in addresses(12):
        sign_in(edge, owner, "not-the-password", source)
    assert console_sign_in(edge, {}, owner, PASSWORD, ipv4()).status_code == 429
    assert console_sign_in(edge, known, owner, PASSWORD, ipv4()).status_code == 303


def page_error(page: httpx.Response) -> str:
    return re.search(r'id="form-error">([^<]+)<', page.text).group(1)


def test_a_botnet_on_the_account_sign_in_page_cannot_keep_the_owner_out(edge, accounts, settings):
    owner = active_user(accounts)
    known: dict[str, str] = {}
    assert form_sign_in(edge, known, "/account", owner, PASSWORD, ipv4()).status_code == 303
    budget = limit_from("login-fail-account", settings.limit_login_failures_per_account)
    seen, owner_during = wrong_passwords_beside_the_owner(
        budget,
        lambda source: form_sign_in(edge, {}, "/account", owner, f"guess-{secrets.token_hex(4)}", source),
        addresses(400),
        lambda: form_sign_in(edge, dict(known), "/account", owner, PASSWORD, ipv4()),
        3,
    )
    print(f"\n400 addresses on the account sign-in page, one wrong password each: {seen}")
    assert all(answer.status_code == 303 for answer in owner_during)

    # a new browser: the right password is answered as a wrong one, and the page offers the unlock code
    right = form_sign_in(edge, {}, "/account", owner, PASSWORD, ipv4())
    wrong = form_sign_in(edge, {}, "/account", owner, "not-the-password", ipv4())
    assert right.status_code == wrong.status_code == 429
    assert page_error(right) == page_error(wrong)
    assert 'name="unlockCode"' in right.text and 'action="/account/unlock"' in right.text

    # ... and the owner asks for the code there and signs in with it
    browser: dict[str, str] = {}
    source = f"{ipv6_subnet()}::1"
    asked = browser_form(edge, browser, "/account/login", "/account/unlock", source, {"email": owner})
    assert asked.status_code == 200 and "unlock code is on its way" in asked.text
    code = re.search(r"unlock code is (\d{6})\.", wait_for_mail(edge, owner, "unlock_code")["text"]).group(1)
    unlocked = form_sign_in(edge, browser, "/account", owner, PASSWORD, source, unlockCode=code)
    assert unlocked.status_code == 303, page_error(unlocked)
    assert unlocked.headers["location"] == "/account" and "account_session" in browser
