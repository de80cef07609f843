"""Account use cases: register, activate, resend, login, logout, profile, password
change, token introspection, and the admin operations (lock, unlock, role).

Rules that hold across them:
- Whether an account exists never shows in a response: registering a taken address
  answers like a new registration (and does the same bcrypt and storage work), and an
  unknown email fails login with the same status, body and bcrypt work as a wrong password.
- A pending registration lives PENDING_REGISTRATION_HOURS, gets a bounded number of
  activation guesses over its whole life, and is replaced by a new registration of its
  address; registration and resend mail only within the mail budget.
- Password-change attempts are counted per account before the old password is checked;
  a sign-in racing a password change never outlives it; introspection does not slide.
- Every state change writes one audit event; none holds a password, code or token.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, wait
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from shared import errors
from shared.accounts import notices, passwords
from shared.accounts.activation import ActivationStore, Check
from shared.accounts.addresses import EmailAddress, InvalidEmail, parse_email
from shared.accounts.breaches import BreachedPasswords
from shared.accounts.passwords import PasswordHasher, Verdict
from shared.accounts.registrations import PendingRegistrations
from shared.accounts.unlock import UnlockCodes
from shared.accounts.users import User, UserStore
from shared.audit import AuditEventType, AuditLog
from shared.auth.authorization import Authorizer, Role
from shared.auth.devices import DeviceStore
from shared.auth.sessions import Session, SessionStore
from shared.clock import Clock
from shared.limits.password_attempts import PasswordChangeAttempts
from shared.mail.budget import MailBudget
from shared.mail.outbox import Outbox
from shared.optimistic import LostRace, retry_lost_races

if TYPE_CHECKING:
    from shared.limits.guard import Attempt

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "The email or password is not right."
UPDATE_RETRIES = 3


class AccountLimits(Protocol):
    """Abuse limits around accounts (shared.limits.guard.AbuseGuard): each raises
    TooManyRequests when its budget is spent. `source` is the client's source."""

    def registration(self, source: str) -> None: ...
    def activation(self, source: str) -> None: ...
    def resend(self, source: str) -> None: ...
    def unlock_request(self, source: str) -> None: ...
    def unlock_mail_allowed(self, account: str) -> bool: ...
    def pause_notice_due(self, account: str) -> bool: ...
    def password_attempt(
        self, source: str, account: str, *, device: str | None = None, unlock: bool = False
    ) -> Attempt: ...


@dataclass(frozen=True)
class InitialAdmin:
    email: str
    password: str


@dataclass(frozen=True)
class Login:
    token: str  # shown once
    session: Session
    device_token: str  # the client sends it back (X-Device-Token, or a cookie) to sign in as a known device

    def as_dict(self) -> dict:
        return {
            "token": self.token,
            "deviceToken": self.device_token,
            "expiresAt": self.session.expires_at,
            "absoluteExpiresAt": self.session.absolute_expires_at,
            "passwordExpired": self.session.password_expired,
            "userId": self.session.user_id,
            "role": self.session.role,
        }


CODE_ERRORS = {
    "no_code": lambda check: errors.Gone("There is no live code; ask for a new one.", code="code_expired"),
    "expired": lambda check: errors.Gone("The code has expired; ask for a new one.", code="code_expired"),
    "burned": lambda check: errors.Gone("Too many wrong tries; ask for a new code.", code="code_burned"),
    "wrong_code": lambda check: errors.InvalidInput(
        "The code is not right.", code="code_invalid", details={"attemptsLeft": check.attempts_left}
    ),
}


