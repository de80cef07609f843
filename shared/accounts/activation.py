"""Activation codes: one live code per user, stored only as a keyed hash.

The `activations` table has one row per pending user (PartitionKey = user id, RowKey
"code"). Issuing a code replaces the row's hash, so a resend kills the old code. A
check bumps the attempt counter with an ETag-conditional write *before* it compares
(Ory Kratos' order), so racing guesses cannot get more tries than allowed; the compare
is constant-time. After `max_attempts` wrong tries the code is burned.

The row also counts the tries of every code of the registration (`lifeAttempts`, carried
from code to code): after `attempts_per_registration` of them the outcome is "exhausted"
and the registration ends (the accounts service removes it), so resends buy no more than
that many guesses in all.

The same row keeps the send window (cooldown between sends, cap per hour), so it lives
until the latest of the code's expiry, the window's end and the registration's own end
(`keep_until`), which keeps the life count for as long as the registration can be
activated; it is registered in the expiry index at that moment and deleted by cleanup
through `purge`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared import errors, one_time
from shared.auth.keys import KeyRing
from shared.clock import Clock
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, key_of
from shared.optimistic import LostRace, retry_lost_races

CODE_PURPOSE = "activation-code"
ROW = "code"
SEND_WINDOW = timedelta(hours=1)
WRITE_RETRIES = 5

Outcome = Literal["ok", "no_code", "expired", "burned", "wrong_code", "exhausted"]


@dataclass(frozen=True)
class Issued:
    code: str  # shown once, in the mail
    expires_at: datetime


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    attempts_left: int = 0


def _busy() -> errors.Conflict:
    return errors.Conflict("The code changed meanwhile; try again.", code="activation_busy")


def _precondition_failed(error: Exception) -> bool:
    return isinstance(error, ResourceModifiedError | ResourceExistsError | ResourceNotFoundError) or (
        isinstance(error, HttpResponseError) and error.status_code == 412
    )


class ActivationStore:
    def __init__(
        self,
        table: TableClient,
        expiry: ExpiryIndex,
        keys: KeyRing,
        clock: Clock,
        *,
        digits: int,
        ttl: timedelta,
        max_attempts: int,
        resend_cooldown: timedelta,
        sends_per_hour: int,
        attempts_per_registration: int | None = None,
    ):
        self._table = table
        self._expiry = expiry
        self._keys = keys
        self._clock = clock
        self._digits = digits
        self._ttl = ttl
        self._max_attempts = max_attempts
        self._cooldown = resend_cooldown
        self._sends_per_hour = sends_per_hour
        self._life_attempts = attempts_per_registration

    def _get(self, user_id: str):
        try:
            return self._table.get_entity(user_id, ROW)
        except ResourceNotFoundError:
            return None

    def issue(
        self,
        user_id: str,
        *,
        keep_until: datetime | None = None,
        before_write: Callable[[], None] | None = None,
    ) -> Issued:
        """A new code for the user (the old one dies), within the cooldown and hourly cap;
        else TooManyRequests with the wait. The row lives at least until `keep_until`
        (the registration's end). `before_write` runs once, after those checks passed and
        before the code is stored (the mail budget): what it raises stops the issue."""
        pending_check = before_write

        def attempt() -> Issued:
            nonlocal pending_check
            existing = self._get(user_id)
            now = self._clock.now()
            window_start, sends = now, 0
            if existing is not None and now - existing["windowStart"] < SEND_WINDOW:
                window_start, sends = existing["windowStart"], existing["windowSends"]
                wait = existing["sentAt"] + self._cooldown - now
                if wait > timedelta(0):
                    raise errors.TooManyRequests(
                        wait.total_seconds() + 1,
                        "Wait a little before asking for another code.",
                        code="resend_cooldown",
                    )
                if sends >= self._sends_per_hour:
                    raise errors.TooManyRequests(
                        (window_start + SEND_WINDOW - now).total_seconds() + 1,
                        "Too many codes were sent this hour; try again later.",
                        code="resend_limit",
                    )
            if pending_check is not None:
                pending_check()
                pending_check = None
            code = one_time.numeric_code(self._digits)
            expires_at = now + self._ttl
            purge_after = max(expires_at, window_start + SEND_WINDOW, keep_until or expires_at)
            if existing is not None and existing["purgeAfter"] > purge_after:
                purge_after = existing["purgeAfter"]  # a row never moves its own end closer
            entity = {
                "PartitionKey": user_id,
                "RowKey": ROW,
                **one_time.hash_fields(self._keys, CODE_PURPOSE, user_id, code),
                "issuedAt": now,
                "expiresAt": expires_at,
                "attempts": 0,
                "lifeAttempts": existing.get("lifeAttempts", 0) if existing is not None else 0,
                "sentAt": now,
                "windowStart": window_start,
                "windowSends": sends + 1,
                "purgeAfter": purge_after,
            }
            # index first: a row is never stored without a way to find and delete it
            self._expiry.add(ExpiryKind.ACTIVATION, user_id, purge_after, userId=user_id)
            try:
                if existing is None:
                    self._table.create_entity(entity)
                else:
                    self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=existing.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except HttpResponseError as error:
                if _precondition_failed(error):
                    raise LostRace from error  # someone else issued or checked meanwhile: read again
                raise
            return Issued(code, expires_at)

        return retry_lost_races(attempt, tries=WRITE_RETRIES, exhausted=_busy())

    def check(self, user_id: str, code: str) -> Check:
        """Count one try, then compare. "ok" removes the code; "exhausted" says the
        registration has had all its tries (this wrong one the last)."""

        def attempt() -> Check:
            entity = self._get(user_id)
            if entity is None:
                return Check("no_code")
            attempts = entity["attempts"]
            life = entity.get("lifeAttempts", 0)
            if self._life_attempts is not None and life >= self._life_attempts:
                return Check("exhausted")
            if self._clock.now() >= entity["expiresAt"]:
                return Check("expired")
            if attempts >= self._max_attempts:
                return Check("burned")
            one_time.count_try(self._table, entity, {"attempts": attempts + 1, "lifeAttempts": life + 1})
            if one_time.matches(self._keys, CODE_PURPOSE, user_id, code, entity):
                self.discard(user_id)
                return Check("ok")
            left = self._max_attempts - attempts - 1
            if self._life_attempts is not None:
                if life + 1 >= self._life_attempts:
                    return Check("exhausted")
                left = min(left, self._life_attempts - life - 1)
            return Check("wrong_code", attempts_left=max(0, left))

        return retry_lost_races(attempt, tries=WRITE_RETRIES, exhausted=_busy())

    def discard(self, user_id: str) -> None:
        self._table.delete_entity(user_id, ROW)

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: delete the rows behind expired index rows, unless a later send moved
        them on (their newer index row will come). Idempotent; returns how many went."""
        now = self._clock.now()
        deleted = 0
        for row in index_rows:
            user_id = key_of(row)
            entity = self._get(user_id)
            if entity is None or entity["purgeAfter"] > now:
                continue
            try:
                self._table.delete_entity(
                    user_id, ROW, etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified
                )
                deleted += 1
            except HttpResponseError as error:
                if not _precondition_failed(error):
                    raise
        return deleted
