"""Accounts against Azurite: registration, activation codes, login, password change,
introspection, admin operations. Time moves with the ManualClock, never by sleeping."""

from __future__ import annotations

import re
import secrets
import threading
import time
from contextlib import suppress
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from azure.core.exceptions import ResourceNotFoundError
from pydantic import SecretStr

from shared import errors
from shared.services import Services

from .codes_support import fresh_cursor  # noqa: F401 - a fixture

STRONG = "violet-Harbor-engine-42"
NEWER = "amber-Canyon-whistle-77"


def new_address(prefix: str = "user") -> str:
    return f"{prefix}.{secrets.token_hex(4)}@example.com"


def deliver_outbox(svc: Services) -> None:
    """What the queue trigger does, for every message waiting in the outbox now."""
    queue = svc.storage.queue("mail-outbox")
    while batch := list(queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=30)):
        for message in batch:
            svc.mail.deliver(message.content)
            queue.delete_message(message)


def mailbox(svc: Services, address: str) -> list[dict]:
    """The address's mail, the outbox delivered first: nothing else consumes this Azurite's
    outbox (the end-to-end hosts have an Azurite of their own), so there is nothing to wait for."""
    deliver_outbox(svc)
    return svc.dev_mailbox.messages(address)


def latest_code(svc: Services, address: str, count: int = 1) -> str:
    """The code of the newest activation mail, the `count`th sent."""
    codes = [m for m in mailbox(svc, address) if m["kind"] == "activation"]
    assert len(codes) >= count, f"{len(codes)} activation mails, not {count}"
    return re.search(r"code is (\d+)\.", codes[-1]["text"]).group(1)


@pytest.fixture
def svc(make_services) -> Services:
    return make_services(mail_provider="devmailbox", bcrypt_cost=10, activation_resend_cooldown_seconds=30)


def registered(svc: Services, password: str = STRONG) -> str:
    address = new_address()
    svc.accounts.register(address, password)
    return address


def active_user(svc: Services, password: str = STRONG) -> str:
    address = registered(svc, password)
    svc.accounts.activate(address, password, latest_code(svc, address))
    return address


# The address's mail budget out of the way, for tests of other rules that send more mail.
GENEROUS_MAIL_BUDGET = {
    "limit_registration_mails_per_recipient": "1000/1h",
    "limit_registration_mails_per_recipient_daily": "1000/1d",
}


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# --- registration ------------------------------------------------------------------------


def test_a_case_variant_of_a_taken_address_is_refused_quietly(svc, clock):
    address = active_user(svc)
    clock.advance(seconds=1)
    variant = address.upper().replace("EXAMPLE.COM", "Example.Com")
    svc.accounts.register(variant, NEWER)  # same answer as a new registration: no error
    user = svc.users.by_email_hash(svc_key_hash(variant))
    assert user.email == address  # the first registration's display form, one user
    assert user.user_id == svc.users.by_email_hash(svc_key_hash(address)).user_id
    kinds = [m["kind"] for m in mailbox(svc, address)]
    assert kinds == ["activation", "already_registered"]  # the owner is told, no second code


def svc_key_hash(address: str) -> str:
    from shared.accounts.addresses import parse_email

    return parse_email(address).key_hash


