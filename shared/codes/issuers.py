"""Whether an issuer's codes may still be redeemed: the user must be active.

`UsersDirectory` asks the users table; `CachedIssuerDirectory` remembers "active" for a
few seconds per process, so the redeem path usually skips the users-table round trips.
Only "active" is cached: a locked or unknown issuer is asked again every time, and a
lock takes effect on redemption within the cache's lifetime.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from shared.accounts.users import UserStore
from shared.clock import Clock

MAX_CACHED = 100_000


class UsersDirectory:
    def __init__(self, users: UserStore):
        self._users = users

    def is_active(self, user_id: str) -> bool:
        user = self._users.by_id(user_id)
        return user is not None and user.active


class CachedIssuerDirectory:
    def __init__(self, inner, clock: Clock, ttl: timedelta):
        self._inner = inner
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._active_until: dict[str, datetime] = {}

    def is_active(self, user_id: str) -> bool:
        now = self._clock.now()
        with self._lock:
            until = self._active_until.get(user_id)
        if until is not None and now < until:
            return True
        active = self._inner.is_active(user_id)
        with self._lock:
            if active and self._ttl > timedelta(0):
                if len(self._active_until) >= MAX_CACHED:
                    self._active_until.clear()
                self._active_until[user_id] = now + self._ttl
            else:
                self._active_until.pop(user_id, None)
        return active
