"""The use cases of access codes: issue, redeem exactly once, list, revoke, purge.

Security rules live here, in one place:
- a code is 6 digits from `secrets`, stored only as an HMAC under a key id;
- among a resource's active codes it is unique (insert-if-absent on the hash of resource
  id and code, retry on collision; a row whose code is dead may be taken over,
  ETag-conditionally), so no total of active codes is capped by the 6-digit space;
- redemption needs the resource id and the code, reads the code's row in the resource's
  partition (one query, with the resource's attempts row), and marks the code redeemed
  with an ETag-conditional update, so exactly one of many racers wins;
- a guest gets one answer for every failure; the audit records the reason;
- every state change writes one audit event, which never holds the code.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import Executor, wait
from contextlib import suppress
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from azure.core.exceptions import AzureError

from shared import errors
from shared.audit import AuditEvent, AuditEventType, AuditLog
from shared.auth.keys import KeyRing
from shared.clock import Clock
from shared.codes.models import (
    HASH_PURPOSE,
    LONGEST_TTL_SECONDS,
    AccessCode,
    CodeRejected,
    CodeState,
    IssuedCode,
    Redemption,
    RejectReason,
    RotatedLink,
    bound_to,
    new_code,
    new_code_id,
    normalise,
)
from shared.codes.slots import ActiveCodeSlots
from shared.codes.store import CodeStore, RedemptionView, StoredCode
from shared.limits.sources import UNPARSABLE
from shared.optimistic import LostRace, retry_lost_races
from shared.resources.downloads import DownloadSigner
from shared.resources.store import RESOURCE_ID_PATTERN, ResourceStore

if TYPE_CHECKING:
    from shared.limits.ratelimit import Claim

# Issuing gives up after this many collisions in a row (at 10% occupancy: 1e-20).
MAX_ISSUE_ATTEMPTS = 20
# The longest a code can live (the bound on ttlSeconds and CODE_TTL_SECONDS), plus slack
# for clocks: a code issued longer ago than this is dead.
MAX_CODE_LIFETIME = timedelta(seconds=LONGEST_TTL_SECONDS, minutes=5)
CLEANUP_ACTOR = "system:cleanup"
# Tries of a revocation that racing redemptions or revocations may beat.
REVOKE_TRIES = 5
# Tries of a redemption that racing tries on the same resource beat (each reads again,
# after a short random pause that spreads the racers out); past them the guest is asked
# to try again (429), having learnt nothing.
REDEEM_TRIES = 50
LOST_RACE_PAUSE_MS = 10
# How long a claimed slot waits for its code to be stored before another issue may take it.
ISSUING_GRACE = timedelta(seconds=30)


class IssuerDirectory(Protocol):
    """What codes need to know about accounts: may this user's codes still be used?"""

    def is_active(self, user_id: str) -> bool: ...


class CodeLimits(Protocol):
    """Abuse limits around codes (shared.limits.guard.AbuseGuard). `source` is the guest's
    or issuer's source (shared/limits/sources.py); the reservations may raise
    errors.TooManyRequests."""

    def reserve_issuance(self, user_id: str, source: str) -> None: ...

    def reserve_redemption(self, source: str) -> Claim: ...

    def give_back(self, claim: Claim) -> None: ...

    def check_resource_attempts(self, row: dict | None, source: str) -> None: ...

    def resource_attempt(self, row: dict | None, source: str, *, failed: bool) -> dict: ...

    def resource_pressure(self, row: dict | None) -> dict: ...

    def redemption_failed(self) -> None: ...