def test_racing_registrations_of_one_address_leave_one_that_a_mailed_code_activates(svc):
    address = new_address()
    threads = [threading.Thread(target=svc.accounts.register, args=(address, STRONG)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    user = svc.users.by_email_hash(svc_key_hash(address))
    assert user.status == "pending" and svc.users.by_id(user.user_id) == user
    codes = [re.search(r"code is (\d+)\.", m["text"]).group(1) for m in mailbox(svc, address)]
    activated = []
    for code in codes:
        with suppress(errors.InvalidInput, errors.Conflict):
            activated.append(svc.accounts.activate(address, STRONG, code))
    assert [u.user_id for u in activated] == [user.user_id]


def test_a_weak_password_is_refused_with_reasons_and_nothing_is_stored(svc):
    address = new_address()
    with pytest.raises(errors.InvalidInput) as refused:
        svc.accounts.register(address, "password1")
    assert refused.value.code == "password_rejected"
    assert "too_common" in refused.value.details["problems"]
    assert refused.value.details["suggestions"]
    assert svc.users.by_email_hash(svc_key_hash(address)) is None


def test_a_pending_account_cannot_log_in(svc):
    address = registered(svc)
    with pytest.raises(errors.Forbidden) as refused:
        svc.accounts.login(address, STRONG)
    assert refused.value.code == "account_not_activated"


# --- activation ----------------------------------------------------------------------------


def test_the_mailed_code_activates_the_account(svc):
    address = registered(svc)
    user = svc.accounts.activate(address, STRONG, latest_code(svc, address))
    assert user.status == "active"
    assert svc.accounts.login(address, STRONG).token


def test_activation_needs_the_password_too(svc):
    address = registered(svc)
    with pytest.raises(errors.Unauthenticated):
        svc.accounts.activate(address, NEWER, latest_code(svc, address))


def test_a_code_past_60_seconds_is_refused_as_expired(svc, clock):
    address = registered(svc)
    code = latest_code(svc, address)
    clock.advance(seconds=61)
    with pytest.raises(errors.Gone) as refused:
        svc.accounts.activate(address, STRONG, code)
    assert refused.value.code == "code_expired"


def test_a_code_within_60_seconds_still_works(svc, clock):
    address = registered(svc)
    code = latest_code(svc, address)
    clock.advance(seconds=59)
    assert svc.accounts.activate(address, STRONG, code).status == "active"


def test_sixth_wrong_try_burns_the_code(svc):
    address = registered(svc)
    code = latest_code(svc, address)
    for attempt in range(5):
        with pytest.raises(errors.InvalidInput) as refused:
            svc.accounts.activate(address, STRONG, wrong(code))
        assert refused.value.code == "code_invalid"
        assert refused.value.details["attemptsLeft"] == 4 - attempt
    with pytest.raises(errors.Gone) as burned:
        svc.accounts.activate(address, STRONG, code)  # even the right code: it is burned
    assert burned.value.code == "code_burned"


def test_the_right_code_on_the_fifth_try_still_works(svc):
    address = registered(svc)
    code = latest_code(svc, address)
    for _ in range(4):
        with pytest.raises(errors.InvalidInput):
            svc.accounts.activate(address, STRONG, wrong(code))
    assert svc.accounts.activate(address, STRONG, code).status == "active"


def test_racing_wrong_tries_never_exceed_five(svc):
    address = registered(svc)
    code = latest_code(svc, address)
    outcomes: list[str] = []

    def guess() -> None:
        try:
            svc.accounts.activate(address, STRONG, wrong(code))
        except errors.DomainError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("code_invalid") == 5
    assert outcomes.count("code_burned") == 3


def test_resend_kills_the_old_code(svc, clock):
    address = registered(svc)
    old = latest_code(svc, address)
    clock.advance(seconds=31)  # past the cooldown
    svc.accounts.resend_activation(address, STRONG)
    new = latest_code(svc, address, count=2)
    if new != old:  # 1 in 10,000 they coincide
        with pytest.raises(errors.InvalidInput) as refused:
            svc.accounts.activate(address, STRONG, old)
        assert refused.value.code == "code_invalid"
    assert svc.accounts.activate(address, STRONG, new).status == "active"


def test_resend_waits_for_the_cooldown(svc, clock):
    address = registered(svc)
    clock.advance(seconds=10)
    with pytest.raises(errors.TooManyRequests) as refused:
        svc.accounts.resend_activation(address, STRONG)
    assert refused.value.code == "resend_cooldown"
    assert 1 <= refused.value.retry_after_seconds <= 21


def test_resend_is_capped_per_hour(make_services, clock):
    svc = make_services(**GENEROUS_MAIL_BUDGET)  # the account's own cap, not the address's mail budget
    address = registered(svc)  # send 1 of 5
    for _ in range(4):
        clock.advance(seconds=31)
        svc.accounts.resend_activation(address, STRONG)
    clock.advance(seconds=31)
    with pytest.raises(errors.TooManyRequests) as refused:
        svc.accounts.resend_activation(address, STRONG)
    assert refused.value.code == "resend_limit"
    clock.advance(hours=1)
    svc.accounts.resend_activation(address, STRONG)  # a new window


def test_an_active_account_gets_no_new_code(svc):
    address = active_user(svc)
    with pytest.raises(errors.Conflict):
        svc.accounts.resend_activation(address, STRONG)


def test_cleanup_purges_activation_rows_only_once_their_registration_is_over(svc, clock):
    from shared.housekeeping.expiry import bucket_of

    address = registered(svc)
    user = svc.users.by_email_hash(svc_key_hash(address))
    clock.advance(hours=1, minutes=6)  # the send window is over, the registration is not
    early = [row for row in svc.expiry.entries(bucket_of(clock.now() - timedelta(minutes=6)))]
    assert not [row for row in early if row.get("userId") == user.user_id]
    clock.advance(hours=23)
    rows = [
        row for row in svc.expiry.entries(bucket_of(clock.now() - timedelta(minutes=6))) if row["kind"] == "activation"
    ]
    mine = [row for row in rows if row["userId"] == user.user_id]
    assert mine
    assert svc.activations.purge(mine) == 1
    assert svc.activations.purge(mine) == 0  # idempotent
    assert not stored_row(svc, "activations", user.user_id, "code")


# --- login, sessions ---------------------------------------------------------------------------


def test_unknown_email_and_wrong_password_fail_alike(svc):
    address = active_user(svc)
    failures = []
    for email, password in ((new_address("nobody"), STRONG), (address, NEWER)):
        with pytest.raises(errors.Unauthenticated) as refused:
            svc.accounts.login(email, password)
        failures.append((type(refused.value), refused.value.code, refused.value.message, refused.value.details))
    assert failures[0] == failures[1]


def test_login_returns_an_opaque_url_safe_token_of_at_least_32_bytes(svc):
    login = svc.accounts.login(active_user(svc), STRONG)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", login.token)
    assert login.session.expires_at == login.session.created_at + timedelta(minutes=30)
    assert login.session.password_expired is False


def test_a_password_older_than_180_days_logs_in_as_expired(svc, clock):
    address = active_user(svc)
    clock.advance(days=181)
    login = svc.accounts.login(address, STRONG)
    assert login.session.password_expired is True
    assert svc.accounts.introspect(login.token)["passwordExpired"] is True


def test_introspection_does_not_keep_an_idle_session_alive(svc, clock):
    login = svc.accounts.login(active_user(svc), STRONG)
    for _ in range(2):  # a service polling the token every 10 minutes
        clock.advance(minutes=10)
        result = svc.accounts.introspect(login.token)
        assert result["active"] is True
        assert result["userId"] == login.session.user_id and result["role"] == "user"
        assert result["expiresAt"] == login.session.expires_at  # looked at, not used
    clock.advance(minutes=10, seconds=1)  # 30 min after the last use
    assert svc.accounts.introspect(login.token) == {"active": False}
    with pytest.raises(errors.Unauthenticated):
        svc.sessions.authenticate(login.token)


def test_the_sessions_own_use_slides_the_idle_timeout(svc, clock):
    login = svc.accounts.login(active_user(svc), STRONG)
    clock.advance(minutes=20)
    svc.accounts.profile(svc.sessions.authenticate(login.token))
    clock.advance(minutes=20)  # 40 min after login, 20 after the last use
    assert svc.accounts.introspect(login.token)["active"] is True
    clock.advance(minutes=11)
    assert svc.accounts.introspect(login.token) == {"active": False}


def test_logout_ends_the_session(svc):
    login = svc.accounts.login(active_user(svc), STRONG)
    svc.accounts.logout(svc.sessions.authenticate(login.token))
    assert svc.accounts.introspect(login.token) == {"active": False}


def test_profile_shows_email_role_activation_and_password_age(svc, clock):
    address = active_user(svc)
    clock.advance(days=3)
    login = svc.accounts.login(address, STRONG)
    profile = svc.accounts.profile(svc.sessions.authenticate(login.token))
    assert profile["email"] == address and profile["role"] == "user" and profile["activated"] is True
    assert profile["passwordAgeDays"] == 3


# --- password change -------------------------------------------------------------------------


def test_a_password_change_revokes_every_session(svc, clock):
    address = active_user(svc)
    clock.advance(seconds=1)  # the notice comes after the activation mail
    first, second = svc.accounts.login(address, STRONG), svc.accounts.login(address, STRONG)
    ended = svc.accounts.change_password(svc.sessions.authenticate(first.token), STRONG, NEWER)
    assert ended == 2
    for login in (first, second):
        with pytest.raises(errors.Unauthenticated):
            svc.sessions.authenticate(login.token)
    with pytest.raises(errors.Unauthenticated):
        svc.accounts.login(address, STRONG)
    assert svc.accounts.login(address, NEWER).token
    assert mailbox(svc, address)[-1]["kind"] == "password_changed"


def test_a_password_change_needs_the_old_password_and_a_new_one(svc):
    address = active_user(svc)
    session = svc.sessions.authenticate(svc.accounts.login(address, STRONG).token)
    with pytest.raises(errors.Forbidden) as wrong_old:
        svc.accounts.change_password(session, NEWER, NEWER)
    assert wrong_old.value.code == "wrong_password"
    with pytest.raises(errors.InvalidInput) as same:
        svc.accounts.change_password(session, STRONG, STRONG)
    assert same.value.code == "password_reused"
    with pytest.raises(errors.InvalidInput) as weak:
        svc.accounts.change_password(session, STRONG, "password1")
    assert weak.value.code == "password_rejected"
    assert svc.sessions.authenticate(svc.accounts.login(address, STRONG).token)  # nothing changed


# --- admin ---------------------------------------------------------------------------------------


def test_the_first_admin_comes_from_settings_once(make_services):
    address, password = new_address("admin"), "Admin-" + secrets.token_urlsafe(12)
    settings = {"initial_admin_email": address, "initial_admin_password": SecretStr(password), "bcrypt_cost": 10}
    first = make_services(**settings)
    login = first.accounts.login(address, password)
    assert login.session.role == "admin"
    again = make_services(**settings).accounts  # another process: idempotent
    assert again.users.by_email_hash(svc_key_hash(address)).user_id == login.session.user_id


def test_registering_the_first_admins_address_before_it_signed_in_takes_nothing(make_services):
    address, password = new_address("admin"), "Admin-" + secrets.token_urlsafe(12)
    settings = {"initial_admin_email": address, "initial_admin_password": SecretStr(password), "bcrypt_cost": 10}
    make_services(**settings).accounts.register(address, STRONG)  # a stranger, first in this process
    with pytest.raises(errors.Unauthenticated):
        make_services(**settings).accounts.login(address, STRONG)
    assert make_services(**settings).accounts.login(address, password).session.role == "admin"


def test_locking_ends_sessions_and_refuses_login_until_unlocked(svc):
    address = active_user(svc)
    login = svc.accounts.login(address, STRONG)
    user_id = login.session.user_id
    svc.accounts.lock(user_id, actor="admin-id")
    assert svc.accounts.introspect(login.token) == {"active": False}
    with pytest.raises(errors.Forbidden) as locked:
        svc.accounts.login(address, STRONG)
    assert locked.value.code == "account_locked"
    svc.accounts.unlock(user_id, actor="admin-id")
    assert svc.accounts.login(address, STRONG).token


def test_a_role_change_ends_sessions_so_the_new_role_applies(svc):
    address = active_user(svc)
    login = svc.accounts.login(address, STRONG)
    svc.accounts.set_role(login.session.user_id, "admin", actor="admin-id")
    assert svc.accounts.introspect(login.token) == {"active": False}
    assert svc.accounts.login(address, STRONG).session.role == "admin"


# --- audit -----------------------------------------------------------------------------------------


def test_every_event_is_audited_without_secrets(svc, clock):
    start = clock.now()
    address = registered(svc)
    code = latest_code(svc, address)
    with pytest.raises(errors.InvalidInput):
        svc.accounts.activate(address, STRONG, wrong(code))
    svc.accounts.activate(address, STRONG, code)
    with pytest.raises(errors.Unauthenticated):
        svc.accounts.login(address, NEWER)
    login = svc.accounts.login(address, STRONG)
    svc.accounts.change_password(svc.sessions.authenticate(login.token), STRONG, NEWER)
    user_id = login.session.user_id
    events = svc.audit.read(start, clock.now() + timedelta(seconds=1), actor=user_id)
    seen = [(e.type, e.outcome, e.reason) for e in events]
    for expected in [
        ("register", "ok", None),
        ("activate", "fail", "wrong_code"),
        ("activate", "ok", None),
        ("login", "fail", "wrong_password"),
        ("login", "ok", None),
        ("password_change", "ok", None),
    ]:
        assert expected in seen
    dump = " ".join(e.model_dump_json() for e in events)
    for secret in (STRONG, NEWER, code, login.token):
        assert secret not in dump


# --- abuse limits wired into the account flows -----------------------------------------------------


def an_ip() -> str:
    return f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def test_one_source_guessing_a_password_is_stopped_while_the_owner_still_signs_in(svc):
    address, attacker = active_user(svc), an_ip()
    for _ in range(5):
        with pytest.raises(errors.Unauthenticated):
            svc.accounts.login(address, NEWER, client_ip=attacker)
    with pytest.raises(errors.TooManyRequests):
        svc.accounts.login(address, STRONG, client_ip=attacker)
    assert svc.accounts.login(address, STRONG, client_ip=an_ip()).token


def test_guessing_from_many_sources_pauses_sign_in_and_tells_the_owner(svc):
    address = active_user(svc)
    for _ in range(10):
        with pytest.raises(errors.Unauthenticated):
            svc.accounts.login(address, NEWER, client_ip=an_ip())
    with pytest.raises(errors.TooManyRequests):
        svc.accounts.login(address, STRONG, client_ip=an_ip())
    assert "sign_in_paused" in [m["kind"] for m in mailbox(svc, address)]


# --- pending registrations: their life, their replacement, their guesses ---------------------------


def activation_mails(svc: Services, address: str) -> list[dict]:
    """The activation mails of an address (the outbox is delivered whole first)."""
    return [m for m in mailbox(svc, address) if m["kind"] == "activation"]


def stored_row(svc: Services, table: str, partition: str, row: str) -> bool:
    try:
        svc.storage.table(table).get_entity(partition, row)
    except ResourceNotFoundError:
        return False
    return True


@pytest.mark.usefixtures("fresh_cursor")
def test_a_pending_registration_expires_after_24_hours_and_cleanup_frees_the_address(svc, clock):
    address = registered(svc)
    code = latest_code(svc, address)
    squatter = svc.users.by_email_hash(svc_key_hash(address))
    clock.advance(hours=24)
    with pytest.raises(errors.Gone) as expired:
        svc.accounts.activate(address, STRONG, code)
    assert expired.value.code == "registration_expired"
    with pytest.raises(errors.Gone):
        svc.accounts.resend_activation(address, STRONG)

    clock.advance(minutes=10)
    run = svc.cleanup.run()
    assert run.status == "ok", run.errors
    assert run.counts.get("registration", 0) >= 1
    assert svc.users.by_email_hash(svc_key_hash(address)) is None
    assert not stored_row(svc, "users", f"id:{squatter.user_id}", "account")
    assert not stored_row(svc, "activations", squatter.user_id, "code")

    svc.accounts.register(address, NEWER)  # the address is free again
    assert svc.accounts.activate(address, NEWER, latest_code(svc, address, count=2)).status == "active"


def test_registering_a_pending_address_again_replaces_it_and_whoever_reads_the_mailbox_wins(svc, clock):
    address = registered(svc, STRONG)  # a squatter, who never sees the mail
    squatter = svc.users.by_email_hash(svc_key_hash(address))
    clock.advance(seconds=1)
    svc.accounts.register(address, NEWER)  # the owner
    code = latest_code(svc, address, count=2)
    with pytest.raises(errors.Unauthenticated):
        svc.accounts.resend_activation(address, STRONG)  # the squatter's password is dead
    with pytest.raises(errors.Unauthenticated):
        svc.accounts.activate(address, STRONG, code)
    user = svc.accounts.activate(address, NEWER, code)
    assert user.status == "active" and user.user_id != squatter.user_id
    assert svc.users.by_id(squatter.user_id) is None
    assert svc.accounts.login(address, NEWER).token


@pytest.mark.usefixtures("fresh_cursor")
def test_cleanup_removes_what_is_left_of_a_replaced_registration(svc, clock):
    address = registered(svc)
    squatter = svc.users.by_email_hash(svc_key_hash(address))
    clock.advance(seconds=1)
    svc.accounts.register(address, NEWER)
    svc.accounts.activate(address, NEWER, latest_code(svc, address, count=2))
    clock.advance(hours=24, minutes=10)
    assert svc.cleanup.run().status == "ok"
    assert not stored_row(svc, "users", f"id:{squatter.user_id}", "account")
    assert not stored_row(svc, "activations", squatter.user_id, "code")
    assert svc.accounts.login(address, NEWER).token  # the activated registration stays


def test_activation_guesses_are_capped_over_the_registrations_whole_life(svc, clock):
    address = registered(svc)
    code = latest_code(svc, address)
    for _ in range(5):
        with pytest.raises(errors.InvalidInput):
            svc.accounts.activate(address, STRONG, wrong(code))
    clock.advance(seconds=31)
    svc.accounts.resend_activation(address, STRONG)  # a fresh code, but no fresh guesses
    code = latest_code(svc, address, count=2)
    for attempt in range(4):
        with pytest.raises(errors.InvalidInput) as refused:
            svc.accounts.activate(address, STRONG, wrong(code))
        assert refused.value.details["attemptsLeft"] == 4 - attempt
    with pytest.raises(errors.Gone) as ended:
        svc.accounts.activate(address, STRONG, wrong(code))  # the tenth wrong guess, the code's fifth
    assert ended.value.code == "registration_ended"
    with pytest.raises(errors.Unauthenticated):
        svc.accounts.activate(address, STRONG, code)  # the registration is gone, right code or not
    assert svc.users.by_email_hash(svc_key_hash(address)) is None


# --- the mail budget of registration ---------------------------------------------------------------


def test_past_three_activation_mails_an_hour_registration_answers_the_same_and_changes_nothing(svc, clock):
    address = new_address()
    for _ in range(4):
        assert svc.accounts.register(address, STRONG) is None  # no error, no hint
        clock.advance(minutes=1)
    mails = activation_mails(svc, address)
    assert len(mails) == 3
    third = re.search(r"code is (\d+)\.", mails[-1]["text"]).group(1)
    clock.advance(seconds=-90)  # within the third code's minute: the fourth did not replace it
    assert svc.accounts.activate(address, STRONG, third).status == "active"


def test_past_ten_activation_mails_a_day_no_mail_goes_until_the_next_day(svc, clock):
    address = new_address()
    for _ in range(4):  # 12:00 to 15:59 of one day: 3 an hour would be 12
        for _ in range(3):
            svc.accounts.register(address, STRONG)
            clock.advance(minutes=1)
        clock.advance(minutes=57)
    assert len(activation_mails(svc, address)) == 10
    clock.advance(hours=12)  # the next day
    svc.accounts.register(address, STRONG)
    assert len(activation_mails(svc, address)) == 11


def test_past_the_global_mail_budget_registration_sends_and_stores_nothing(make_services, clock):
    svc = make_services(mail_provider="devmailbox", bcrypt_cost=10, limit_registration_mails_global="2/1h")
    clock.advance(hours=24 * 365 + secrets.randbelow(100_000))  # an hour no other test counts in
    addresses = [new_address() for _ in range(3)]
    for address in addresses:
        svc.accounts.register(address, STRONG)
    assert len(activation_mails(svc, addresses[1])) == 1
    assert svc.dev_mailbox.messages(addresses[2]) == []
    assert svc.users.by_email_hash(svc_key_hash(addresses[2])) is None


def test_a_resend_past_the_mail_budget_is_refused_and_the_live_code_still_works(svc, clock):
    address = registered(svc)  # mail 1 of 3 this hour
    for _ in range(2):
        clock.advance(seconds=31)
        svc.accounts.resend_activation(address, STRONG)
    code = latest_code(svc, address, count=3)
    clock.advance(seconds=31)
    with pytest.raises(errors.TooManyRequests) as refused:
        svc.accounts.resend_activation(address, STRONG)
    assert refused.value.code == "mail_budget"
    assert svc.accounts.activate(address, STRONG, code).status == "active"


def test_a_resend_refused_for_its_cooldown_spends_none_of_the_mail_budget(svc, clock):
    address = registered(svc)
    for _ in range(3):
        with pytest.raises(errors.TooManyRequests) as cooling:
            svc.accounts.resend_activation(address, STRONG)
        assert cooling.value.code == "resend_cooldown"
    for _ in range(2):
        clock.advance(seconds=31)
        svc.accounts.resend_activation(address, STRONG)
    assert len(activation_mails(svc, address)) == 3


# --- password change: attempts, and sign-ins racing it ---------------------------------------------


def test_password_change_attempts_past_five_an_hour_are_refused_and_end_the_session(svc, clock):
    start = clock.now()
    address = active_user(svc)
    other = svc.accounts.login(address, STRONG)
    login = svc.accounts.login(address, STRONG)
    session = svc.sessions.authenticate(login.token)
    for _ in range(5):
        with pytest.raises(errors.Forbidden):
            svc.accounts.change_password(session, f"guess-{secrets.token_hex(4)}", NEWER)
    with pytest.raises(errors.TooManyRequests) as refused:
        svc.accounts.change_password(session, STRONG, NEWER)  # even the right password
    assert refused.value.code == "password_change_limit"
    assert 1 <= refused.value.retry_after_seconds <= 3600
    with pytest.raises(errors.Unauthenticated):
        svc.sessions.authenticate(login.token)  # the session that tried has ended
    assert svc.sessions.authenticate(other.token)  # the owner's other sessions have not
    assert svc.accounts.login(address, STRONG).token  # and the password is unchanged
    events = svc.audit.read(start, clock.now() + timedelta(seconds=1), actor=login.session.user_id)
    assert ("password_change", "fail", "too_many_attempts") in [(e.type, e.outcome, e.reason) for e in events]

    clock.advance(hours=1)  # the next window
    fresh = svc.sessions.authenticate(svc.accounts.login(address, STRONG).token)
    assert svc.accounts.change_password(fresh, STRONG, NEWER) >= 1


def test_a_sign_in_racing_a_password_change_does_not_outlive_it(svc):
    address = active_user(svc)
    session = svc.sessions.authenticate(svc.accounts.login(address, STRONG).token)
    tokens: list[str] = []
    attempts = [0]
    stop = threading.Event()

    def sign_in() -> None:
        while not stop.is_set():
            with suppress(errors.Unauthenticated):
                tokens.append(svc.accounts.login(address, STRONG).token)
            attempts[0] += 1

    threads = [threading.Thread(target=sign_in) for _ in range(4)]
    for thread in threads:
        thread.start()
    while attempts[0] < 8:
        time.sleep(0.01)
    svc.accounts.change_password(session, STRONG, NEWER)
    after = attempts[0]
    while attempts[0] < after + 8:
        time.sleep(0.01)
    stop.set()
    for thread in threads:
        thread.join()
    assert tokens
    survivors = [token for token in tokens if svc.accounts.introspect(token)["active"]]
    assert survivors == []


# --- registration timing -------------------------------------------------------------------------


class StorageCalls:
    """The tables, queues and containers a use case calls, in order, while `recording`."""

    def __init__(self):
        self.recording = False
        self.seen: list[str] = []

    def __call__(self, pipeline_request) -> None:
        if self.recording:
            path = urlsplit(pipeline_request.http_request.url).path.split("/")
            self.seen.append(path[2].split("(")[0])  # /<account>/<table, queue or container>...


def test_registration_makes_the_same_storage_calls_whether_the_address_is_new_pending_or_taken(settings, clock):
    calls = StorageCalls()
    svc = Services(settings.model_copy(update={"mail_provider": "devmailbox"}), clock=clock, storage_request_hook=calls)
    taken = active_user(svc)  # also warms up what is made once per process (the audit blob)
    pending = registered(svc)

    def recorded(address: str) -> list[str]:
        calls.seen, calls.recording = [], True
        svc.accounts.register(address, NEWER)
        calls.recording = False
        clock.advance(seconds=1)
        return calls.seen

    new = recorded(new_address())
    assert recorded(pending) == new
    assert recorded(taken) == new  # the owner is told
    assert recorded(taken) == new  # and again: the mail budget, not a skipped call, bounds the notices
    assert new.count("mail-outbox") == 1
