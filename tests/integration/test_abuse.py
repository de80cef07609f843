"""The abuse limits, each shown to hold against real storage: strangers cannot lock an
owner out, no concurrency overshoots a limit, and the brute-force figures' limits hold."""

from __future__ import annotations

import base64
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from pydantic import SecretStr

from shared import errors
from shared.codes.models import CodeRejected
from shared.limits.sources import source_of
from shared.services import Services
from tests.integration.codes_support import add_resource, add_user

PASSWORD = "correct horse battery staple 42"


def a_source() -> str:
    return source_of(f"198.51.{secrets.randbelow(250)}.{secrets.randbelow(250)}")


def an_owner(svc: Services) -> str:
    """An active account with PASSWORD; returns its address."""
    address = f"owner.{secrets.token_hex(6)}@example.com"
    svc.accounts.register(address, PASSWORD)
    user = svc.accounts.find_user(address)
    svc.users.update(user, status="active", activated_at=svc.clock.now())
    return address


def refusal(call) -> errors.DomainError | None:
    try:
        call()
    except errors.DomainError as error:
        return error
    return None


def wrong_login(svc: Services, address: str, source: str, **options) -> errors.DomainError | None:
    return refusal(lambda: svc.accounts.login(address, f"wrong-{secrets.token_hex(4)}", client_ip=source, **options))


# --- passwords ------------------------------------------------------------------------


def test_after_five_wrong_passwords_from_one_source_on_one_account_no_password_is_checked(make_services):
    svc = make_services()
    owner, attacker = an_owner(svc), a_source()
    assert [wrong_login(svc, owner, attacker).code for _ in range(5)] == ["invalid_credentials"] * 5
    assert wrong_login(svc, owner, attacker).code == "rate_limited"
    # not checked: the right password gets the same refusal, so a guess past the limit learns nothing
    right = refusal(lambda: svc.accounts.login(owner, PASSWORD, client_ip=attacker))
    assert right is not None and right.code == "rate_limited"
    # the owner, from another source, is not held back
    assert svc.accounts.login(owner, PASSWORD, client_ip=a_source()).token


def test_failures_from_many_sources_pause_only_unknown_devices_and_the_answer_is_the_same_right_or_wrong(
    make_services,
):
    svc = make_services(limit_login_failures_per_account="4/15m")
    owner = an_owner(svc)
    device = svc.accounts.login(owner, PASSWORD, client_ip=a_source()).device_token
    for _ in range(4):
        assert wrong_login(svc, owner, a_source()).code == "invalid_credentials"
    right = refusal(lambda: svc.accounts.login(owner, PASSWORD, client_ip=a_source()))
    wrong = wrong_login(svc, owner, a_source())
    assert right is not None, "the right password from an unknown device got in while the account was paused"
    assert (right.code, right.message) == (wrong.code, wrong.message) == ("sign_in_paused", right.message)
    assert 1 <= right.retry_after_seconds <= 15 * 60
    # the owner's known device signs in, and keeps its token
    again = svc.accounts.login(owner, PASSWORD, client_ip=a_source(), device_token=device)
    assert again.device_token == device


def test_the_pause_of_unknown_devices_ends_with_its_window(make_services, clock):
    svc = make_services(limit_login_failures_per_account="3/15m")
    owner = an_owner(svc)
    for _ in range(3):
        wrong_login(svc, owner, a_source())
    paused = wrong_login(svc, owner, a_source())
    assert paused.code == "sign_in_paused"
    clock.advance(seconds=paused.retry_after_seconds)
    assert svc.accounts.login(owner, PASSWORD, client_ip=a_source()).token


def test_an_unlock_code_signs_the_owner_in_from_a_new_device_while_paused(make_services):
    svc = make_services(limit_login_failures_per_account="2/15m")
    owner = an_owner(svc)
    for _ in range(3):
        wrong_login(svc, owner, a_source())
    svc.accounts.request_unlock(owner, client_ip=a_source())
    code = svc.unlock_codes.issue(owner.lower())  # the mailed code is replaced by one the test knows
    assert wrong_login(svc, owner, a_source(), unlock_code="000000" if code != "000000" else "111111").code == (
        "invalid_credentials"
    )
    login = svc.accounts.login(owner, PASSWORD, client_ip=a_source(), unlock_code=code)
    assert login.token and login.device_token
    # single use
    assert refusal(lambda: svc.accounts.login(owner, PASSWORD, client_ip=a_source(), unlock_code=code)).code == (
        "invalid_credentials"
    )
    # and the device it trusted is known from now on
    assert svc.accounts.login(owner, PASSWORD, client_ip=a_source(), device_token=login.device_token).token


