"""Old-password attempts of a password change, per account.

A password change checks the current password, so a stolen session token could guess it
without end. Every attempt (right or wrong) takes the window's next numbered slot of the
account strictly, before bcrypt runs, so racing requests cannot get more tries than the
limit; past it the accounts service refuses with 429 and ends the session that tried.
"""

from __future__ import annotations

from shared.limits.guard import limit_from
from shared.limits.ratelimit import Limit, RateLimiter


class PasswordChangeAttempts:
    def __init__(self, limiter: RateLimiter, limit: Limit):
        self._limiter = limiter
        self._limit = limit

    @classmethod
    def from_spec(cls, limiter: RateLimiter, spec: str) -> PasswordChangeAttempts:
        return cls(limiter, limit_from("password-change-account", spec))

    def reserve(self, user_id: str) -> None:
        """Take one attempt of the account's budget; TooManyRequests when it is spent."""
        self._limiter.reserve(self._limit, user_id)
