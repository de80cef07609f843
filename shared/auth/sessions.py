"""Login sessions: opaque bearer tokens, stored only as keyed hashes.

A token is 32 random bytes (URL-safe). The `sessions` table holds, per session, a row
keyed by the token's HMAC (PartitionKey "t:<hash>", RowKey = key id: a point read), and
a row per user (PartitionKey "u:<user id>") so that every session of a user can be
revoked without a scan. A session ends at the sooner of its sliding idle timeout and
its absolute lifetime; it is registered in the expiry index at its absolute end. Only
the session's own use slides it: a look from another service (introspection) does not.
"""

from __future__ import annotations

import re
import secrets
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import errors
from shared.auth.keys import KeyRing
from shared.clock import Clock
from shared.concurrency import run_parallel
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, key_of

TOKEN_PURPOSE = "session-token"  # noqa: S105 - a hash purpose label, not a secret
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
# The idle deadline is written back at most this often, so most requests cost one read.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Session:
    token_hash: str
    key_id: str
    user_id: str
    role: str
    created_at: datetime
    last_seen_at: datetime
    idle_expires_at: datetime
    absolute_expires_at: datetime
    password_expired: bool

    @property
    def expires_at(self) -> datetime:
        return min(self.idle_expires_at, self.absolute_expires_at)


def _session_from(entity) -> Session:
    return Session(
        token_hash=entity["PartitionKey"][2:],
        key_id=entity["RowKey"],
        user_id=entity["userId"],
        role=entity["role"],
        created_at=entity["createdAt"],
        last_seen_at=entity["lastSeenAt"],
        idle_expires_at=entity["idleExpiresAt"],
        absolute_expires_at=entity["absoluteExpiresAt"],
        password_expired=entity["passwordExpired"],
    )


class SessionStore:
    def __init__(
        self,
        table: TableClient,
        expiry: ExpiryIndex,
        keys: KeyRing,
        clock: Clock,
        idle_timeout: timedelta,
        lifetime: timedelta,
        pool: Executor,
    ):
        self._pool = pool
        self._table = table
        self._expiry = expiry
        self._keys = keys
        self._clock = clock
        self._idle_timeout = idle_timeout
        self._lifetime = lifetime

    def create(self, user_id: str, role: str, *, password_expired: bool = False) -> tuple[str, Session]:
        """Start a session; returns the raw token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        hashed = self._keys.hash(TOKEN_PURPOSE, token)
        now = self._clock.now()
        absolute_end = now + self._lifetime
        entity = {
            "PartitionKey": f"t:{hashed.digest}",
            "RowKey": hashed.key_id,
            "userId": user_id,
            "role": role,
            "createdAt": now,
            "lastSeenAt": now,
            "idleExpiresAt": min(now + self._idle_timeout, absolute_end),
            "absoluteExpiresAt": absolute_end,
            "passwordExpired": password_expired,
        }
        # index rows first: a session is never live without a way to find and delete it
        run_parallel(
            self._pool,
            lambda: self._expiry.add(
                ExpiryKind.SESSION, f"{hashed.digest}:{hashed.key_id}", absolute_end, userId=user_id
            ),
            lambda: self._table.upsert_entity(
                {"PartitionKey": f"u:{user_id}", "RowKey": f"{hashed.digest}:{hashed.key_id}"}
            ),
        )
        self._table.create_entity(entity)
        return token, _session_from(entity)

    def authenticate(self, token: str | None, *, slide: bool = True) -> Session:
        """The live session for a token, its idle deadline pushed forward (unless `slide`
        is false: a look from outside, such as introspection, is not a use); else
        Unauthenticated."""
        if not token or not TOKEN_PATTERN.match(token):
            raise errors.Unauthenticated("The session token is missing or invalid.")
        now = self._clock.now()
        for candidate in self._keys.candidates(TOKEN_PURPOSE, token):
            try:
                entity = self._table.get_entity(f"t:{candidate.digest}", candidate.key_id)
            except ResourceNotFoundError:
                continue
            session = _session_from(entity)
            if now >= session.expires_at:
                break
            if slide and now - session.last_seen_at >= LAST_SEEN_RESOLUTION:
                session = self._touch(entity, now)
            return session
        raise errors.Unauthenticated("The session token is missing, invalid or expired.")

    def _touch(self, entity, now: datetime) -> Session:
        entity["lastSeenAt"] = now
        entity["idleExpiresAt"] = min(now + self._idle_timeout, entity["absoluteExpiresAt"])
        self._table.update_entity(entity, mode=UpdateMode.MERGE)
        return _session_from(entity)

    def revoke(self, session: Session) -> None:
        for partition, row in (
            (f"t:{session.token_hash}", session.key_id),
            (f"u:{session.user_id}", f"{session.token_hash}:{session.key_id}"),
        ):
            self._table.delete_entity(partition, row)

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: delete the sessions behind expired index rows (idempotent)."""
        for row in index_rows:
            token_hash, key_id = key_of(row).split(":")
            self._table.delete_entity(f"t:{token_hash}", key_id)
            self._table.delete_entity(f"u:{row['userId']}", f"{token_hash}:{key_id}")
        return len(index_rows)

    def revoke_all(self, user_id: str) -> int:
        """End every session of a user (password change, lock); returns how many."""
        rows = list(self._table.query_entities("PartitionKey eq @pk", parameters={"pk": f"u:{user_id}"}))
        for row in rows:
            token_hash, _, key_id = row["RowKey"].partition(":")
            self._table.delete_entity(f"t:{token_hash}", key_id)
            self._table.delete_entity(row["PartitionKey"], row["RowKey"])
        return len(rows)
