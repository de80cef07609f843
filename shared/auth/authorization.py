"""Who may do what: the one place that decides access, for the JSON API and the pages alike.

- A bearer token (or the console's session cookie) must name a live session: a missing,
  malformed, unknown or expired token is Unauthenticated (the lookup is
  `SessionStore.authenticate`, which also slides the idle timeout).
- A session whose password has expired reaches only what allows it (changing the
  password, signing out): anything else is Forbidden `password_expired`.
- Where a role is asked for, the session must carry it: Forbidden otherwise.
- Where a use case reads the account behind a session, an account that is gone or locked
  is Unauthenticated. It is not read on every request: locking ends every session of the
  account, and a sign-in racing the lock ends its own (docs/decisions.md).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from shared import errors

if TYPE_CHECKING:
    from shared.accounts.users import User, UserStore
    from shared.auth.sessions import Session, SessionStore


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


class Authorizer:
    def __init__(self, sessions: SessionStore, users: UserStore):
        self._sessions = sessions
        self._users = users

    def authorize(
        self, token: str | None, role: Role | None = None, *, allow_expired_password: bool = False
    ) -> Session:
        """The live session behind `token` if it may go on, else Unauthenticated (no live
        session) or Forbidden (expired password, then missing role)."""
        session = self._sessions.authenticate(token)
        refusal = _refusal(session, role, allow_expired_password=allow_expired_password)
        if refusal is not None:
            raise refusal
        return session

    def permits(self, session: Session, role: Role) -> bool:
        """Whether a live session may reach what needs `role` (no lookup: for showing links)."""
        return _refusal(session, role, allow_expired_password=False) is None

    def account(self, session: Session) -> User:
        """The account behind a session, unless it is gone or locked (Unauthenticated)."""
        user = self._users.by_id(session.user_id)
        if user is None or user.status == "locked":
            raise errors.Unauthenticated("The session's account is gone or locked.")
        return user


def _refusal(session: Session, role: Role | None, *, allow_expired_password: bool) -> errors.Forbidden | None:
    if session.password_expired and not allow_expired_password:
        return errors.Forbidden("Your password has expired; change it first.", code="password_expired")
    if role is not None and session.role != role:
        return errors.Forbidden()
    return None