def test_unlock_mails_stop_at_the_accounts_budget_and_requests_at_the_sources(make_services):
    svc = make_services(limit_unlock_mails_per_account="2/1h", limit_unlock_per_ip="3/1h")
    owner, source = an_owner(svc), a_source()
    user_id = svc.accounts.find_user(owner).user_id
    for _ in range(3):
        svc.accounts.request_unlock(owner, client_ip=source)  # the same answer every time
    with pytest.raises(errors.TooManyRequests):
        svc.accounts.request_unlock(owner, client_ip=source)
    now = svc.clock.now()
    sent = [
        event.outcome
        for event in svc.audit.read(now - timedelta(minutes=1), now + timedelta(minutes=1), types={"unlock_request"})
        if event.user_id == user_id
    ]
    assert sent == ["ok", "ok", "fail"]  # the third request mailed nothing


def test_an_unlock_code_dies_after_five_wrong_tries_and_after_ten_minutes(make_services, clock):
    svc = make_services()
    account = f"someone.{secrets.token_hex(4)}@example.com"
    code = svc.unlock_codes.issue(account)
    wrong = "000000" if code != "000000" else "111111"
    assert [svc.unlock_codes.redeem(account, wrong) for _ in range(5)] == [False] * 5
    assert svc.unlock_codes.redeem(account, code) is False  # burned
    code = svc.unlock_codes.issue(account)  # a new one replaces it
    clock.advance(minutes=10)
    assert svc.unlock_codes.redeem(account, code) is False  # expired


def test_device_tokens_and_unlock_codes_are_stored_only_as_keyed_hashes(make_services):
    svc = make_services()
    owner = an_owner(svc)
    device = svc.accounts.login(owner, PASSWORD, client_ip=a_source()).device_token
    code = svc.unlock_codes.issue(owner)
    stored = [
        value
        for table in ("sessions", "activations")
        for row in svc.storage.table(table).query_entities("PartitionKey ge 'd:' and PartitionKey lt 'v'")
        for value in [row["PartitionKey"], row["RowKey"], *row.values()]
    ]
    assert stored and not any(device in str(value) for value in stored)
    assert not any(str(value) == code for value in stored)


def test_a_wrong_unlock_code_checks_no_password(make_services):
    svc = make_services(limit_login_failures_per_account="1/15m")
    owner = an_owner(svc)
    svc.accounts.request_unlock(owner, client_ip=a_source())
    for _ in range(3):
        # the right password with a wrong code: refused like any wrong code
        assert refusal(lambda: svc.accounts.login(owner, PASSWORD, client_ip=a_source(), unlock_code="123456")).code
    # those tries spent nothing of the account's budget: a plain sign-in still works
    assert svc.accounts.login(owner, PASSWORD, client_ip=a_source()).token


def test_at_most_the_daily_number_of_wrong_passwords_is_checked_per_account(make_services, clock):
    svc = make_services(limit_login_failures_per_account="3/15m", limit_login_failures_per_account_daily="7/1d")
    owner = an_owner(svc)
    checked = 0
    for _ in range(6):  # six short windows
        for _ in range(4):
            if wrong_login(svc, owner, a_source()).code == "invalid_credentials":
                checked += 1
        clock.advance(minutes=15)
    assert checked == 7


def test_a_known_device_has_its_own_small_budget(make_services):
    svc = make_services(limit_login_failures_per_device="2/15m")
    owner = an_owner(svc)
    device = svc.accounts.login(owner, PASSWORD, client_ip=a_source()).device_token
    codes = [wrong_login(svc, owner, a_source(), device_token=device).code for _ in range(3)]
    assert codes == ["invalid_credentials", "invalid_credentials", "rate_limited"]
    # other devices are not affected by it
    assert svc.accounts.login(owner, PASSWORD, client_ip=a_source()).token


