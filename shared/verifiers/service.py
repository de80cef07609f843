"""Offline verifiers: enrol, list, revoke; issue and revoke offline codes; take a
verifier's sync. The codes themselves are derived in `verifier.scheme`, which the
verifier program shares.

- A verifier's secret is never stored: it is the keyed hash of the verifier id under a
  Key Vault key (`keyId` in the record). When that key leaves the key ring, the secret
  cannot be derived any more and the verifier must be enrolled again.
- An offline code is a (slot, index) handed out once (the row insert decides), for the
  slot the issue falls in; when a slot's codes are all out, the next slot starts soon.
- An uploaded log entry becomes one `redeem` event (`details.offline`), once: the entry's
  row is claimed before the audit write and marked recorded after it, and a re-upload of
  a recorded entry adds nothing. Only a crash between the audit write and the mark can
  repeat an event (the claim stays unrecorded, so the next upload writes it again).
"""

from __future__ import annotations

import hmac
import secrets
from concurrent.futures import Executor
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared import errors
from shared.audit import AuditEvent, AuditEventType, AuditLog
from shared.auth.keys import KeyRing
from shared.clock import Clock
from shared.codes.models import display
from shared.housekeeping.expiry import ExpiryIndex, ExpiryKind, key_of
from shared.resources.store import Resource, ResourceStore
from shared.verifiers.store import (
    Verifier,
    VerifierStore,
    code_row_key,
    offline_code_id,
    parse_offline_code_id,
    slot_index_of,
    verifier_partition,
)
from verifier.scheme import DEFAULT_CODES_PER_SLOT, DEFAULT_LEASE_HOURS, Scheme, secret_bytes, secret_text

