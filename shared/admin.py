"""Admin read-outs: the audit trail by time range, type, outcome and user, paged; and the
cleanup job's runs. Query models refuse unknown parameters, like every request model."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared import errors
from shared.audit import AuditEventType

if TYPE_CHECKING:  # the query models are needed at start-up (registration); these only later
    from shared.audit import AuditLog
    from shared.clock import Clock
    from shared.housekeeping.jobs import JobStore

MAX_AUDIT_RANGE = timedelta(days=7)
DEFAULT_AUDIT_RANGE = timedelta(hours=1)
# what the codes chart counts: successful audit events of these types, by series
CODE_ACTIVITY = {AuditEventType.ISSUE: "issued", AuditEventType.REDEEM: "redeemed", AuditEventType.EXPIRE: "expired"}
# the start of an ISO 8601 date-time; pydantic alone would also read "0.5" as Unix time
ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]")
EARLIEST_AUDIT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AUDIT_TIME = datetime(9000, 1, 1, tzinfo=UTC)


class AuditQuery(BaseModel):
    """GET /api/admin/audit: `from` and `to` (ISO 8601, default: the last hour), `type`
    (comma-separated), `outcome`, `user` (a user id or a guest's "ip:<hash>"), `limit`,
    and `cursor` from the previous page."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    limit: int = Field(default=50, ge=1, le=500)


class AdminReadouts:
    def __init__(self, audit: AuditLog, jobs: JobStore, clock: Clock):
        self._audit = audit
        self._jobs = jobs
        self._clock = clock

    def audit_page(self, query: AuditQuery) -> dict:
        end = query.end or self._clock.now()
        start = query.start or end - DEFAULT_AUDIT_RANGE
        if start >= end or end - start > MAX_AUDIT_RANGE:
            raise errors.InvalidInput("`from` must be before `to`, at most 7 days apart.", code="invalid_range")
        events = self._audit.read(
            start,
            end,
            types=set(query.type.split(",")) if query.type else None,
            outcome=query.outcome,
            actor=query.user,
        )
        page = events[query.cursor : query.cursor + query.limit]
        following = query.cursor + len(page)
        return {
            "from": start,
            "to": end,
            "events": [event.model_dump(mode="json", exclude_none=True) for event in page],
            "nextCursor": following if following < len(events) else None,
        }

    def job_runs(self, job: str, query: JobsQuery) -> dict:
        return {"runs": [run.public() for run in self._jobs.recent(job, query.limit)]}

    def code_activity(self, hours: int = 24) -> list[dict]:
        """Codes issued, redeemed and expired per hour over the last `hours` hours, oldest
        first; the last entry is the current hour so far. Read from the audit trail."""
        if not 1 <= hours <= MAX_AUDIT_RANGE / timedelta(hours=1):
            raise errors.InvalidInput("hours must be between 1 and 168.", code="invalid_range")
        now = self._clock.now()
        first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
        counts = {first + timedelta(hours=i): dict.fromkeys(CODE_ACTIVITY.values(), 0) for i in range(hours)}
        for event in self._audit.read(first, now + timedelta(seconds=1), types=set(CODE_ACTIVITY), outcome="ok"):
            hour = counts.get(event.time.replace(minute=0, second=0, microsecond=0))
            if hour is not None:
                hour[CODE_ACTIVITY[event.type]] += 1
        return [{"hour": hour, **series} for hour, series in counts.items()]