def test_a_password_change_revokes_every_known_device(make_services):
    svc = make_services(limit_login_failures_per_account="1/15m")
    owner = an_owner(svc)
    login = svc.accounts.login(owner, PASSWORD, client_ip=a_source())
    svc.accounts.change_password(login.session, PASSWORD, PASSWORD + " and more")
    for _ in range(2):
        wrong_login(svc, owner, a_source())
    # the old device token is no longer a known device: held back like any new device
    stale = refusal(lambda: svc.accounts.login(owner, PASSWORD + " and more", client_ip=a_source(),
                                               device_token=login.device_token))  # fmt: skip
    assert stale.code == "sign_in_paused"


def test_a_device_token_of_another_account_is_an_unknown_device(make_services):
    svc = make_services(limit_login_failures_per_account="1/15m")
    owner, other = an_owner(svc), an_owner(svc)
    others_device = svc.accounts.login(other, PASSWORD, client_ip=a_source()).device_token
    for _ in range(2):
        wrong_login(svc, owner, a_source())
    held = refusal(lambda: svc.accounts.login(owner, PASSWORD, client_ip=a_source(), device_token=others_device))
    assert held.code == "sign_in_paused"


def test_parallel_wrong_passwords_get_no_more_checks_than_the_limit(make_services):
    svc = make_services()
    owner, attacker = an_owner(svc), a_source()
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda _: wrong_login(svc, owner, attacker).code, range(60)))
    assert outcomes.count("invalid_credentials") <= 5
    assert outcomes.count("invalid_credentials") + outcomes.count("rate_limited") == 60


def test_limits_and_pauses_survive_a_key_rotation(make_services, settings):
    svc = make_services(limit_login_failures_per_account="3/15m")
    owner = an_owner(svc)
    for _ in range(3):
        wrong_login(svc, owner, a_source())
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    rotated = make_services(
        limit_login_failures_per_account="3/15m",
        hmac_keys=SecretStr(f"{settings.hmac_keys.get_secret_value()},t8:{new_key}"),
        hmac_active_key_id="t8",
    )
    assert wrong_login(rotated, owner, a_source()).code == "sign_in_paused"


# --- acts counted on every call --------------------------------------------------------


def test_parallel_registrations_from_one_source_never_pass_the_limit(make_services):
    svc = make_services(limit_register_per_ip="4/1h")
    source = a_source()

    def register(_):
        address = f"new.{secrets.token_hex(6)}@example.com"
        return refusal(lambda: svc.accounts.register(address, PASSWORD, client_ip=source))

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(register, range(30)))
    assert sum(1 for outcome in outcomes if outcome is None) == 4


def test_an_ipv6_subnet_is_one_source(make_services):
    svc = make_services(limit_register_per_ip="3/1h")
    prefix = f"2001:db8:{secrets.randbelow(65535):x}:{secrets.randbelow(65535):x}"
    outcomes = [
        refusal(
            lambda n=n: svc.accounts.register(
                f"v6.{secrets.token_hex(6)}@example.com", PASSWORD, client_ip=source_of(f"{prefix}::{n:x}")
            )
        )
        for n in range(1, 6)
    ]
    assert [outcome is None for outcome in outcomes] == [True, True, True, False, False]


# --- codes ------------------------------------------------------------------------------


def _owner_with_resource(svc):
    return add_resource(svc, add_user(svc))


def a_wrong_code(issued) -> str:
    return "000000" if issued.code != "000000" else "111111"


def test_issuing_stops_at_the_per_user_budget(make_services):
    svc = make_services(limit_issue_per_user="2/1h", max_active_codes_per_resource=5)
    resource = _owner_with_resource(svc)
    for _ in range(2):
        svc.codes.issue(resource.owner_id, resource.resource_id, source=a_source())
    with pytest.raises(errors.TooManyRequests) as refused:
        svc.codes.issue(resource.owner_id, resource.resource_id, source=a_source())
    assert refused.value.retry_after_seconds <= 3600
    assert len(svc.codes.list(resource.owner_id)) == 2