SECRET_PURPOSE = "verifier-secret"  # noqa: S105 - the name of a key derivation, not a secret
VERIFIER_ID_BYTES = 8
# An uploaded entry's row is kept this long past the lease, for re-uploads after a lost answer.
ENTRY_KEPT = timedelta(days=1)


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class VerifierService:
    def __init__(
        self,
        store: VerifierStore,
        resources: ResourceStore,
        keys: KeyRing,
        audit: AuditLog,
        expiry: ExpiryIndex,
        clock: Clock,
        pool: Executor,
        *,
        reserve_issuance,  # AbuseGuard.reserve_issuance: offline codes count against the same limits
        default_lifetime: timedelta,
    ):
        self._store = store
        self._resources = resources
        self._keys = keys
        self._audit = audit
        self._expiry = expiry
        self._clock = clock
        self._pool = pool
        self._reserve_issuance = reserve_issuance
        self._default_lifetime = default_lifetime

    # --- enrolment ------------------------------------------------------------------------

    def secret_of(self, verifier: Verifier) -> str | None:
        """The verifier's secret (base32), or None once its key has left the key ring."""
        if verifier.key_id not in self._keys.key_ids:
            return None
        digest = self._keys.hash(SECRET_PURPOSE, verifier.verifier_id, verifier.key_id).digest
        return secret_text(bytes.fromhex(digest))

    def enrol(
        self,
        owner_id: str,
        resource_id: str,
        *,
        label: str | None = None,
        lifetime_seconds: int | None = None,
        codes_per_slot: int | None = None,
        lease_hours: int | None = None,
        request_id: str | None = None,
    ) -> dict:
        """Enrol a verifier for one of the owner's resources; the secret is shown only here."""
        resource = self._resources.owned(owner_id, resource_id)
        scheme = Scheme(
            lifetime_seconds or int(self._default_lifetime.total_seconds()), codes_per_slot or DEFAULT_CODES_PER_SLOT
        )
        verifier = Verifier(
            # hex: an id that starts with "-" would read as an option on the verifier's command line
            verifier_id=secrets.token_hex(VERIFIER_ID_BYTES),
            owner_id=owner_id,
            blob_name=resource.blob_name,
            label=label or resource.name,
            key_id=self._keys.active_key_id,
            scheme=scheme,
            lease_hours=lease_hours or DEFAULT_LEASE_HOURS,
            created_at=self._clock.now(),
        )
        self._store.add(verifier)
        self._audit.record(
            AuditEventType.VERIFIER_ENROL, "ok", actor=owner_id, resource_id=resource.resource_id,
            request_id=request_id, details={"verifierId": verifier.verifier_id, "codesPerSlot": scheme.codes_per_slot},
        )  # fmt: skip
        return {
            **verifier.public(),
            "resourceId": resource.resource_id,
            "secret": self.secret_of(verifier),
            "chanceWithinLifetime": scheme.chance_within_lifetime(),
        }

    def list(self, owner_id: str, resource_id: str) -> list[dict]:
        resource = self._resources.owned(owner_id, resource_id)
        return [v.public() | {"resourceId": resource.resource_id} for v in self._of_resource(owner_id, resource)]

    def revoke(self, owner_id: str, resource_id: str, verifier_id: str, *, request_id: str | None = None) -> dict:
        """Revoke a verifier: its next sync is refused, so it stops at the end of its lease."""
        resource = self._resources.owned(owner_id, resource_id)
        verifier = self._owned(owner_id, verifier_id, resource)
        if verifier.revoked_at is None:
            now = self._clock.now()
            self._store.mark(verifier_id, revokedAt=now)
            self._audit.record(
                AuditEventType.VERIFIER_REVOKE, "ok", actor=owner_id, resource_id=resource.resource_id,
                request_id=request_id, details={"verifierId": verifier_id},
            )  # fmt: skip
            verifier = replace(verifier, revoked_at=now)
        return verifier.public() | {"resourceId": resource.resource_id}

    def _of_resource(self, owner_id: str, resource: Resource) -> list[Verifier]:
        found = self._pool.map(self._store.get, self._store.owned_by(owner_id))
        return [v for v in found if v is not None and v.blob_name == resource.blob_name]

    def _owned(self, owner_id: str, verifier_id: str, resource: Resource | None = None) -> Verifier:
        verifier = self._store.get(verifier_id) if verifier_id else None
        if verifier is None or verifier.owner_id != owner_id or (resource and verifier.blob_name != resource.blob_name):
            raise errors.NotFound("No such verifier.", code="verifier_not_found")
        return verifier

    # --- offline codes ----------------------------------------------------------------------

    def issue(
        self,
        owner_id: str,
        resource_id: str,
        *,
        verifier_id: str | None = None,
        ttl_seconds: int | None = None,
        source: str,
        request_id: str | None = None,
    ) -> dict:
        """An offline code for a verifier of the owner's resource (its only active one when
        `verifier_id` is not given). The code is returned only here."""
        resource_read = self._pool.submit(self._resources.owned, owner_id, resource_id)
        self._reserve_issuance(owner_id, source)
        resource = resource_read.result()
        verifier = self._issuing_verifier(owner_id, resource, verifier_id)
        scheme = verifier.scheme
        if ttl_seconds is not None and ttl_seconds != scheme.lifetime_seconds:
            raise errors.InvalidInput(
                f"An offline code lives as long as its verifier says: ttlSeconds {scheme.lifetime_seconds}.",
                code="offline_ttl_fixed",
            )
        now = self._clock.now()
        slot = scheme.slot_at(now.timestamp())
        expires_at = _moment(scheme.expires_at(slot))
        fields = {"issuerId": owner_id, "issuedAt": now, "expiresAt": expires_at}
        handed_out = (
            i for i in range(scheme.codes_per_slot) if self._store.hand_out(verifier.verifier_id, slot, i, **fields)
        )
        index = next(handed_out, None)
        if index is None:
            next_slot = (slot + 1) * scheme.slot_seconds - now.timestamp()
            raise errors.TooManyRequests(
                next_slot, "This verifier's offline codes for now are all issued.", code="offline_codes_busy"
            )
        code_id = offline_code_id(verifier.verifier_id, slot, index)
        forget = _moment(scheme.forget_after(slot)) + timedelta(hours=verifier.lease_hours)
        self._expiry.add(ExpiryKind.VERIFIER, f"{verifier.verifier_id}|{code_row_key(slot, index)}", forget)
        self._audit.record(
            AuditEventType.ISSUE, "ok", actor=owner_id, code_id=code_id, resource_id=resource.resource_id,
            request_id=request_id,
            details={"offline": True, "verifierId": verifier.verifier_id, "ttlSeconds": scheme.lifetime_seconds},
        )  # fmt: skip
        code = scheme.code(secret_bytes(self.secret_of(verifier)), slot, index)
        return {
            "codeId": code_id, "code": code, "display": display(code), "resourceId": resource.resource_id,
            "expiresAt": expires_at, "redeemUrl": None, "offline": True, "verifierId": verifier.verifier_id,
        }  # fmt: skip

    def _issuing_verifier(self, owner_id: str, resource: Resource, verifier_id: str | None) -> Verifier:
        if verifier_id:
            candidates = [self._owned(owner_id, verifier_id, resource)]
        else:
            candidates = [v for v in self._of_resource(owner_id, resource) if v.revoked_at is None]
            if len(candidates) != 1:
                raise errors.InvalidInput(
                    "Name the verifier (verifierId): this resource has "
                    f"{'no' if not candidates else len(candidates)} active verifiers.",
                    code="verifier_required",
                )
        verifier = candidates[0]
        if verifier.revoked_at is not None or self.secret_of(verifier) is None:
            raise errors.Conflict("This verifier is revoked or must be enrolled again.", code="verifier_inactive")
        return verifier

    def codes(self, owner_id: str) -> list[dict]:
        """The owner's offline codes with their state (as far as the service knows: a
        redemption shows once the verifier has synced), never their values."""
        verifier_ids = self._store.owned_by(owner_id)
        if not verifier_ids:
            return []
        now = self._clock.now()
        current_ids = self._current_resource_ids(owner_id)
        views = []
        for verifier in filter(None, self._pool.map(self._store.get, verifier_ids)):
            for row in self._store.codes_since(verifier.verifier_id, 0):
                views.append(_code_view(verifier, row, current_ids.get(verifier.blob_name), now))
        return views

    def _current_resource_ids(self, owner_id: str) -> dict[str, str]:
        """The owner's resources' ids now, by blob: a link rotation moves the id, not the blob."""
        return {r.blob_name: r.resource_id for r in self._resources.list(owner_id)}

    def revoke_code(self, owner_id: str, code_id: str, *, request_id: str | None = None) -> dict:
        """Revoke an offline code: the verifier refuses it from its next sync on."""
        parsed = parse_offline_code_id(code_id)
        verifier = self._store.get(parsed[0]) if parsed else None
        row = self._store.code(*parsed) if verifier is not None and verifier.owner_id == owner_id else None
        if row is None:
            raise errors.NotFound("No such code.", code="code_not_found")
        now = self._clock.now()
        state = _state_of(row, now)
        if state == "active":
            if not self._store.change_code(row, revokedAt=now):
                raise errors.Conflict("The code changed while revoking it; try again.", code="code_busy")
            row = {**row, "revokedAt": now}
            self._audit.record(
                AuditEventType.REVOKE, "ok", actor=owner_id, code_id=code_id, request_id=request_id,
                details={"offline": True, "verifierId": verifier.verifier_id},
            )  # fmt: skip
        elif state != "revoked":
            raise errors.Conflict(f"The code is {state}; it cannot be revoked.", code="code_not_active")
        return _code_view(verifier, row, self._current_resource_ids(owner_id).get(verifier.blob_name), now)

    # --- sync -----------------------------------------------------------------------------

    def sync(
        self, verifier_id: str, credentials: tuple[str, str], entries: list[dict], *, request_id: str | None = None
    ) -> dict:
        """A verifier uploads its log and learns the revocations, its scheme, the time and
        a new lease. `credentials` are its id and secret; an unknown verifier, another's id
        and a wrong secret are one 401; a revoked verifier is 403."""
        presented_id, secret = credentials
        verifier = self._store.get(verifier_id) if presented_id == verifier_id else None
        expected = self.secret_of(verifier) if verifier else None
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            raise errors.Unauthenticated("Unknown verifier or wrong secret: enrol it again.", code="verifier_unknown")
        if verifier.revoked_at is not None:
            raise errors.Forbidden("This verifier was revoked.", code="verifier_revoked")
        now = self._clock.now()
        claimed = list(self._pool.map(lambda e: self._store.claim_entry(verifier_id, e["entryId"]), entries))
        new = [entry for entry, fresh in zip(entries, claimed, strict=True) if fresh]
        if new:
            self._record(verifier, new, now, request_id)
        scheme = verifier.scheme
        self._store.mark(verifier_id, lastSyncAt=now)
        live = scheme.live_slots(now.timestamp())
        revoked_rows = [row for row in self._store.codes_since(verifier_id, live.start) if row.get("revokedAt")]
        revoked = [
            {"slot": slot, "index": index, "forgetAfter": scheme.forget_after(slot)}
            for slot, index in map(slot_index_of, (row["RowKey"] for row in revoked_rows))
        ]
        return {
            "serverTime": now.isoformat(),
            "leaseSeconds": verifier.lease_hours * 3600,
            "scheme": scheme.to_dict(),
            "revoked": revoked,
            "recorded": [entry["entryId"] for entry in entries],
        }

    def _record(self, verifier: Verifier, entries: list[dict], now: datetime, request_id: str | None) -> None:
        resource_id = self._current_resource_ids(verifier.owner_id).get(verifier.blob_name)
        events = []
        for entry in entries:
            found = entry.get("slot") is not None and entry.get("index") is not None
            code_id = offline_code_id(verifier.verifier_id, entry["slot"], entry["index"]) if found else None
            events.append(
                AuditEvent(
                    time=now, type=AuditEventType.REDEEM, outcome=entry["outcome"],
                    reason=None if entry["outcome"] == "ok" else entry["reason"],
                    actor=f"verifier:{verifier.verifier_id}", user_id=verifier.owner_id, code_id=code_id,
                    resource_id=resource_id, request_id=request_id,
                    details={
                        "offline": True, "verifierId": verifier.verifier_id, "entryId": entry["entryId"],
                        "checkedAt": entry["checkedAt"].isoformat(),
                    },
                )
            )  # fmt: skip
        self._audit.write_many(events)
        self._store.entries_recorded(verifier.verifier_id, [entry["entryId"] for entry in entries])
        kept_until = now + timedelta(hours=verifier.lease_hours) + ENTRY_KEPT
        for entry in entries:
            self._expiry.add(ExpiryKind.VERIFIER, f"{verifier.verifier_id}|entry:{entry['entryId']}", kept_until)
            if entry["outcome"] == "ok":
                row = self._store.code(verifier.verifier_id, entry["slot"], entry["index"])
                if row is not None and not row.get("redeemedAt"):
                    self._store.change_code(row, redeemedAt=entry["checkedAt"])

    # --- cleanup --------------------------------------------------------------------------

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: offline code rows and uploaded entries past what they were kept for."""
        for row in index_rows:
            verifier_id, _, row_key = key_of(row).partition("|")
            self._store.delete_row(verifier_partition(verifier_id), row_key)
        return len(index_rows)


def _state_of(row: dict, now: datetime) -> str:
    if row.get("redeemedAt"):
        return "redeemed"
    if row.get("revokedAt"):
        return "revoked"
    return "expired" if now >= row["expiresAt"] else "active"


def _code_view(verifier: Verifier, row: dict, resource_id: str | None, now: datetime) -> dict:
    slot, index = slot_index_of(row["RowKey"])
    return {
        "codeId": offline_code_id(verifier.verifier_id, slot, index),
        "resourceId": resource_id,
        "state": _state_of(row, now),
        "createdAt": row["issuedAt"],
        "expiresAt": row["expiresAt"],
        "redeemedAt": row.get("redeemedAt"),
        "revokedAt": row.get("revokedAt"),
        "offline": True,
        "verifierId": verifier.verifier_id,
    }
