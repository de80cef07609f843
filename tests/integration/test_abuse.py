"""The limits the brute-force figures in the README rely on, each shown to hold."""

import secrets

import pytest

from shared import errors
from shared.codes.models import CodeRejected
from tests.integration.codes_support import add_resource, add_user


def an_ip() -> str:
    return f"198.51.100.{secrets.randbelow(250)}"


def a_resource() -> str:
    return secrets.token_urlsafe(16)


@pytest.fixture
def guard(make_services):
    return make_services().abuse


def test_sixth_failed_login_from_one_ip_on_one_account_is_throttled(guard):
    ip, email = an_ip(), f"{secrets.token_hex(4)}@example.com"
    for _ in range(5):
        guard.check_login(ip, email)
        guard.login_failed(ip, email)
    with pytest.raises(errors.TooManyRequests):
        guard.check_login(ip, email)


def test_owner_from_another_ip_is_not_throttled_while_one_ip_hammers_the_account(guard):
    attacker, owner, email = an_ip(), "192.0.2.10", f"{secrets.token_hex(4)}@example.com"
    for _ in range(5):
        guard.check_login(attacker, email)
        guard.login_failed(attacker, email)
    with pytest.raises(errors.TooManyRequests):
        guard.check_login(attacker, email)
    guard.check_login(owner, email)  # no exception: the owner may try


def test_failures_from_many_ips_pause_the_account_with_a_growing_capped_wait(make_services, clock):
    guard = make_services(limit_login_failures_per_account="4/15m", account_pause_base_seconds=30,
                          account_pause_max_seconds=60).abuse  # fmt: skip
    email = f"{secrets.token_hex(4)}@example.com"
    started = [guard.login_failed(f"203.0.113.{n}", email) for n in range(4)]
    assert started == [False, False, False, True]
    with pytest.raises(errors.TooManyRequests) as first:
        guard.check_login("192.0.2.20", email)
    assert 1 <= first.value.retry_after_seconds <= 30
    clock.advance(seconds=31)
    guard.check_login("192.0.2.20", email)  # the pause ended
    guard.login_failed("203.0.113.99", email)  # one more failure: a longer pause
    with pytest.raises(errors.TooManyRequests) as second:
        guard.check_login("192.0.2.20", email)
    assert 30 < second.value.retry_after_seconds <= 60
    clock.advance(seconds=61)
    guard.login_failed("203.0.113.98", email)
    with pytest.raises(errors.TooManyRequests) as third:
        guard.check_login("192.0.2.20", email)
    assert third.value.retry_after_seconds <= 60  # capped


def test_a_successful_login_forgets_the_pause_level(make_services, clock):
    guard = make_services(limit_login_failures_per_account="2/15m").abuse
    email = f"{secrets.token_hex(4)}@example.com"
    guard.login_failed("203.0.113.1", email)
    guard.login_failed("203.0.113.2", email)
    clock.advance(minutes=16)
    guard.login_succeeded(email)
    guard.check_login("203.0.113.3", email)


def test_redemption_attempts_on_a_resource_stop_at_the_limit_whatever_the_source(make_services):
    guard = make_services(limit_redeem_attempts_per_resource="10/5m").abuse
    resource = a_resource()
    for n in range(10):
        guard.reserve_redemption(f"203.0.113.{n}", resource)
    with pytest.raises(errors.TooManyRequests) as refused:
        guard.reserve_redemption("203.0.113.200", resource)
    assert refused.value.retry_after_seconds <= 300
    guard.reserve_redemption("203.0.113.200", a_resource())  # other resources are unaffected


def test_the_resource_pause_ends_with_its_short_window(make_services, clock):
    guard = make_services(limit_redeem_attempts_per_resource="2/5m").abuse
    resource = a_resource()
    guard.reserve_redemption(an_ip(), resource)
    guard.reserve_redemption(an_ip(), resource)
    with pytest.raises(errors.TooManyRequests) as refused:
        guard.reserve_redemption(an_ip(), resource)
    clock.advance(seconds=refused.value.retry_after_seconds)
    guard.reserve_redemption(an_ip(), resource)


def test_failed_redemptions_per_ip_are_capped(make_services):
    guard = make_services(limit_redeem_failures_per_ip="3/10m").abuse
    ip = an_ip() + secrets.token_hex(2)
    for _ in range(3):
        guard.reserve_redemption(ip, a_resource())
        guard.redemption_failed(ip)
    with pytest.raises(errors.TooManyRequests):
        guard.reserve_redemption(ip, a_resource())


def test_a_spent_global_budget_tightens_the_per_ip_allowance(make_services):
    guard = make_services(limit_redeem_failures_global="5/5m", limit_redeem_failures_per_ip="20/10m",
                          limit_redeem_failures_per_ip_tightened=1).abuse  # fmt: skip
    for n in range(5):
        guard.redemption_failed(f"203.0.113.{n}-{secrets.token_hex(2)}")
    ip = an_ip() + secrets.token_hex(2)
    guard.reserve_redemption(ip, a_resource())
    guard.redemption_failed(ip)
    with pytest.raises(errors.TooManyRequests):
        guard.reserve_redemption(ip, a_resource())


def _owner_with_resource(svc):
    return add_resource(svc, add_user(svc))


def test_issuing_stops_at_the_per_user_budget(make_services):
    svc = make_services(limit_issue_per_user="2/1h", max_active_codes_per_resource=5)
    resource = _owner_with_resource(svc)
    for _ in range(2):
        svc.codes.issue(resource.owner_id, resource.resource_id, client=an_ip())
    with pytest.raises(errors.TooManyRequests) as refused:
        svc.codes.issue(resource.owner_id, resource.resource_id, client=an_ip())
    assert refused.value.retry_after_seconds <= 3600
    assert len(svc.codes.list(resource.owner_id)) == 2


def test_a_resource_takes_at_most_the_configured_number_of_active_codes(make_services):
    svc = make_services(max_active_codes_per_resource=3)
    resource = _owner_with_resource(svc)
    for _ in range(3):
        svc.codes.issue(resource.owner_id, resource.resource_id)
    with pytest.raises(errors.Conflict) as refused:
        svc.codes.issue(resource.owner_id, resource.resource_id)
    assert refused.value.code == "too_many_active_codes"


def test_redeeming_through_the_service_stops_at_the_resource_attempt_budget(make_services):
    svc = make_services(limit_redeem_attempts_per_resource="3/5m")
    resource = _owner_with_resource(svc)
    issued = svc.codes.issue(resource.owner_id, resource.resource_id)
    wrong = "000000" if issued.code != "000000" else "111111"
    for n in range(3):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(resource.resource_id, wrong, client=f"ip:test{n}")
    with pytest.raises(errors.TooManyRequests):
        svc.codes.redeem(resource.resource_id, issued.code, client="ip:owner")
    # the stranger's guesses paused redemption, but the owner's code is not burned
    assert svc.codes.list(resource.owner_id)[0]["state"] == "active"
