"""Accounts against Azurite: registration, activation codes, login, password change,
introspection, admin operations. Time moves with the ManualClock, never by sleeping."""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr

from shared import errors
from shared.services import Services

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


def mailbox(svc: Services, address: str, kind: str | None = None, count: int = 1) -> list[dict]:
    """The address's mail once `count` of `kind` are there. A local host started by the
    end-to-end tests may be polling the same outbox, so its deliveries are waited for too."""
    deadline = time.monotonic() + 15
    while True:
        deliver_outbox(svc)
        mails = svc.dev_mailbox.messages(address)
        if len([m for m in mails if kind in (None, m["kind"])]) >= count or time.monotonic() > deadline:
            return mails
        time.sleep(0.2)


def latest_code(svc: Services, address: str, count: int = 1) -> str:
    codes = [m for m in mailbox(svc, address, "activation", count) if m["kind"] == "activation"]
    assert len(codes) >= count, "no activation mail"
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


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


# --- registration ------------------------------------------------------------------------


def test_a_case_variant_of_a_taken_address_is_refused_quietly(svc, clock):
    address = registered(svc)
    clock.advance(seconds=1)
    variant = address.upper().replace("EXAMPLE.COM", "Example.Com")
    svc.accounts.register(variant, NEWER)  # same answer as a new registration: no error
    user = svc.users.by_email_hash(svc_key_hash(variant))
    assert user.email == address  # the first registration's display form, one user
    assert user.user_id == svc.users.by_email_hash(svc_key_hash(address)).user_id
    kinds = [m["kind"] for m in mailbox(svc, address, "already_registered")]
    assert kinds == ["activation", "already_registered"]  # the owner is told, no second code


def svc_key_hash(address: str) -> str:
    from shared.accounts.emails import parse_email

    return parse_email(address).key_hash


def test_racing_registrations_of_one_address_create_one_user(svc):
    address = new_address()
    threads = [threading.Thread(target=svc.accounts.register, args=(address, STRONG)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = [m for m in mailbox(svc, address, "activation") if m["kind"] == "activation"]
    assert len(codes) == 1


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


def test_resend_is_capped_per_hour(svc, clock):
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


def test_cleanup_purges_activation_rows_only_once_their_window_is_over(svc, clock):
    from shared.expiry import bucket_of

    address = registered(svc)
    user = svc.users.by_email_hash(svc_key_hash(address))
    clock.advance(hours=1, minutes=6)
    rows = [
        row for row in svc.expiry.entries(bucket_of(clock.now() - timedelta(minutes=6))) if row["kind"] == "activation"
    ]
    mine = [row for row in rows if row["userId"] == user.user_id]
    assert mine
    assert svc.activations.purge(mine) == 1
    assert svc.activations.purge(mine) == 0  # idempotent
    with pytest.raises(errors.Gone):
        svc.accounts.activate(address, STRONG, "0000")


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


def test_introspection_counts_as_a_use_and_slides_the_idle_timeout(svc, clock):
    login = svc.accounts.login(active_user(svc), STRONG)
    clock.advance(minutes=20)
    assert svc.accounts.introspect(login.token)["active"] is True
    clock.advance(minutes=20)  # 40 min after login, 20 after the last use
    result = svc.accounts.introspect(login.token)
    assert result["active"] is True
    assert result["userId"] == login.session.user_id and result["role"] == "user"
    clock.advance(minutes=31)
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
    assert mailbox(svc, address, "password_changed")[-1]["kind"] == "password_changed"


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
    assert "sign_in_paused" in [m["kind"] for m in mailbox(svc, address, "sign_in_paused")]