class CodeService:
    def __init__(
        self,
        store: CodeStore,
        resources: ResourceStore,
        issuers: IssuerDirectory,
        signer: DownloadSigner,
        audit: AuditLog,
        keys: KeyRing,
        clock: Clock,
        pool: Executor,
        *,
        default_ttl: timedelta,
        slots: ActiveCodeSlots,
        abuse: CodeLimits,
        actor_for_source: Callable[[str], str],
        generate: Callable[[], str] = new_code,
    ):
        self._store = store
        self._resources = resources
        self._issuers = issuers
        self._signer = signer
        self._audit = audit
        self._keys = keys
        self._clock = clock
        self._pool = pool
        self._default_ttl = default_ttl
        self._slots = slots
        self._abuse = abuse
        self._actor_for_source = actor_for_source  # how a source appears in the audit: a keyed hash
        self._generate = generate  # randomness comes in here: tests shrink the code space

    # --- issue ------------------------------------------------------------------------

    def issue(
        self,
        issuer_id: str,
        resource_id: str,
        ttl: timedelta | None = None,
        *,
        source: str = UNPARSABLE,
        request_id: str | None = None,
    ) -> IssuedCode:
        """A new code for one of the issuer's resources; the value is returned only here.
        A resource has at most MAX_ACTIVE_CODES_PER_RESOURCE active codes, strictly (a slot
        is claimed before the code is stored; the brute-force figures rely on it)."""
        # the resource and its slots are read beside the reservations: nothing is written,
        # and nothing said, before ownership is checked
        resource_read = self._pool.submit(self._resources.owned, issuer_id, resource_id)
        slots_read = self._pool.submit(self._slots.held, resource_id)
        self._abuse.reserve_issuance(issuer_id, source)
        resource = resource_read.result()
        now = self._clock.now()
        code_id = new_code_id()
        expires_at = now + (ttl or self._default_ttl)
        holder = {"codeId": code_id, "issuerId": issuer_id, "expiresAt": expires_at, "claimedAt": now}
        slots = slots_read.result()
        if not self._slots.claim(resource_id, slots, holder, now=now, still_active=self._slot_still_active):
            raise errors.Conflict(
                f"This resource already has {self._slots.per_resource} active codes; revoke one or wait.",
                code="too_many_active_codes",
            )
        for attempt in range(1, MAX_ISSUE_ATTEMPTS + 1):
            value = self._generate()
            hashed = self._keys.hash(HASH_PURPOSE, bound_to(resource.resource_id, value))
            code = AccessCode(
                code_id=code_id,
                code_hash=hashed.digest,
                key_id=hashed.key_id,
                issuer_id=issuer_id,
                resource_id=resource.resource_id,
                created_at=now,
                expires_at=expires_at,
                state=CodeState.ACTIVE,
                resource_name=resource.name,
                content_type=resource.content_type,
                blob_name=resource.blob_name,
            )
            etag = self._claim(code)
            if etag is not None and self._unique_across_keys(code, value):
                # The insert is the uniqueness check, so the code row comes first; the index
                # row then carries the ETag the row got, so cleanup deletes an unused code
                # without reading it. A crash before the index row is stored leaves rows
                # nobody deletes: harmless (the code's state follows from expiresAt, a later
                # code with the same hash takes the row over, its owner row shows it expired).
                # The index row, the owner row and the audit line side by side.
                index_row = self._pool.submit(self._store.register_expiry, code, etag)
                owner_row = self._pool.submit(self._store.add_owner_row, code)
                audited = self._pool.submit(
                    self._audit.record,
                    AuditEventType.ISSUE,
                    "ok",
                    actor=issuer_id,
                    code_id=code_id,
                    resource_id=resource.resource_id,
                    request_id=request_id,
                    details={"attempts": attempt, "ttlSeconds": int((expires_at - now).total_seconds())},
                )
                try:
                    index_row.result()
                except AzureError:
                    # cleanup could never find this code: leave nothing of it behind
                    wait([owner_row])
                    self._store.discard(code)
                    raise
                owner_row.result()
                audited.result()
                return IssuedCode(value, code_id, resource.resource_id, expires_at, attempts=attempt)
        raise errors.StorageUnavailable("Could not find a free code; try again.")

    def _slot_still_active(self, slot: dict) -> bool:
        """Whether the code holding a resource's slot is still active. A code not stored
        yet is being issued, and holds its slot; one whose issuing failed holds it only for
        ISSUING_GRACE."""
        row = self._store.owner_row(slot["issuerId"], slot["codeId"])
        if row is None:
            return self._clock.now() - slot["claimedAt"] < ISSUING_GRACE
        return self._settled([row])[0].state_at(self._clock.now()) is CodeState.ACTIVE

    def _claim(self, code: AccessCode) -> str | None:
        """Insert the row; on a collision take over the row only if its code is dead.
        The row's ETag once it is ours, else None."""
        etag = self._store.insert(code)
        if etag is not None:
            return etag
        previous = self._store.read(code.resource_id, code.keyed_hash)
        if previous is None:
            return None  # deleted in between: draw again
        now = self._clock.now()
        state = previous.code.state_at(now)
        etag = self._store.take_over(code, previous) if state is not CodeState.ACTIVE else None
        if etag is None:
            return None
        if state is CodeState.EXPIRED:
            # the row of an unused expired code is gone now: its expire event is ours to write
            self._audit_expired([previous.code])
        self._store.mirror_state(previous.code, state, now)
        return etag

    def _unique_across_keys(self, code: AccessCode, value: str) -> bool:
        """During a key rotation the same code may be stored under another key: back off."""
        for other in self._keys.candidates(HASH_PURPOSE, bound_to(code.resource_id, value)):
            if other.key_id == code.key_id:
                continue
            found = self._store.read(code.resource_id, other)
            if found is not None and found.code.state_at(self._clock.now()) is CodeState.ACTIVE:
                self._store.delete_row(code)
                return False
        return True

    # --- redeem -----------------------------------------------------------------------

    def redeem(self, resource_id: str, typed_code: str, *, source: str, request_id: str | None = None) -> Redemption:
        """Redeem a code for a resource, at most once. `source` is the guest's source (the
        limits count it; the audit shows a keyed hash of it)."""
        value = normalise(typed_code)
        resource_id = resource_id if RESOURCE_ID_PATTERN.match(resource_id or "") else None
        candidates = self._keys.candidates(HASH_PURPOSE, bound_to(resource_id, value)) if value and resource_id else []
        # the resource's rows are read side by side with the source's reservation, which
        # is taken before any answer
        first_view = self._pool.submit(self._store.redemption_view, resource_id, candidates) if resource_id else None
        claim = self._abuse.reserve_redemption(source)
        client = self._actor_for_source(source)
        try:
            redeemed = self._settle(
                resource_id, candidates, first_view, source=source, client=client, request_id=request_id
            )
        except CodeRejected:
            self._abuse.redemption_failed()
            raise
        except Exception:
            # refused by the resource's budget, or storage failed: not this source's failure
            self._abuse.give_back(claim)
            raise
        # a redeemed code counts against no failure budget; giving back goes beside the audit
        given_back = self._pool.submit(self._abuse.give_back, claim)
        code = redeemed.code
        download_url, download_expires_at = self._signer.url(
            self._resources.container_name, code.blob, code.resource_name, code.content_type
        )
        try:
            self._audit.record(
                AuditEventType.REDEEM,
                "ok",
                actor=client,
                user_id=code.issuer_id,
                code_id=code.code_id,
                resource_id=code.resource_id,
                request_id=request_id,
            )
        except Exception:
            # Nothing is acknowledged without its audit line: give the code back (if the
            # row is still as we left it) so the guest can try again once storage answers.
            self._store.transition(redeemed, state=CodeState.ACTIVE.value, redeemedAt=None, redeemedBy=None)
            raise
        with suppress(AzureError):
            given_back.result()  # lost, it only counts this success as a failure: the safe side
        return Redemption(code.resource_id, download_url, download_expires_at, code.code_id)

    def _settle(self, resource_id: str | None, candidates, first_view, source: str, *, client: str, request_id):
        """Judge the try on what the resource's partition holds and write the outcome (the
        attempts row, and the code when it is redeemed) in one transaction; read again and
        judge again when a racing try wrote first. The redeemed code, or CodeRejected."""

        def reject(reason: RejectReason, code: AccessCode | None = None) -> CodeRejected:
            self._audit.record(
                AuditEventType.REDEEM,
                "fail",
                reason=reason.value,
                actor=client,
                user_id=code.issuer_id if code else None,
                code_id=code.code_id if code else None,
                resource_id=resource_id,
                request_id=request_id,
            )
            return CodeRejected(reason)

        if resource_id is None:
            raise reject(RejectReason.UNKNOWN)  # no resource has such an id: nothing to read or count
        for tried in range(REDEEM_TRIES):
            if first_view is not None:
                view, first_view = first_view.result(), None
            else:
                time.sleep(secrets.randbelow(min(LOST_RACE_PAUSE_MS, tried) + 1) / 1000)
                view = self._store.redemption_view(resource_id, candidates)
            self._abuse.check_resource_attempts(view.attempts, source)
            stored, reason = self._judge(view, has_candidates=bool(candidates))
            counted = self._abuse.resource_attempt(view.attempts, source, failed=reason is not None)
            if reason is not None:
                if self._store.settle_attempt(resource_id, view, counted):
                    raise reject(reason, stored.code if stored else None)
                continue
            now = self._clock.now()
            redeemed = self._store.settle_attempt(
                resource_id, view, counted, stored, state=CodeState.REDEEMED.value, redeemedAt=now, redeemedBy=client
            )
            if redeemed:
                return redeemed
        raise errors.TooManyRequests(1, "Many tries on this resource at once; try again in a moment.")

    def _judge(self, view: RedemptionView, *, has_candidates: bool) -> tuple[StoredCode | None, RejectReason | None]:
        """The code row a try names and why it fails (None: it redeems)."""
        if not has_candidates:
            return None, RejectReason.MALFORMED
        if not view.codes:
            return None, RejectReason.UNKNOWN
        stored = view.codes[0]
        code = stored.code
        if code.state is CodeState.REVOKED:
            return stored, RejectReason.REVOKED
        if code.state is CodeState.REDEEMED:
            return stored, RejectReason.USED
        if self._clock.now() >= code.expires_at:
            return stored, RejectReason.EXPIRED
        if not self._issuers.is_active(code.issuer_id):
            return stored, RejectReason.ISSUER_INACTIVE
        return stored, None

    def redemption_pressure(self, resource_id: str) -> dict:
        """What the owner sees of guessing on a resource (shared.limits.guard)."""
        return self._abuse.resource_pressure(self._store.attempts(resource_id))

    # --- list and revoke -----------------------------------------------------------------

    def list(self, issuer_id: str) -> list[dict]:
        """The issuer's codes with their state (never their values), newest first: one
        query of the issuer's partition, then the reads `_settled` needs."""
        now = self._clock.now()
        codes = self._settled(self._store.owner_rows(issuer_id))
        return [code.view(now) for code in sorted(codes, key=lambda c: c.created_at, reverse=True)]

    def _settled(self, rows: list[AccessCode]) -> list[AccessCode]:
        """Owner rows with their codes' current state. Redemption does not write the owner
        row, to keep that path short, so a row that says active is checked against its
        code row: one point read each, side by side."""
        unsettled = [row for row in rows if row.state is CodeState.ACTIVE]
        current = dict(zip([r.code_id for r in unsettled], self._pool.map(self._current, unsettled), strict=True))
        return [current.get(row.code_id) or row for row in rows]

    def _current(self, row: AccessCode) -> AccessCode | None:
        stored = self._store.read(row.resource_id, row.keyed_hash)
        return stored.code if stored is not None and stored.code.code_id == row.code_id else None

    def revoke(self, issuer_id: str, code_id: str, *, request_id: str | None = None, actor: str | None = None) -> dict:
        """Revoke one of the issuer's codes. Revoking a revoked code is a no-op; a redeemed
        or expired one cannot be revoked (409). `actor` (default: the issuer) is who did it."""
        row = self._store.owner_row(issuer_id, code_id) if code_id else None
        if row is None:
            raise errors.NotFound("No such code.", code="code_not_found")

        def attempt() -> dict:
            now = self._clock.now()
            stored = self._store.read(row.resource_id, row.keyed_hash)
            if stored is None or stored.code.code_id != code_id:
                state = row.state_at(now)
                if state is CodeState.REVOKED:
                    return row.view(now)
                raise errors.Conflict("The code is no longer active.", code="code_not_active")
            state = stored.code.state_at(now)
            if state is CodeState.REVOKED:
                return stored.code.view(now)
            if state is not CodeState.ACTIVE:
                raise errors.Conflict(f"The code is {state.value}; it cannot be revoked.", code="code_not_active")
            if self._store.transition(stored, state=CodeState.REVOKED.value, revokedAt=now) is None:
                raise LostRace  # redeemed, revoked or changed meanwhile: decide again
            self._store.mirror_state(stored.code, CodeState.REVOKED, now)
            self._audit.record(
                AuditEventType.REVOKE,
                "ok",
                actor=actor or issuer_id,
                user_id=issuer_id if actor and actor != issuer_id else None,
                code_id=code_id,
                resource_id=row.resource_id,
                request_id=request_id,
            )
            return replace(stored.code, state=CodeState.REVOKED, revoked_at=now).view(now)

        busy = errors.Conflict("The code changed while revoking it; try again.", code="code_busy")
        return retry_lost_races(attempt, tries=REVOKE_TRIES, exhausted=busy)

    def revoke_by_id(self, code_id: str, *, actor: str, request_id: str | None = None) -> dict:
        """Revoke any code by its id alone (the admin console). A code that can still be
        used was issued less than MAX_CODE_LIFETIME ago, so the `issue` event in the audit
        names its issuer: that read replaces an index by code id. An older or unknown id is
        NotFound, since no such code can be active."""
        now = self._clock.now()
        issued = [
            event
            for event in self._audit.read(
                now - MAX_CODE_LIFETIME, now + timedelta(seconds=1), types={AuditEventType.ISSUE}
            )
            if event.code_id == code_id and event.outcome == "ok"
        ]
        if not code_id or not issued or issued[-1].actor is None:
            raise errors.NotFound("No code with this id was issued in the last hour.", code="code_not_found")
        return self.revoke(issued[-1].actor, code_id, request_id=request_id, actor=actor)

    # --- rotate a leaked guest link -----------------------------------------------------

    def rotate_link(self, owner_id: str, resource_id: str, *, request_id: str | None = None) -> RotatedLink:
        """Move the owner's resource to a new id: the old guest link redeems nothing any
        more, the file stays. Others' and unknown ids are NotFound."""
        # Redemption reads only the code row, so the old id dies with its codes, not its row.
        # Revoke first, so a crash at any later step leaves no code of the old id live; the
        # move then stops new codes for it; a second pass revokes codes whose issuing read
        # the old row before it moved. Revoking lists only the caller's own codes.
        revoked = self._revoke_codes_of(owner_id, resource_id, request_id=request_id)
        moved = self._resources.rotate_id(owner_id, resource_id)
        revoked += self._revoke_codes_of(owner_id, resource_id, request_id=request_id)
        self._audit.record(
            AuditEventType.LINK_ROTATE,
            "ok",
            actor=owner_id,
            resource_id=resource_id,
            request_id=request_id,
            details={"newResourceId": moved.resource_id, "revokedCodes": revoked},
        )
        return RotatedLink(moved.resource_id, resource_id, revoked)

    def _revoke_codes_of(self, owner_id: str, resource_id: str, *, request_id: str | None) -> int:
        """Revoke the owner's live codes of a resource (one `revoke` event each; a resource
        has only a few); how many were revoked."""
        now = self._clock.now()
        rows = self._store.owner_rows(owner_id, resource_id=resource_id, live_at=now)
        revoked = 0
        for row in rows:
            if row.state_at(now) is not CodeState.ACTIVE:
                continue
            try:
                self.revoke(owner_id, row.code_id, request_id=request_id)
                revoked += 1
            except errors.NotFound:
                pass  # cleaned up meanwhile
            except errors.Conflict as refusal:
                if refusal.code != "code_not_active":
                    raise
                # redeemed or expired meanwhile
        return revoked

    # --- cleanup ------------------------------------------------------------------------

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup of expired codes; one `expire` event per code that expired unused."""
        self._audit_expired(self._store.remove_expired(index_rows))
        return len(index_rows)

    def _audit_expired(self, codes: list[AccessCode]) -> None:
        if not codes:
            return
        now = self._clock.now()
        self._audit.write_many(
            [
                AuditEvent(
                    time=now,
                    type=AuditEventType.EXPIRE,
                    outcome="ok",
                    reason="unused",
                    actor=CLEANUP_ACTOR,
                    user_id=code.issuer_id,
                    code_id=code.code_id,
                    resource_id=code.resource_id,
                )
                for code in codes
            ]
        )
