"""Pending registrations: how long one lives and how it ends.

Rules this module owns:
- A pending registration lives `lifetime` (PENDING_REGISTRATION_HOURS) from when it was
  made. After that it cannot be activated, and cleanup removes it (the account row, its
  pointer row, its activation row), so nobody holds an address they cannot activate.
- Every registration is entered in the expiry index (kind "registration") at its end,
  before any of its rows is written, so cleanup always finds it. Cleanup reads only the
  rows the index names: the account row goes only if it is still the same registration,
  still pending (ETag-conditional), and past its end; the rows of a registration that
  was replaced meanwhile (the account row names another user id) go whatever the time.
- A registration that used up its activation guesses ends at once (`end`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.accounts.activation import ActivationStore
from shared.accounts.users import User, UserStore
from shared.clock import Clock
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind


class PendingRegistrations:
    def __init__(
        self, users: UserStore, activations: ActivationStore, expiry: ExpiryIndex, clock: Clock, *, lifetime: timedelta
    ):
        self._users = users
        self._activations = activations
        self._expiry = expiry
        self._clock = clock
        self._lifetime = lifetime

    def ends_at(self, user: User) -> datetime:
        return user.created_at + self._lifetime

    def over(self, user: User) -> bool:
        """A pending registration past its end (cleanup has not come yet)."""
        return user.status == "pending" and self._clock.now() >= self.ends_at(user)

    def track(self, user: User) -> datetime:
        """Enter a registration in the expiry index (before its rows are written); returns its end."""
        ends = self.ends_at(user)
        self._expiry.add(ExpiryKind.REGISTRATION, user.user_id, ends, userId=user.user_id, emailHash=user.email_hash)
        return ends

    def end(self, user: User) -> bool:
        """Remove a pending registration now; False when it changed meanwhile (activated,
        replaced), and then nothing of it is removed."""
        if not self._users.remove(user):
            return False
        self._activations.discard(user.user_id)
        return True

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: remove the registrations behind expired index rows, unless they were
        activated (their rows stay). Idempotent; returns how many index rows it handled."""
        now = self._clock.now()
        for row in index_rows:
            user_id, email_hash = row["userId"], row["emailHash"]
            account = self._users.by_email_hash(email_hash)
            if account is not None and account.user_id == user_id:
                if account.status == "pending" and now >= self.ends_at(account):
                    self.end(account)
                continue
            # replaced, removed, or never the account: only its own rows are left to go
            self._users.remove_pointer(user_id, email_hash)
            self._activations.discard(user_id)
        return len(index_rows)
