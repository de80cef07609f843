"""Cleanup's walk over the expiry buckets, on Azurite with the real index, job store and
purges: which buckets a run reads, where its cursor lands, and what an unknown kind or a
failing purge leaves for the next run.

Each test lives in a week of its own (2035), far from every other test's buckets; the
cleanup cursor is global, so each starts and ends without one (`fresh_cursor`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.clock import ManualClock
from shared.codes.models import CodeRejected, RejectReason
from shared.housekeeping.cleanup import JOB, Cleanup
from shared.housekeeping.expiry import bucket_of
from shared.services import Services

from .codes_support import add_resource, add_user, fresh_cursor  # noqa: F401 - a fixture

pytestmark = pytest.mark.usefixtures("fresh_cursor")
TTL = timedelta(seconds=60)


class Walk:
    """Services at `now - 2 h` on a clock the test moves, an issuer and a resource."""

    def __init__(self, settings, now: datetime):
        self.now = now
        self.clock = ManualClock(now - timedelta(hours=2))
        update = {"cleanup_lookback_hours": 1, "instance_id": f"cleanup-walk-{now:%m%d}"}
        self.svc = Services(settings.model_copy(update=update), clock=self.clock)
        self.owner = add_user(self.svc)
        self.resource_id = add_resource(self.svc, self.owner).resource_id

    def code_expiring_at(self, moment: datetime):
        """A code issued for one minute so that it expires at `moment` (in time order)."""
        self.clock.advance(seconds=(moment - TTL - self.clock.now()).total_seconds())
        return self.svc.codes.issue(self.owner, self.resource_id, TTL)

    def at(self, moment: datetime) -> None:
        self.clock.advance(seconds=(moment - self.clock.now()).total_seconds())

    def why_refused(self, code) -> RejectReason:
        with pytest.raises(CodeRejected) as refused:
            self.svc.codes.redeem(self.resource_id, code.code, source="ip:cleanup-walk")
        return refused.value.reason

    def index_rows(self, moment: datetime) -> set[str]:
        return {row["RowKey"] for row in self.svc.expiry.entries(bucket_of(moment))}

    def expired_events(self) -> set[str]:
        events = self.svc.audit.read(self.now - timedelta(hours=3), self.now + timedelta(hours=3), types={"expire"})
        return {event.code_id for event in events}


def test_a_run_reads_only_buckets_that_ended_and_the_next_run_goes_on_from_its_cursor(settings):
    walk = Walk(settings, datetime(2035, 3, 5, 12, 2, tzinfo=UTC))
    now = walk.now
    ended = walk.code_expiring_at(now - timedelta(minutes=7))  # its bucket ended at 12:00
    current = walk.code_expiring_at(now - timedelta(minutes=1))  # expired, but its bucket runs until 12:05
    live = walk.code_expiring_at(now + timedelta(minutes=30))
    walk.at(now)

    run = walk.svc.cleanup.run()
    assert run.status == "ok", run.errors
    assert run.counts == {"code": 1, "indexRows": 1}
    last_ended = bucket_of(now - timedelta(minutes=5))
    assert run.details == {"firstBucket": bucket_of(now - timedelta(hours=1)), "lastBucket": last_ended, "buckets": 12}
    assert walk.svc.jobs.cursor(JOB) == last_ended
    assert walk.why_refused(ended) is RejectReason.UNKNOWN  # its rows are gone
    assert walk.expired_events() == {ended.code_id}
    assert walk.index_rows(current.expires_at) == {f"code:{current.code_id}"}
    assert walk.why_refused(current) is RejectReason.EXPIRED  # kept until its bucket ends

    walk.at(now + timedelta(minutes=10))
    again = walk.svc.cleanup.run()
    assert again.status == "ok", again.errors
    assert again.details["firstBucket"] == bucket_of(now) and again.details["buckets"] == 2
    # (and the rate-limit counters of the refused redemptions above, swept with their buckets)
    assert (again.counts["code"], again.counts["indexRows"]) == (1, 1)
    assert walk.index_rows(current.expires_at) == set()
    assert walk.expired_events() == {ended.code_id, current.code_id}
    # the live code was never touched
    assert walk.svc.codes.redeem(walk.resource_id, live.code, source="ip:guest").resource_id == walk.resource_id


def test_a_kind_without_a_purge_keeps_its_rows_and_is_reported(settings):
    walk = Walk(settings, datetime(2035, 3, 12, 12, 2, tzinfo=UTC))
    moment = walk.now - timedelta(minutes=7)
    walk.svc.expiry.add("mystery", "1", moment)  # a kind this version knows nothing of
    code = walk.code_expiring_at(moment)
    walk.at(walk.now)

    run = walk.svc.cleanup.run()
    assert run.status == "failed" and "mystery" in run.errors[0]
    assert run.counts == {"code": 1, "indexRows": 1}
    assert walk.index_rows(moment) == {"mystery:1"}
    assert walk.why_refused(code) is RejectReason.UNKNOWN


def test_a_failing_group_stops_the_run_and_the_cursor_stays_before_it(settings):
    walk = Walk(settings, datetime(2035, 3, 19, 12, 2, tzinfo=UTC))
    svc, now = walk.svc, walk.now
    done_at, failing_at = now - timedelta(minutes=17), now - timedelta(minutes=7)
    code = walk.code_expiring_at(done_at)
    # a session row without the user it belongs to: the session purge fails on it, as on a storage fault
    svc.expiry.add("session", "0badc0de:t1", failing_at)
    walk.at(now)
    purges = {"code": svc.codes.purge, "session": svc.sessions.purge}
    # one index row per group: the two rows' buckets are purged apart
    cleanup = Cleanup(svc.expiry, svc.jobs, purges, walk.clock, lookback=timedelta(minutes=20), group_rows=1)

    run = cleanup.run()
    assert run.status == "failed" and "KeyError" in run.errors[0]
    assert svc.jobs.cursor(JOB) == bucket_of(done_at)
    assert walk.index_rows(done_at) == set() and walk.why_refused(code) is RejectReason.UNKNOWN
    assert walk.index_rows(failing_at) == {"session:0badc0de:t1"}  # the next run tries it again
    assert cleanup.run().details["firstBucket"] == bucket_of(done_at + timedelta(minutes=5))


def test_buckets_purged_together_up_to_the_group_size_lose_no_row_at_a_group_boundary(settings):
    walk = Walk(settings, datetime(2035, 3, 26, 12, 2, tzinfo=UTC))
    svc, now = walk.svc, walk.now
    moments = [now - timedelta(minutes=m) for m in (22, 17, 12, 7)]
    codes = [walk.code_expiring_at(moment) for moment in moments]
    walk.at(now)
    purges = {"code": svc.codes.purge}
    cleanup = Cleanup(svc.expiry, svc.jobs, purges, walk.clock, lookback=timedelta(minutes=25), group_rows=2)

    run = cleanup.run()
    assert run.status == "ok", run.errors
    assert run.counts == {"code": 4, "indexRows": 4}
    assert all(walk.index_rows(moment) == set() for moment in moments)
    assert {walk.why_refused(code) for code in codes} == {RejectReason.UNKNOWN}
    assert walk.expired_events() == {code.code_id for code in codes}
    assert svc.jobs.cursor(JOB) == bucket_of(now - timedelta(minutes=5))
