"""Unlock codes: how an account's owner signs in from a new device while strangers'
failures keep unknown devices paused (Auth0's unblock mail).

`POST /api/sessions/unlock {email}` mails a 6-digit code, valid `ttl`, single use; then
`POST /api/sessions {email, password, unlockCode}` signs in and trusts the device. One
live code per address (a new one replaces it). The row is keyed by a keyed hash of the
normalised address, and written for unknown addresses too, so the request costs the
same whether or not the account exists; only a known account gets the mail. The code is
stored only as a keyed hash; a try is counted with an ETag-conditional write *before*
the compare, and `max_attempts` tries burn it.
"""

from __future__ import annotations

from datetime import timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import one_time
from shared.auth.keys import KeyRing
from shared.clock import Clock
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, key_of
from shared.optimistic import LostRace, retry_lost_races

ACCOUNT_PURPOSE = "unlock-account"
CODE_PURPOSE = "unlock-code"
ROW = "code"
DIGITS = 6
WRITE_TRIES = 5


class UnlockCodes:
    def __init__(
        self, table: TableClient, expiry: ExpiryIndex, keys: KeyRing, clock: Clock, *, ttl: timedelta, max_attempts: int
    ):
        self._table = table
        self._expiry = expiry
        self._keys = keys
        self._clock = clock
        self.ttl = ttl
        self._max_attempts = max_attempts

    def issue(self, account: str) -> str:
        """A new code for the (normalised) address; the previous one dies. Returns it, for the mail."""
        code = one_time.numeric_code(DIGITS)
        partition = f"unlock:{self._keys.hash(ACCOUNT_PURPOSE, account).digest}"
        expires_at = self._clock.now() + self.ttl
        self._expiry.add(ExpiryKind.UNLOCK, partition, expires_at)
        self._table.upsert_entity(
            {
                "PartitionKey": partition,
                "RowKey": ROW,
                **one_time.hash_fields(self._keys, CODE_PURPOSE, account, code),
                "expiresAt": expires_at,
                "attempts": 0,
            },
            mode=UpdateMode.REPLACE,
        )
        return code

    def redeem(self, account: str, code: str) -> bool:
        """Count one try, then compare; a right code is used up."""
        for candidate in self._keys.candidates(ACCOUNT_PURPOSE, account):
            redeemed = self._redeem_under(f"unlock:{candidate.digest}", account, code)
            if redeemed is not None:
                return redeemed
        return False

    def _redeem_under(self, partition: str, account: str, code: str) -> bool | None:
        """`redeem` against the code stored under one key of the ring; None when there is none."""

        def attempt() -> bool | None:
            try:
                row = self._table.get_entity(partition, ROW)
            except ResourceNotFoundError:
                return None
            if row.get("used") or self._clock.now() >= row["expiresAt"] or row["attempts"] >= self._max_attempts:
                return False
            counted = one_time.count_try(self._table, row, {"attempts": row["attempts"] + 1})
            if not one_time.matches(self._keys, CODE_PURPOSE, account, code, row):
                return False
            # single use: marked used only if no other try wrote since ours
            self._table.update_entity(
                {"PartitionKey": partition, "RowKey": ROW, "used": True},
                mode=UpdateMode.MERGE, etag=counted["etag"], match_condition=MatchConditions.IfNotModified,
            )  # fmt: skip
            return True

        races = (LostRace, ResourceModifiedError, ResourceNotFoundError)
        return retry_lost_races(attempt, tries=WRITE_TRIES, races=races, exhausted=lambda: False)

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: delete codes whose time ran out (unless a newer code replaced them)."""
        now = self._clock.now()
        for index_row in index_rows:
            partition = key_of(index_row)
            try:
                row = self._table.get_entity(partition, ROW)
            except ResourceNotFoundError:
                continue
            if row["expiresAt"] <= now:
                self._table.delete_entity(partition, ROW, etag=row.metadata["etag"],
                                          match_condition=MatchConditions.IfNotModified)  # fmt: skip
        return len(index_rows)
