"""Admin read-outs: the audit trail by time range, type, outcome and user, paged; and the
cleanup job's runs. The edge validates the queries (functions/schemas/admin.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from shared import errors
from shared.audit import AuditEventType

if TYPE_CHECKING:
    from shared.audit import AuditLog
    from shared.clock import Clock
    from shared.housekeeping.jobs import JobStore

MAX_AUDIT_RANGE = timedelta(days=7)
DEFAULT_AUDIT_RANGE = timedelta(hours=1)
# what the codes chart counts: successful audit events of these types, by series
CODE_ACTIVITY = {AuditEventType.ISSUE: "issued", AuditEventType.REDEEM: "redeemed", AuditEventType.EXPIRE: "expired"}


class AuditPageQuery(Protocol):
    """What a page of the audit trail is asked for (the edge validates it): a time range
    (None: the default), event types (comma-separated), outcome, actor, page size and the
    offset from the previous page."""

    start: datetime | None
    end: datetime | None
    type: str | None
    outcome: str | None
    user: str | None
    limit: int
    cursor: int


class JobRunsQuery(Protocol):
    """How many of a job's latest runs to read."""

    limit: int


class AdminReadouts:
    def __init__(self, audit: AuditLog, jobs: JobStore, clock: Clock):
        self._audit = audit
        self._jobs = jobs
        self._clock = clock

    def audit_page(self, query: AuditPageQuery) -> dict:
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

    def job_runs(self, job: str, query: JobRunsQuery) -> dict:
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
