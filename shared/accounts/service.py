"""Account use cases: register, activate, resend, login, logout, profile, password
change, token introspection, and the admin operations (lock, unlock, role).

Rules that hold across them:
- Whether an account exists never shows in a response: registering a taken address
  answers like a new registration (and does the same bcrypt work), and an unknown email
  fails login with the same status, body and bcrypt work as a wrong password.
- Every state change writes one audit event; none holds a password, code or token.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared import errors
from shared.accounts import mails, passwords
from shared.accounts.activation import ActivationStore, Check
from shared.accounts.emails import EmailAddress, InvalidEmail, parse_email
from shared.accounts.passwords import PasswordHasher, Verdict
from shared.accounts.users import Role, User, UserStore
from shared.audit import AuditLog
from shared.clock import Clock
from shared.mail.outbox import Outbox
from shared.sessions import Session, SessionStore

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = "The email or password is not right."
# A taken address gets at most one "someone tried to register" mail per this long.
NOTICE_INTERVAL = timedelta(hours=1)
UPDATE_RETRIES = 3


class Guard(Protocol):
    """Abuse limits around accounts (shared.abuse.AbuseGuard): each raises TooManyRequests."""

    def registration(self, ip: str) -> None: ...
    def activation(self, ip: str) -> None: ...
    def resend(self, ip: str) -> None: ...
    def check_login(self, ip: str, email: str) -> None: ...
    def login_failed(self, ip: str, email: str) -> bool: ...
    def login_succeeded(self, email: str) -> None: ...


@dataclass(frozen=True)
class InitialAdmin:
    email: str
    password: str


@dataclass(frozen=True)
class Login:
    token: str  # shown once
    session: Session

    def as_dict(self) -> dict:
        return {
            "token": self.token,
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
        hasher: PasswordHasher,
        outbox: Outbox,
        audit: AuditLog,
        clock: Clock,
        *,
        password_max_age: timedelta,
        activation_ttl: timedelta,
        initial_admin: InitialAdmin | None = None,
        actor_for_ip: Callable[[str], str] = lambda ip: "ip:unknown",
        guard: Guard | None = None,
    ):
        self.users = users
        self._activations = activations
        self._sessions = sessions
        self._hasher = hasher
        self._outbox = outbox
        self._audit = audit
        self._clock = clock
        self._password_max_age = password_max_age
        self._activation_ttl = activation_ttl
        self._initial_admin = initial_admin
        self._actor_for_ip = actor_for_ip
        self._guard = guard
        self._bootstrap_lock = threading.Lock()
        self._bootstrapped = initial_admin is None

    # --- registration and activation ------------------------------------------------

    def register(
        self, email: str, password: str, *, client_ip: str | None = None, request_id: str | None = None
    ) -> None:
        """Create a pending account and mail it a code. A taken address gets the same
        answer (the owner is told by mail instead), so registration reveals nothing."""
        self._count("registration", client_ip)
        address = self._address(email)
        self._enforce_policy(
            password, address.display, event="register", actor=self._guest(client_ip), request_id=request_id
        )
        now = self._clock.now()
        user = User.new(address, role="user", status="pending", password_hash=self._hasher.hash(password), now=now)
        if self.users.create(user):
            self._send_code(user)
            self._audit.record(
                "register", "ok", actor=self._guest(client_ip), user_id=user.user_id, request_id=request_id
            )
            return
        existing = self.users.by_email_hash(address.key_hash)
        if existing is not None:
            self._notify_owner(existing, now)
        self._audit.record(
            "register",
            "fail",
            reason="email_taken",
            actor=self._guest(client_ip),
            user_id=existing.user_id if existing else None,
            request_id=request_id,
        )

    def password_strength(self, password: str, email: str | None = None) -> Verdict:
        return passwords.check(password, email)

    def activate(
        self, email: str, password: str, code: str, *, client_ip: str | None = None, request_id: str | None = None
    ) -> User:
        self._count("activation", client_ip)
        user = self._authenticate(email, password, event="activate", client_ip=client_ip, request_id=request_id)
        self._require_pending(user, event="activate", request_id=request_id)
        check = self._activations.check(user.user_id, code)
        if check.outcome != "ok":
            self._audit.record("activate", "fail", reason=check.outcome, actor=user.user_id, request_id=request_id)
            raise CODE_ERRORS[check.outcome](check)
        now = self._clock.now()
        user = self._update(user, status="active", activated_at=now)
        self._audit.record("activate", "ok", actor=user.user_id, request_id=request_id)
        return user

    def resend_activation(
        self, email: str, password: str, *, client_ip: str | None = None, request_id: str | None = None
    ) -> datetime:
        """A new code (the old one dies); returns when it expires."""
        self._count("resend", client_ip)
        user = self._authenticate(
            email, password, event="activation_resend", client_ip=client_ip, request_id=request_id
        )
        self._require_pending(user, event="activation_resend", request_id=request_id)
        try:
            expires_at = self._send_code(user)
        except errors.TooManyRequests as error:
            self._audit.record(
                "activation_resend", "fail", reason=error.code, actor=user.user_id, request_id=request_id
            )
            raise
        self._audit.record("activation_resend", "ok", actor=user.user_id, request_id=request_id)
        return expires_at

    # --- sessions ---------------------------------------------------------------------

    def login(self, email: str, password: str, *, client_ip: str | None = None, request_id: str | None = None) -> Login:
        self.ensure_initial_admin()
        user = self._authenticate(email, password, event="login", client_ip=client_ip, request_id=request_id)
        if user.status != "active":
            reason = "not_activated" if user.status == "pending" else "locked"
            self._audit.record("login", "fail", reason=reason, actor=user.user_id, request_id=request_id)
            if user.status == "pending":
                raise errors.Forbidden("Activate the account first.", code="account_not_activated")
            raise errors.Forbidden("The account is locked.", code="account_locked")
        expired = self._password_expired(user)
        token, session = self._sessions.create(user.user_id, user.role, password_expired=expired)
        self._audit.record(
            "login", "ok", actor=user.user_id, request_id=request_id, details={"passwordExpired": expired}
        )
        return Login(token, session)

    def logout(self, session: Session, *, request_id: str | None = None) -> None:
        self._sessions.revoke(session)
        self._audit.record("logout", "ok", actor=session.user_id, request_id=request_id)

    def introspect(self, token: str) -> dict:
        """For other services: is the token a live session? Counts as a use (slides it)."""
        try:
            session = self._sessions.authenticate(token)
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
        user = self._session_user(session)
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
        the user and mail a notice. Returns how many sessions ended."""
        user = self._session_user(session)
        if not self._hasher.verify(old, user.password_hash):
            self._audit.record(
                "password_change", "fail", reason="wrong_password", actor=user.user_id, request_id=request_id
            )
            raise errors.Forbidden("The current password is not right.", code="wrong_password")
        if hmac.compare_digest(passwords.normalise(old).encode(), passwords.normalise(new).encode()):
            self._audit.record(
                "password_change", "fail", reason="password_reused", actor=user.user_id, request_id=request_id
            )
            raise errors.InvalidInput("The new password must differ from the old one.", code="password_reused")
        self._enforce_policy(new, user.email, event="password_change", actor=user.user_id, request_id=request_id)
        self._update(user, password_hash=self._hasher.hash(new), password_changed_at=self._clock.now())
        revoked = self._sessions.revoke_all(user.user_id)
        self._mail(user.email, mails.password_changed())
        self._audit.record(
            "password_change", "ok", actor=user.user_id, request_id=request_id, details={"sessionsEnded": revoked}
        )
        return revoked

    def set_display_name(self, session: Session, name: str | None, *, request_id: str | None = None) -> dict:
        """Set (or, with None, clear) the name guests see as the sharer of this user's files;
        without one they see no name at all. Returns the profile."""
        user = self._update(self._session_user(session), display_name=name)
        self._audit.record("display_name", "ok", actor=user.user_id, request_id=request_id)
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
        self._audit.record(
            "lock", "ok", actor=actor, user_id=user_id, request_id=request_id, details={"sessionsEnded": ended}
        )
        return user

    def unlock(self, user_id: str, *, actor: str, request_id: str | None = None) -> User:
        user = self._admin_target(user_id, actor)
        status = "active" if user.activated_at is not None else "pending"
        user = self._update(user, status=status)
        self._audit.record("unlock", "ok", actor=actor, user_id=user_id, request_id=request_id)
        return user

    def set_role(self, user_id: str, role: Role, *, actor: str, request_id: str | None = None) -> User:
        """Change a role; the user's sessions end so the new role takes effect at once."""
        user = self._admin_target(user_id, actor)
        user = self._update(user, role=role)
        self._sessions.revoke_all(user_id)
        self._audit.record(
            "role_change", "ok", actor=actor, user_id=user_id, request_id=request_id, details={"role": role}
        )
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
                address, role="admin", status="active", password_hash=self._hasher.hash(admin.password), now=now
            )
            if self.users.create(user):
                self._audit.record("admin_bootstrap", "ok", actor="settings", user_id=user.user_id)
            self._bootstrapped = True

    # --- internals ----------------------------------------------------------------------

    def _address(self, email: str) -> EmailAddress:
        try:
            return parse_email(email)
        except InvalidEmail as error:
            raise errors.InvalidInput(str(error), code="invalid_email") from None

    def _enforce_policy(
        self, password: str, email: str, *, event: str, actor: str | None, request_id: str | None
    ) -> None:
        verdict = passwords.check(password, email)
        if not verdict.acceptable:
            self._audit.record(
                event, "fail", reason="password_rejected", actor=actor, request_id=request_id,
                details={"problems": ",".join(verdict.problems)},
            )  # fmt: skip
            raise errors.InvalidInput(
                "The password was refused: " + ", ".join(p.replace("_", " ") for p in verdict.problems) + ".",
                code="password_rejected",
                details=verdict.as_dict(),
            )

    def _authenticate(
        self, email: str, password: str, *, event: str, client_ip: str | None, request_id: str | None
    ) -> User:
        """The user these credentials belong to, or Unauthenticated. An unknown or
        malformed address costs the same bcrypt work as a wrong password."""
        try:
            account = parse_email(email).key
        except InvalidEmail:
            account = email.strip().lower()
        if self._guard is not None and client_ip is not None:
            self._guard.check_login(client_ip, account)
        user = self.users.by_email_hash(EmailAddress(email, account).key_hash)
        if self._hasher.verify(password, user.password_hash if user else None):
            if self._guard is not None:
                self._guard.login_succeeded(account)
            return user
        if self._guard is not None and client_ip is not None:
            paused = self._guard.login_failed(client_ip, account)
            if paused and user is not None:
                self._mail(user.email, mails.sign_in_paused())
        self._audit.record(
            event,
            "fail",
            reason="wrong_password" if user else "unknown_email",
            actor=user.user_id if user else self._guest(client_ip),
            request_id=request_id,
        )
        raise errors.Unauthenticated(INVALID_CREDENTIALS, code="invalid_credentials")

    def _count(self, attempt: str, client_ip: str | None) -> None:
        """An attempt that costs us or a mail provider: counted per client IP on every call."""
        if self._guard is not None and client_ip is not None:
            getattr(self._guard, attempt)(client_ip)

    def _guest(self, client_ip: str | None) -> str | None:
        return self._actor_for_ip(client_ip) if client_ip else None

    def _require_pending(self, user: User, *, event: str, request_id: str | None) -> None:
        if user.status == "pending":
            return
        reason = "already_active" if user.status == "active" else "locked"
        self._audit.record(event, "fail", reason=reason, actor=user.user_id, request_id=request_id)
        if user.status == "active":
            raise errors.Conflict("The account is already active.", code="already_active")
        raise errors.Forbidden("The account is locked.", code="account_locked")

    def _send_code(self, user: User) -> datetime:
        issued = self._activations.issue(user.user_id)
        self._mail(user.email, mails.activation_code(issued.code, int(self._activation_ttl.total_seconds())))
        return issued.expires_at

    def _notify_owner(self, user: User, now: datetime) -> None:
        if user.notice_sent_at is not None and now - user.notice_sent_at < NOTICE_INTERVAL:
            return
        try:
            self.users.update(user, notice_sent_at=now)
        except errors.Conflict:
            return  # a concurrent request is telling the owner already
        self._mail(user.email, mails.already_registered())

    def _mail(self, to: str, mail: mails.Mail) -> None:
        self._outbox.send(to, mail.subject, mail.text, kind=mail.kind)

    def _password_expired(self, user: User) -> bool:
        return self._clock.now() - user.password_changed_at >= self._password_max_age

    def _session_user(self, session: Session) -> User:
        user = self.users.by_id(session.user_id)
        if user is None or user.status == "locked":
            raise errors.Unauthenticated("The session's account is gone or locked.")
        return user

    def _admin_target(self, user_id: str, actor: str) -> User:
        if user_id == actor:
            raise errors.Conflict("Admins cannot lock, unlock or re-role themselves.", code="self_change")
        user = self.users.by_id(user_id)
        if user is None:
            raise errors.NotFound("No such user.", code="user_not_found")
        return user

    def _update(self, user: User, **changes) -> User:
        """Apply changes with optimistic concurrency, re-reading after a lost race."""
        for _ in range(UPDATE_RETRIES):
            try:
                return self.users.update(user, **changes)
            except errors.Conflict:
                fresh = self.users.by_id(user.user_id)
                if fresh is None:
                    raise errors.NotFound("No such user.", code="user_not_found") from None
                user = fresh
        raise errors.Conflict("The account changed meanwhile; try again.", code="account_changed")


__all__ = ["AccountService", "Check", "InitialAdmin", "Login"]