def test_a_resource_takes_at_most_the_configured_number_of_active_codes_even_when_issued_at_once(make_services):
    svc = make_services(max_active_codes_per_resource=3)
    resource = _owner_with_resource(svc)
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(
            pool.map(lambda _: refusal(lambda: svc.codes.issue(resource.owner_id, resource.resource_id)), range(24))
        )
    assert sum(1 for outcome in outcomes if outcome is None) == 3
    assert {outcome.code for outcome in outcomes if outcome is not None} == {"too_many_active_codes"}
    # a code that ends frees its slot
    first = svc.codes.list(resource.owner_id)[0]
    svc.codes.revoke(resource.owner_id, first["codeId"])
    assert svc.codes.issue(resource.owner_id, resource.resource_id).code


def test_one_source_uses_only_part_of_a_resources_budget(make_services):
    svc = make_services(limit_redeem_attempts_per_resource_and_ip="3/30m", limit_redeem_attempts_per_resource="10/30m")
    resource = _owner_with_resource(svc)
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    attacker = a_source()
    for _ in range(3):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(resource.resource_id, a_wrong_code(issued), source=attacker)
    with pytest.raises(errors.TooManyRequests):
        svc.codes.redeem(resource.resource_id, a_wrong_code(issued), source=attacker)
    # the guest, from elsewhere, redeems; the stranger's guesses burned nothing
    assert svc.codes.redeem(resource.resource_id, issued.code, source=a_source()).resource_id == resource.resource_id


def test_redemption_attempts_on_a_resource_stop_at_its_budget_whatever_the_sources(make_services):
    svc = make_services(limit_redeem_attempts_per_resource="4/30m")
    resource = _owner_with_resource(svc)
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(
            pool.map(
                lambda _: refusal(
                    lambda: svc.codes.redeem(resource.resource_id, a_wrong_code(issued), source=a_source())
                ),
                range(30),
            )
        )
    checked = sum(1 for outcome in outcomes if isinstance(outcome, CodeRejected))
    assert checked <= 4
    # racers refused together may leave a slot or two unspent (never one too many): spend them
    for _ in range(4 - checked):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(resource.resource_id, a_wrong_code(issued), source=a_source())
    with pytest.raises(errors.TooManyRequests):
        svc.codes.redeem(resource.resource_id, issued.code, source=a_source())
    pressure = svc.codes.redemption_pressure(resource.resource_id)
    assert pressure["paused"] and pressure["failedAttempts"] >= 4 and pressure["pausedUntil"]
    # the owner's code is not burned
    assert svc.codes.list(resource.owner_id)[0]["state"] == "active"


def test_redeemed_codes_take_nothing_of_the_resources_budget(make_services):
    svc = make_services(limit_redeem_attempts_per_resource="2/30m", max_active_codes_per_resource=5)
    resource = _owner_with_resource(svc)
    for _ in range(5):
        issued = svc.codes.issue(resource.owner_id, resource.resource_id)
        svc.codes.redeem(resource.resource_id, issued.code, source=a_source())
    assert svc.codes.redemption_pressure(resource.resource_id) == {
        "failedAttempts": 0,
        "paused": False,
        "pausedUntil": None,
    }


def test_failed_redemptions_per_source_are_capped(make_services):
    svc = make_services(limit_redeem_failures_per_ip="3/10m")
    source = a_source()
    for _ in range(3):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=source)
    with pytest.raises(errors.TooManyRequests):
        svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=source)


def test_a_spent_global_budget_tightens_only_sources_that_failed_before(make_services, clock):
    svc = make_services(
        limit_redeem_failures_per_ip="20/10m",
        limit_redeem_failures_per_ip_tightened=2,
        limit_redeem_failures_global="5/10m",
    )
    repeat_offender = a_source()
    for _ in range(3):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=repeat_offender)
    clock.advance(minutes=10)
    for _ in range(6):  # a botnet spends the global budget of the new window
        with pytest.raises(CodeRejected):
            svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=a_source())
    with pytest.raises(CodeRejected):
        svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=repeat_offender)
    with pytest.raises(CodeRejected):
        svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=repeat_offender)
    with pytest.raises(errors.TooManyRequests):
        svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=repeat_offender)
    # a guest who never failed keeps the full allowance
    newcomer = a_source()
    for _ in range(5):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(secrets.token_urlsafe(16), "123456", source=newcomer)
