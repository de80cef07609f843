"""Access codes as values: generation, normalisation, states and what the API shows.
No I/O here."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared import errors
from shared.auth.keys import KeyedHash
from shared.one_time import numeric_code

CODE_DIGITS = 6
CODE_SPACE = 10**CODE_DIGITS
# A code's lifetime bounds (ttlSeconds, CODE_TTL_SECONDS); the brute-force figures hold at the longest.
SHORTEST_TTL_SECONDS = 60
LONGEST_TTL_SECONDS = 3600
HASH_PURPOSE = "access-code"
_CODE_PATTERN = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
_IGNORED = str.maketrans("", "", " -\t\u00a0\u2010\u2011\u2012\u2013")


class CodeState(StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    REVOKED = "revoked"
    EXPIRED = "expired"  # an active code past its end: shown, never set on a code row


class RejectReason(StrEnum):
    """Why a redemption failed: recorded in the audit, never told to the guest."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # no such code for this resource (a code of another resource is one)
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    ISSUER_INACTIVE = "issuer_inactive"


class CodeRejected(errors.InvalidInput):
    """The one answer a guest gets for every failed redemption; `reason` is for the audit."""

    code = "invalid_code"
    message = "This code is not valid for this resource."

    def __init__(self, reason: RejectReason):
        super().__init__()
        self.reason = reason


def new_code() -> str:
    """Six digits from the CSPRNG."""
    return numeric_code(CODE_DIGITS)


def bound_to(resource_id: str, code: str) -> str:
    """What a code's keyed hash is taken of: the code bound to its resource, so it is
    unique per resource and found only through the resource's id."""
    return f"{resource_id}:{code}"


def new_code_id() -> str:
    return secrets.token_urlsafe(12)


def normalise(typed: str) -> str | None:
    """The code as typed, without spaces and dashes; None unless exactly six digits remain."""
    code = (typed or "").translate(_IGNORED)
    return code if _CODE_PATTERN.fullmatch(code) else None


def guest_link(resource_id: str) -> str:
    """The guest link of a resource: what the owner hands out beside a code."""
    return f"/r/{resource_id}"


def display(code: str) -> str:
    """For typing: "482 913"."""
    half = len(code) // 2
    return f"{code[:half]} {code[half:]}"


@dataclass(frozen=True)
class AccessCode:
    """A stored code: everything but its value."""

    code_id: str
    code_hash: str
    key_id: str
    issuer_id: str
    resource_id: str
    created_at: datetime
    expires_at: datetime
    state: CodeState
    redeemed_at: datetime | None = None
    revoked_at: datetime | None = None
    # what the download link needs, copied from the resource at issuance (resources are
    # never deleted and keep their owner), so redemption does not read the resource
    resource_name: str = ""
    content_type: str = ""
    blob_name: str = ""  # the file's blob; rows from before it was copied: the resource id

    @property
    def keyed_hash(self) -> KeyedHash:
        """What its code row is stored under."""
        return KeyedHash(self.key_id, self.code_hash)

    @property
    def blob(self) -> str:
        """The blob the download link names."""
        return self.blob_name or self.resource_id

    def state_at(self, now: datetime) -> CodeState:
        if self.state is CodeState.ACTIVE and now >= self.expires_at:
            return CodeState.EXPIRED
        return self.state

    def view(self, now: datetime) -> dict:
        """What the issuer sees: state and times, never the value."""
        return {
            "codeId": self.code_id,
            "resourceId": self.resource_id,
            "state": self.state_at(now).value,
            "createdAt": self.created_at,
            "expiresAt": self.expires_at,
            "redeemedAt": self.redeemed_at,
            "revokedAt": self.revoked_at,
        }


@dataclass(frozen=True)
class IssuedCode:
    code: str
    code_id: str
    resource_id: str
    expires_at: datetime
    attempts: int  # 1 + collision retries

    @property
    def display(self) -> str:
        return display(self.code)

    @property
    def redeem_url(self) -> str:
        return guest_link(self.resource_id)

    def public(self) -> dict:
        return {
            "codeId": self.code_id,
            "code": self.code,
            "display": self.display,
            "resourceId": self.resource_id,
            "expiresAt": self.expires_at,
            "redeemUrl": self.redeem_url,
        }


@dataclass(frozen=True)
class Redemption:
    resource_id: str
    download_url: str
    expires_at: datetime
    code_id: str

    def public(self) -> dict:
        return {"resourceId": self.resource_id, "downloadUrl": self.download_url, "expiresAt": self.expires_at}


@dataclass(frozen=True)
class RotatedLink:
    """A resource moved to a new id because its guest link leaked."""

    resource_id: str  # the new id
    previous_id: str
    revoked: int  # codes of the old id that this rotation revoked

    def public(self) -> dict:
        return {"resourceId": self.resource_id, "redeemUrl": guest_link(self.resource_id)}
