"""Wire models of the offline verifier endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from functions.schemas.base import Body, Payload
from shared.codes.models import LONGEST_TTL_SECONDS, SHORTEST_TTL_SECONDS
from verifier.check import Reason
from verifier.scheme import MAX_CODES_PER_SLOT, MAX_LEASE_HOURS

VERIFIER_ID_PATTERN = r"^[A-Za-z0-9_-]{16}$"
MAX_ENTRIES = 100  # log entries per sync request (the verifier sends its log in chunks)


class EnrolVerifier(Body):
    """POST /api/resources/{resourceId}/verifiers."""

    label: str | None = Field(default=None, min_length=1, max_length=100)
    code_lifetime_seconds: int | None = Field(default=None, ge=SHORTEST_TTL_SECONDS, le=LONGEST_TTL_SECONDS)
    codes_per_slot: int | None = Field(default=None, ge=1, le=MAX_CODES_PER_SLOT)
    lease_hours: int | None = Field(default=None, ge=1, le=MAX_LEASE_HOURS)


class LogEntry(Body):
    entry_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    checked_at: datetime
    outcome: Literal["ok", "fail"]
    reason: Literal[Reason.ACCEPTED, Reason.UNKNOWN, Reason.EXPIRED, Reason.USED, Reason.REVOKED]
    slot: int | None = Field(default=None, ge=0, lt=10**12)
    index: int | None = Field(default=None, ge=0, lt=MAX_CODES_PER_SLOT)

    @model_validator(mode="after")
    def _accepted_names_its_code(self) -> LogEntry:
        if (self.outcome == "ok") != (self.reason == Reason.ACCEPTED):
            raise ValueError("an accepted check has outcome ok, and only it")
        if (self.slot is None) != (self.index is None) or (self.outcome == "ok" and self.slot is None):
            raise ValueError("slot and index come together, and an accepted check has them")
        return self


class SyncLog(Body):
    """POST /api/verifiers/{verifierId}/sync (HTTP Basic: verifierId and secret)."""

    entries: list[LogEntry] = Field(default_factory=list, max_length=MAX_ENTRIES)


class VerifierView(Payload):
    verifier_id: str
    resource_id: str
    label: str
    state: str = Field(description="active or revoked")
    code_lifetime_seconds: int
    codes_per_slot: int
    slot_seconds: int
    lease_hours: int
    created_at: datetime
    revoked_at: datetime | None = None
    last_sync_at: datetime | None = None


class EnrolledVerifierView(VerifierView):
    secret: str = Field(description="shown once; give it to the verifier (python -m verifier enroll)")
    chance_within_lifetime: float = Field(description="a bound on a guesser's chance at the keypad in one lifetime")


class VerifierList(Payload):
    verifiers: list[VerifierView]


class RevokedOfflineCode(Payload):
    slot: int
    index: int
    forget_after: float


class SyncView(Payload):
    server_time: datetime
    lease_seconds: int
    scheme: dict
    revoked: list[RevokedOfflineCode]
    recorded: list[str] = Field(description="the entry ids the service holds now (new or from an earlier upload)")
