"""Known devices: device tokens (OWASP's device cookies) that let an account's owner sign
in while strangers' failures hold unknown devices back.

A successful sign-in hands the client a device token (32 random bytes); the API takes it
back in `X-Device-Token`, the pages in an HttpOnly cookie. Only its keyed hash is stored
(the `sessions` table, PartitionKey "d:<hash>", RowKey = key id: a point read, under
every key of the ring). A token is bound to its account and to the account's password
hash (a keyed hash of it: bcrypt salts every new hash), so a password change revokes every
device without a write. It
lapses `lifetime` after the sign-in that last used it; cleanup deletes it through the
expiry index.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient

from shared.accounts.users import User
from shared.auth.keys import KeyedHash, KeyRing
from shared.auth.sessions import TOKEN_PATTERN
from shared.clock import Clock
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, key_of

DEVICE_PURPOSE = "device-token"
PASSWORD_STAMP_PURPOSE = "device-password"  # noqa: S105 - a hash purpose label, not a secret


class DeviceStore:
    def __init__(self, table: TableClient, expiry: ExpiryIndex, keys: KeyRing, clock: Clock, lifetime: timedelta):
        self._table = table
        self._expiry = expiry
        self._keys = keys
        self._clock = clock
        self._lifetime = lifetime

    def recognise(self, token: str | None, user: User | None) -> str | None:
        """The device's id (for its own failure budget) when the token is a live device
        of this user's current password; else None."""
        if not token or user is None or not TOKEN_PATTERN.match(token):
            return None
        for candidate in self._keys.candidates(DEVICE_PURPOSE, token):
            try:
                row = self._table.get_entity(f"d:{candidate.digest}", candidate.key_id)
            except ResourceNotFoundError:
                continue
            stamp = KeyedHash(row["stampKeyId"], row["passwordStamp"])
            known = (
                row["userId"] == user.user_id
                and self._clock.now() < row["expiresAt"]
                and self._keys.matches(PASSWORD_STAMP_PURPOSE, user.password_hash, stamp)
            )
            return candidate.digest[:32] if known else None
        return None

    def trust(self, user: User, token: str | None = None) -> str:
        """Remember this device for the user (a new token unless `token` is one already);
        returns the token to hand back."""
        token = token or secrets.token_urlsafe(32)
        hashed = self._keys.hash(DEVICE_PURPOSE, token)
        stamp = self._keys.hash(PASSWORD_STAMP_PURPOSE, user.password_hash)
        expires_at: datetime = self._clock.now() + self._lifetime
        self._expiry.add(ExpiryKind.DEVICE, f"{hashed.digest}:{hashed.key_id}", expires_at)
        self._table.upsert_entity(
            {
                "PartitionKey": f"d:{hashed.digest}",
                "RowKey": hashed.key_id,
                "userId": user.user_id,
                "passwordStamp": stamp.digest,
                "stampKeyId": stamp.key_id,
                "expiresAt": expires_at,
            }
        )
        return token

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: delete devices whose lifetime ran out (unless a later sign-in moved
        it on; its newer index row will come)."""
        now = self._clock.now()
        for row in index_rows:
            digest, _, key_id = key_of(row).partition(":")
            try:
                device = self._table.get_entity(f"d:{digest}", key_id)
            except ResourceNotFoundError:
                continue
            if device["expiresAt"] <= now:
                self._table.delete_entity(f"d:{digest}", key_id)
        return len(index_rows)
