"""Query models of the admin read-outs (GET /api/admin/audit, GET /api/admin/jobs, and the
console's pages that show the same): unknown parameters are refused, like every request
model."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# the start of an ISO 8601 date-time; pydantic alone would also read "0.5" as Unix time
ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")
EARLIEST_AUDIT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AUDIT_TIME = datetime(9000, 1, 1, tzinfo=UTC)


class AuditQuery(BaseModel):
    """GET /api/admin/audit: `from` and `to` (ISO 8601, default: the last hour), `type`
    (comma-separated), `outcome`, `user` (a user id or a guest's "ip:<hash>"), `limit`,
    and `cursor` from the previous page."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)

    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")
    type: str | None = Field(default=None, pattern=r"^[a-z_.]{1,40}(,[a-z_.]{1,40}){0,19}$")
    outcome: str | None = Field(default=None, pattern=r"^(ok|fail)$")
    user: str | None = Field(default=None, min_length=1, max_length=128)
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: int = Field(default=0, ge=0, le=10_000_000)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> object:
        if isinstance(value, str) and not ISO_DATE_TIME.match(value):
            raise ValueError("times are ISO 8601, e.g. 2026-11-21T12:00:00Z")
        return value

    @model_validator(mode="after")
    def _aware(self) -> AuditQuery:
        for moment in (self.start, self.end):
            if moment is not None and moment.tzinfo is None:
                raise ValueError("times need a zone, e.g. 2026-11-21T12:00:00Z")
            # the audit began long after 2000; the bounds keep date arithmetic in range
            if moment is not None and not EARLIEST_AUDIT_TIME <= moment <= LATEST_AUDIT_TIME:
                raise ValueError("times are between 2000 and 9000")
        return self


class JobsQuery(BaseModel):
    """GET /api/admin/jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    limit: int = Field(default=50, ge=1, le=500)


class LiftBan(BaseModel):
    """POST /api/admin/bans/lift."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    source: str = Field(min_length=2, max_length=64, pattern=r"^[0-9A-Fa-f.:/]+$")


class BanView(BaseModel):
    model_config = ConfigDict(defer_build=True)

    source: str = Field(description="an IPv4 address or an IPv6 /64, as the limits count sources")
    until: datetime
    offences: int = Field(description="bans of this source within BAN_MEMORY_DAYS, this one included")
    bannedAt: datetime
    liftedAt: datetime | None = None


class BanList(BaseModel):
    model_config = ConfigDict(defer_build=True)

    bans: list[BanView]
