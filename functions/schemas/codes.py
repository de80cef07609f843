"""Wire models of the codes and resources endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from functions.schemas.base import Body, Payload
from shared.codes.models import LONGEST_TTL_SECONDS, SHORTEST_TTL_SECONDS
from shared.resources.store import RESOURCE_ID_PATTERN


class IssueCode(Body):
    """POST /api/codes."""

    resource_id: str = Field(pattern=RESOURCE_ID_PATTERN.pattern)
    ttl_seconds: int | None = Field(default=None, ge=SHORTEST_TTL_SECONDS, le=LONGEST_TTL_SECONDS)
    offline: bool = Field(default=False, description="a code the resource's offline verifier checks")
    verifier_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_-]{16}$", description="which verifier, when the resource has several"
    )


class RedeemCode(Body):
    """POST /api/codes/redeem. The code may contain spaces and dashes ("482 913"); any
    other shape gets the same answer as a wrong code."""

    resource_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=32)


class ResourceView(Payload):
    resource_id: str
    name: str
    size: int
    content_type: str
    created_at: datetime
    updated_at: datetime


class RedemptionPressureView(Payload):
    """Guessing on a resource's guest link in the current window."""

    failed_attempts: int = Field(description="failed redemption attempts on this resource in the current window")
    paused: bool = Field(description="the budget is spent: every redemption of it gets 429 until pausedUntil")
    paused_until: datetime | None = None


class ListedResource(ResourceView):
    redemption: RedemptionPressureView


class ResourceList(Payload):
    resources: list[ListedResource]


class RotatedLinkView(Payload):
    resource_id: str = Field(description="the resource's new id; the old one redeems nothing any more")
    redeem_url: str = Field(description="the new guest link, /r/<resourceId>")


class IssuedCodeView(Payload):
    code_id: str
    code: str = Field(description="shown once; never stored")
    display: str = Field(description='for typing, e.g. "482 913"')
    resource_id: str
    expires_at: datetime
    redeem_url: str | None = Field(description="the guest link, /r/<resourceId>; none for an offline code")
    offline: bool = False
    verifier_id: str | None = Field(default=None, description="the verifier that checks an offline code")


class CodeView(Payload):
    code_id: str
    resource_id: str
    state: str = Field(description="active, redeemed, revoked or expired")
    created_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None = None
    revoked_at: datetime | None = None
    offline: bool = False
    verifier_id: str | None = None


class CodeList(Payload):
    codes: list[CodeView]


class RedemptionView(Payload):
    resource_id: str
    download_url: str = Field(description="a read-only link to the file, valid until expiresAt")
    expires_at: datetime