class AccountService:
    def __init__(
        self,
        users: UserStore,
        activations: ActivationStore,
        sessions: SessionStore,
        authorizer: Authorizer,
        hasher: PasswordHasher,
        outbox: Outbox,
        audit: AuditLog,
        clock: Clock,
        *,
        password_max_age: timedelta,
        activation_ttl: timedelta,
        pool: Executor,
        initial_admin: InitialAdmin | None = None,
        abuse: AccountLimits,
        devices: DeviceStore,
        unlock_codes: UnlockCodes,
        actor_for_ip: Callable[[str], str] = lambda ip: "ip:unknown",
        registrations: PendingRegistrations,
        mail_budget: MailBudget,
        password_attempts: PasswordChangeAttempts,
        breaches: BreachedPasswords | None = None,
    ):
        self.users = users
        self._pool = pool  # for leaf storage calls only
        self._breaches = breaches  # None: the breach check is off (PWNED_PASSWORDS_ENABLED)
        self._activations = activations
        self._sessions = sessions
        self._authorizer = authorizer
        self._hasher = hasher
        self._outbox = outbox
        self._audit = audit
        self._clock = clock
        self._password_max_age = password_max_age
        self._activation_ttl = activation_ttl
        self._initial_admin = initial_admin
        self._actor_for_ip = actor_for_ip
        self._abuse = abuse
        self._devices = devices
        self._unlock_codes = unlock_codes
        self._registrations = registrations
        self._mail_budget = mail_budget
        self._password_attempts = password_attempts
        self._bootstrap_lock = threading.Lock()
        self._bootstrapped = initial_admin is None

    # --- registration and activation ------------------------------------------------

    def register(
        self, email: str, password: str, *, client_ip: str | None = None, request_id: str | None = None
    ) -> None:
        """Start a pending registration and mail it a code. The answer never tells whether
        the address is free, pending or taken, and neither does the work: every case
        reads the account row, takes a slot of the mail budget, enters a registration in
        the expiry index, writes its pointer, writes the account row once, issues a code
        and puts one mail in the outbox. A free address gets a new registration; a
        pending one is registered anew (the old password and code die: whoever reads the
        mailbox wins); a taken one gets a registration that never becomes the account
        (cleanup removes its rows) and its owner a notice. Past the mail budget nothing
        is stored and no mail goes; the answer is still the same."""
        self.ensure_initial_admin()  # before anyone can register the first admin's address
        self._count("registration", client_ip)
        address = self._address(email)
        actor = self._guest(client_ip)
        self._enforce_policy(
            password, address.display, event=AuditEventType.REGISTER, actor=actor, request_id=request_id
        )
        now = self._clock.now()
        user = User.new(address, role=Role.USER, status="pending", password_hash=self._hasher.hash(password), now=now)
        existing = self.users.by_email_hash(address.key_hash)
        owner_id = existing.user_id if existing else None
        if not self._mail_budget.allows(address.key):
            self._audit.record(
                AuditEventType.REGISTER,
                "fail",
                reason="mail_budget",
                actor=actor,
                user_id=owner_id,
                request_id=request_id,
            )
            return
        ends = self._registrations.track(user)  # before any row: cleanup always finds them
        self.users.add_pointer(user)
        if existing is None or existing.status == "pending":
            stored = self.users.insert_account(user) if existing is None else self.users.replace_account(existing, user)
            issued = self._activations.issue(user.user_id, keep_until=ends)
            if not stored:  # a racing registration of the address came first; its code went
                self._audit.record(
                    AuditEventType.REGISTER, "fail", reason="registered_meanwhile", actor=actor, request_id=request_id
                )
                return
            self._mail(user.email, notices.activation_code(issued.code, int(self._activation_ttl.total_seconds())))
            details = {"replacedUserId": owner_id} if owner_id else {}
            self._audit.record(
                AuditEventType.REGISTER, "ok", actor=actor, user_id=user.user_id, request_id=request_id, details=details
            )
            return
        self._notify_owner(existing, now, shadow=user, ends=ends)
        self._audit.record(
            AuditEventType.REGISTER, "fail", reason="email_taken", actor=actor, user_id=owner_id, request_id=request_id
        )

    def password_strength(self, password: str, email: str | None = None) -> Verdict:
        return passwords.check(password, email)

    def activate(
        self, email: str, password: str, code: str, *, client_ip: str | None = None, request_id: str | None = None
    ) -> User:
        self._count("activation", client_ip)
        user = self._authenticate(
            email, password, event=AuditEventType.ACTIVATE, client_ip=client_ip, request_id=request_id
        )
        self._require_live_registration(user, event=AuditEventType.ACTIVATE, request_id=request_id)
        check = self._activations.check(user.user_id, code)
        if check.outcome == "exhausted":
            self._registrations.end(user)
            self._audit.record(
                AuditEventType.ACTIVATE, "fail", reason="attempts_exhausted", actor=user.user_id, request_id=request_id
            )
            raise errors.Gone(
                "Too many wrong codes: this registration has ended. Register again.", code="registration_ended"
            )
        if check.outcome != "ok":
            self._audit.record(
                AuditEventType.ACTIVATE, "fail", reason=check.outcome, actor=user.user_id, request_id=request_id
            )
            raise CODE_ERRORS[check.outcome](check)
        now = self._clock.now()
        user = self._update(user, status="active", activated_at=now)
        self._audit.record(AuditEventType.ACTIVATE, "ok", actor=user.user_id, request_id=request_id)
        return user

    def resend_activation(
        self, email: str, password: str, *, client_ip: str | None = None, request_id: str | None = None
    ) -> datetime:
        """A new code (the old one dies); returns when it expires. It draws on the mail
        budget of the address once the code may go, before the old one dies."""
        self._count("resend", client_ip)
        user = self._authenticate(
            email, password, event=AuditEventType.ACTIVATION_RESEND, client_ip=client_ip, request_id=request_id
        )
        self._require_live_registration(user, event=AuditEventType.ACTIVATION_RESEND, request_id=request_id)
        try:
            expires_at = self._send_code(user)
        except errors.TooManyRequests as error:
            self._audit.record(
                AuditEventType.ACTIVATION_RESEND, "fail", reason=error.code, actor=user.user_id, request_id=request_id
            )
            raise
        self._audit.record(AuditEventType.ACTIVATION_RESEND, "ok", actor=user.user_id, request_id=request_id)
        return expires_at

    # --- sessions ---------------------------------------------------------------------

    def login(
        self,
        email: str,
        password: str,
        *,
        client_ip: str | None = None,
        device_token: str | None = None,
        unlock_code: str | None = None,
        request_id: str | None = None,
    ) -> Login:
        """Sign in. A known device (its token) meets only its own failure budget; a new
        device the source's and the account's, or, with an unlock code, only the
        source's. Returns the session and the device token to keep."""
        self.ensure_initial_admin()
        user, device, releasing = self._check_credentials(
            email, password, event=AuditEventType.LOGIN, client_ip=client_ip, request_id=request_id,
            device_token=device_token, unlock_code=unlock_code,
        )  # fmt: skip
        try:
            if user.status != "active":
                reason = "not_activated" if user.status == "pending" else "locked"
                self._audit.record(
                    AuditEventType.LOGIN, "fail", reason=reason, actor=user.user_id, request_id=request_id
                )
                if user.status == "pending":
                    raise errors.Forbidden("Activate the account first.", code="account_not_activated")
                raise errors.Forbidden("The account is locked.", code="account_locked")
            expired = self._password_expired(user)
            known = device is not None
            # the device's row and the session's are independent: trust runs beside create
            trusted = self._pool.submit(self._devices.trust, user, device_token if known else None)
            token, session = self._sessions.create(user.user_id, user.role, password_expired=expired)
            device_token = trusted.result()
            self._end_if_outdated(user, session, request_id=request_id)
            self._audit.record(
                AuditEventType.LOGIN, "ok", actor=user.user_id, request_id=request_id,
                details={"passwordExpired": expired, "knownDevice": known, "unlockCode": unlock_code is not None},
            )  # fmt: skip
            return Login(token, session, device_token)
        finally:
            # the slots go back beside the rest of the sign-in; one not given back only
            # counts this sign-in as a failure, the safe side
            wait(releasing)

    def request_unlock(self, email: str, *, client_ip: str | None = None, request_id: str | None = None) -> None:
        """Mail an unlock code. The same answer, and the same storage work, whether or not
        the address has an account; past the account's mail budget no mail goes."""
        self._count("unlock_request", client_ip)
        account = self._account_key(email)
        code = self._unlock_codes.issue(account)
        allowed = self._abuse.unlock_mail_allowed(account)  # counted for unknown addresses too: same cost
        user = self.users.by_email_hash(EmailAddress(email, account).key_hash)
        if user is None or not allowed:
            self._audit.record(AuditEventType.UNLOCK_REQUEST, "fail", reason="not_sent", actor=self._guest(client_ip),
                               user_id=user.user_id if user else None, request_id=request_id)  # fmt: skip
            return
        self._mail(user.email, notices.unlock_code(code, int(self._unlock_codes.ttl.total_seconds())))
        self._audit.record(AuditEventType.UNLOCK_REQUEST, "ok", actor=self._guest(client_ip), user_id=user.user_id,
                           request_id=request_id)  # fmt: skip

    def logout(self, session: Session, *, request_id: str | None = None) -> None:
        self._sessions.revoke(session)
        self._audit.record(AuditEventType.LOGOUT, "ok", actor=session.user_id, request_id=request_id)

    def introspect(self, token: str) -> dict:
        """For other services: is the token a live session? A look, not a use: it does not
        slide the idle timeout, so a service polling a token keeps nothing alive."""
        try:
            session = self._sessions.authenticate(token, slide=False)
        except errors.Unauthenticated:
            return {"active": False}
        return {
            "active": True,
            "userId": session.user_id,
            "role": session.role,
            "expiresAt": session.expires_at,
            "passwordExpired": session.password_expired,
        }

    # --- the signed-in user ---------------------------------------------------------

    def profile(self, session: Session) -> dict:
        user = self._authorizer.account(session)
        now = self._clock.now()
        age = now - user.password_changed_at
        return {
            "userId": user.user_id,
            "email": user.email,
            "role": user.role,
            "status": user.status,
            "activated": user.activated_at is not None,
            "activatedAt": user.activated_at,
            "createdAt": user.created_at,
            "passwordChangedAt": user.password_changed_at,
            "passwordAgeDays": age.days,
            "passwordExpiresAt": user.password_changed_at + self._password_max_age,
            "passwordExpired": self._password_expired(user),
            "displayName": user.display_name,
        }

    def change_password(self, session: Session, old: str, new: str, *, request_id: str | None = None) -> int:
        """Check the old password, apply the policy to the new one, end every session of
        the user and mail a notice. Returns how many sessions ended.

        Every attempt takes a slot of the account's budget before the old password is
        checked (LIMIT_PASSWORD_CHANGE_ATTEMPTS_PER_ACCOUNT), so a stolen token cannot
        guess the password without end: past it the answer is 429 and the session that
        tried ends. The user is updated before the sessions are revoked, which is what
        lets a racing sign-in see the change (`_end_if_outdated`)."""
        user = self._authorizer.account(session)
        try:
            self._password_attempts.reserve(user.user_id)
        except errors.TooManyRequests as spent:
            self._sessions.revoke(session)
            self._audit.record(
                AuditEventType.PASSWORD_CHANGE, "fail", reason="too_many_attempts", actor=user.user_id,
                request_id=request_id, details={"sessionEnded": True},
            )  # fmt: skip
            raise errors.TooManyRequests(
                spent.retry_after_seconds,
                "Too many attempts to change the password; this session has ended.",
                code="password_change_limit",
            ) from None
        if not self._hasher.verify(old, user.password_hash):
            self._audit.record(
                AuditEventType.PASSWORD_CHANGE,
                "fail",
                reason="wrong_password",
                actor=user.user_id,
                request_id=request_id,
            )
            raise errors.Forbidden("The current password is not right.", code="wrong_password")
        if hmac.compare_digest(passwords.normalise(old).encode(), passwords.normalise(new).encode()):
            self._audit.record(
                AuditEventType.PASSWORD_CHANGE,
                "fail",
                reason="password_reused",
                actor=user.user_id,
                request_id=request_id,
            )
            raise errors.InvalidInput("The new password must differ from the old one.", code="password_reused")
        self._enforce_policy(
            new, user.email, event=AuditEventType.PASSWORD_CHANGE, actor=user.user_id, request_id=request_id
        )
        self._update(user, password_hash=self._hasher.hash(new), password_changed_at=self._clock.now())
        revoked = self._sessions.revoke_all(user.user_id)
        self._mail(user.email, notices.password_changed())
        self._audit.record(
            AuditEventType.PASSWORD_CHANGE,
            "ok",
            actor=user.user_id,
            request_id=request_id,
            details={"sessionsEnded": revoked},
        )
        return revoked

    def set_display_name(self, session: Session, name: str | None, *, request_id: str | None = None) -> dict:
        """Set (or, with None, clear) the name guests see as the sharer of this user's files;
        without one they see no name at all. Returns the profile."""
        user = self._update(self._authorizer.account(session), display_name=name)
        self._audit.record(AuditEventType.DISPLAY_NAME, "ok", actor=user.user_id, request_id=request_id)
        return self.profile(session)

    # --- admin ------------------------------------------------------------------------

    def find_user(self, email_or_id: str) -> User | None:
        """An account by email address or user id (the admin console's look-up): point reads."""
        value = (email_or_id or "").strip()
        if "@" in value:
            try:
                return self.users.by_email_hash(parse_email(value).key_hash)
            except InvalidEmail:
                return None
        return self.users.by_id(value) if value else None

    def lock(self, user_id: str, *, actor: str, request_id: str | None = None) -> User:
        """Lock an account and end its sessions."""
        user = self._admin_target(user_id, actor)
        user = self._update(user, status="locked")
        ended = self._sessions.revoke_all(user_id)
        self._audit.record(AuditEventType.LOCK, "ok", actor=actor, user_id=user_id, request_id=request_id,
                           details={"sessionsEnded": ended})  # fmt: skip
        return user

    def unlock(self, user_id: str, *, actor: str, request_id: str | None = None) -> User:
        user = self._admin_target(user_id, actor)
        status = "active" if user.activated_at is not None else "pending"
        user = self._update(user, status=status)
        self._audit.record(AuditEventType.UNLOCK, "ok", actor=actor, user_id=user_id, request_id=request_id)
        return user

    def set_role(self, user_id: str, role: Role, *, actor: str, request_id: str | None = None) -> User:
        """Change a role; the user's sessions end so the new role takes effect at once."""
        user = self._admin_target(user_id, actor)
        user = self._update(user, role=role)
        self._sessions.revoke_all(user_id)
        self._audit.record(AuditEventType.ROLE_CHANGE, "ok", actor=actor, user_id=user_id, request_id=request_id,
                           details={"role": role})  # fmt: skip
        return user

    def ensure_initial_admin(self) -> None:
        """Create the first admin from settings if it does not exist yet (once per process,
        idempotent across processes: insert-if-absent)."""
        if self._bootstrapped:
            return
        with self._bootstrap_lock:
            if self._bootstrapped:
                return
            admin = self._initial_admin
            address = parse_email(admin.email)
            now = self._clock.now()
            user = User.new(
                address, role=Role.ADMIN, status="active", password_hash=self._hasher.hash(admin.password), now=now
            )
            if self.users.create(user):
                self._audit.record(AuditEventType.ADMIN_BOOTSTRAP, "ok", actor="settings", user_id=user.user_id)
            self._bootstrapped = True

    # --- internals ----------------------------------------------------------------------

    def _address(self, email: str) -> EmailAddress:
        try:
            return parse_email(email)
        except InvalidEmail as error:
            raise errors.InvalidInput(str(error), code="invalid_email") from None

    def _enforce_policy(
        self, password: str, email: str, *, event: AuditEventType, actor: str | None, request_id: str | None
    ) -> None:
        verdict = passwords.check(password, email)
        if verdict.acceptable and self._breaches is not None and self._breaches.seen(passwords.normalise(password)):
            verdict = passwords.breached(verdict)
        if not verdict.acceptable:
            self._audit.record(
                event, "fail", reason="password_rejected", actor=actor, request_id=request_id,
                details={"problems": ",".join(verdict.problems)},
            )  # fmt: skip
            raise errors.InvalidInput(
                "The password was refused: " + ", ".join(map(passwords.describe, verdict.problems)) + ".",
                code="password_rejected",
                details=verdict.as_dict(),
            )

    def _authenticate(
        self, email: str, password: str, *, event: AuditEventType, client_ip: str | None, request_id: str | None
    ) -> User:
        """The user these credentials belong to, or Unauthenticated (see `_check_credentials`)."""
        user, _, releasing = self._check_credentials(
            email, password, event=event, client_ip=client_ip, request_id=request_id
        )
        wait(releasing)  # as in `login`
        return user

    def _check_credentials(
        self,
        email: str,
        password: str,
        *,
        event: AuditEventType,
        client_ip: str | None,
        request_id: str | None,
        device_token: str | None = None,
        unlock_code: str | None = None,
    ) -> tuple[User, str | None, list[Future]]:
        """The user these credentials belong to, the id of the known device they came
        from (or None) and the limits' slots being given back (the caller waits on them),
        else Unauthenticated. An unknown or malformed address costs the same bcrypt work as
        a wrong password. The limits (shared.limits.guard) take their slots before
        anything is checked; while unknown devices are paused every answer to them is the
        same, right password or wrong. On a new device an unlock code is checked first,
        and the password only when the code is right (a wrong password uses the code up)."""
        account = self._account_key(email)
        # the account is read beside the slots, unless a device token needs it first
        user_read = self._pool.submit(self.users.by_email_hash, EmailAddress(email, account).key_hash)
        device = self._devices.recognise(device_token, user_read.result()) if device_token else None
        unlock_code = unlock_code if device is None else None
        attempt = None
        if client_ip is not None:
            try:
                attempt = self._abuse.password_attempt(
                    client_ip, account, device=device, unlock=unlock_code is not None
                )
            except errors.TooManyRequests as refusal:
                user = user_read.result()
                actor = user.user_id if user else self._guest(client_ip)
                self._audit.record(event, "fail", reason=refusal.code, actor=actor, request_id=request_id)
                if refusal.code == "sign_in_paused" and user is not None and self._abuse.pause_notice_due(account):
                    self._mail(user.email, notices.sign_in_paused())
                raise
        user = user_read.result()
        if unlock_code is not None and not self._unlock_codes.redeem(account, unlock_code):
            reason = "wrong_unlock_code"
        elif self._hasher.verify(password, user.password_hash if user else None):
            return user, device, attempt.releasing() if attempt is not None else []
        else:
            reason = "wrong_password" if user else "unknown_email"
        self._audit.record(
            event, "fail", reason=reason, actor=user.user_id if user else self._guest(client_ip), request_id=request_id
        )
        raise errors.Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")

    def _account_key(self, email: str) -> str:
        """The normalised address limits and unlock codes are keyed by (also for a
        malformed one, which can never sign in but is counted all the same)."""
        try:
            return parse_email(email).key
        except InvalidEmail:
            return email.strip().lower()

    def _count(self, attempt: str, client_ip: str | None) -> None:
        """An attempt that costs us or a mail provider: counted per source on every call, before the work."""
        if client_ip is not None:
            getattr(self._abuse, attempt)(client_ip)

    def _guest(self, client_ip: str | None) -> str | None:
        return self._actor_for_ip(client_ip) if client_ip else None

    def _require_pending(self, user: User, *, event: AuditEventType, request_id: str | None) -> None:
        if user.status == "pending":
            return
        reason = "already_active" if user.status == "active" else "locked"
        self._audit.record(event, "fail", reason=reason, actor=user.user_id, request_id=request_id)
        if user.status == "active":
            raise errors.Conflict("The account is already active.", code="already_active")
        raise errors.Forbidden("The account is locked.", code="account_locked")

    def _require_live_registration(self, user: User, *, event: AuditEventType, request_id: str | None) -> None:
        """A pending registration within its life (PENDING_REGISTRATION_HOURS)."""
        self._require_pending(user, event=event, request_id=request_id)
        if self._registrations.over(user):
            self._audit.record(event, "fail", reason="registration_expired", actor=user.user_id, request_id=request_id)
            raise errors.Gone("The registration has expired; register again.", code="registration_expired")

    def _send_code(self, user: User) -> datetime:
        """A new activation code by mail: the mail budget of the address is drawn on once
        the store allows a code (cooldown, hourly cap), before the old code dies."""
        issued = self._activations.issue(
            user.user_id,
            keep_until=self._registrations.ends_at(user),
            before_write=lambda: self._mail_budget.reserve(user.email_key),
        )
        self._mail(user.email, notices.activation_code(issued.code, int(self._activation_ttl.total_seconds())))
        return issued.expires_at

    def _notify_owner(self, owner: User, now: datetime, *, shadow: User, ends: datetime) -> None:
        """Tell the owner of a taken address that someone tried to register it (the mail
        budget of the address bounds how often), with the work of a registration: the
        account row written once (when the owner was last told), a code issued to the
        registration that never was (`shadow`: its rows go with its index row at `ends`),
        one mail."""
        with suppress(errors.Conflict):  # changed meanwhile: the notice goes all the same
            self.users.update(owner, notice_sent_at=now)
        self._activations.issue(shadow.user_id, keep_until=ends)
        self._mail(owner.email, notices.already_registered())

    def _end_if_outdated(self, user: User, session: Session, *, request_id: str | None) -> None:
        """A sign-in racing a password change (or a lock, a role change) must not outlive
        it. Those update the user first and then revoke every session; this reads the user
        again after the session exists. Either it sees the change, and ends the session
        here, or it read before the update, so the session existed before the revocation
        listed the user's sessions, and that ends it. One point read per sign-in."""
        current = self.users.by_email_hash(user.email_hash)
        if current is not None and (current.user_id, current.password_hash, current.status, current.role) == (
            user.user_id, user.password_hash, "active", user.role,
        ):  # fmt: skip
            return
        self._sessions.revoke(session)
        self._audit.record(
            AuditEventType.LOGIN, "fail", reason="account_changed", actor=user.user_id, request_id=request_id
        )
        raise errors.Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")

    def _mail(self, to: str, mail: notices.Mail) -> None:
        self._outbox.send(to, mail.subject, mail.text, kind=mail.kind)

    def _password_expired(self, user: User) -> bool:
        return self._clock.now() - user.password_changed_at >= self._password_max_age

    def _admin_target(self, user_id: str, actor: str) -> User:
        if user_id == actor:
            raise errors.Conflict("Admins cannot lock, unlock or re-role themselves.", code="self_change")
        user = self.users.by_id(user_id)
        if user is None:
            raise errors.NotFound("No such user.", code="user_not_found")
        return user

    def _update(self, user: User, **changes) -> User:
        """Apply changes with optimistic concurrency, re-reading after a lost race."""
        latest: User | None = user

        def attempt() -> User:
            nonlocal latest
            current = latest or self.users.by_id(user.user_id)
            latest = None  # after a lost race: read the account again
            if current is None:
                raise errors.NotFound("No such user.", code="user_not_found")
            try:
                return self.users.update(current, **changes)
            except errors.Conflict as lost:
                raise LostRace from lost

        busy = errors.Conflict("The account changed meanwhile; try again.", code="account_changed")
        return retry_lost_races(attempt, tries=UPDATE_RETRIES, exhausted=busy)


__all__ = ["AccountService", "Check", "InitialAdmin", "Login"]
