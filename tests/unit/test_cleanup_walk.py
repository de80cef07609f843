"""Cleanup's walk over expiry buckets, against in-memory fakes of the index and job store."""

from datetime import UTC, datetime, timedelta

from shared.cleanup import Cleanup
from shared.clock import ManualClock
from shared.expiry import bucket_of
from shared.jobs import JobRun


class FakeIndex:
    def __init__(self, rows: dict[str, list[dict]]):
        self.rows = rows
        self.queried: list[str] = []

    def entries(self, bucket):
        self.queried.append(bucket)
        return list(self.rows.get(bucket, []))

    def delete(self, bucket, row_keys):
        keys = set(row_keys)
        self.rows[bucket] = [row for row in self.rows.get(bucket, []) if row["RowKey"] not in keys]
        return len(keys)


class FakeJobs:
    def __init__(self, clock, cursor=None):
        self.clock, self.position, self.finished = clock, cursor, []

    def start(self, job):
        return JobRun(job, "r", "rk", self.clock.now(), "test")

    def finish(self, run):
        run.status = "failed" if run.errors else "ok"
        self.finished.append(run)
        return run

    def cursor(self, job):
        return self.position

    def advance_cursor(self, job, position):
        self.position = max(self.position or "", position)


NOW = datetime(2026, 11, 21, 12, 2, tzinfo=UTC)


def test_a_run_reads_only_buckets_that_ended_before_now_and_moves_the_cursor():
    clock = ManualClock(NOW)
    index = FakeIndex({bucket_of(NOW - timedelta(minutes=7)): [{"RowKey": "code:a", "kind": "code"}]})
    jobs = FakeJobs(clock)
    purged = []
    run = Cleanup(
        index, jobs, {"code": lambda rows: purged.extend(rows) or len(rows)}, clock, lookback=timedelta(hours=1)
    ).run()
    assert run.status == "ok" and run.counts == {"code": 1, "indexRows": 1}
    assert bucket_of(NOW) not in index.queried  # the current bucket is still live
    assert max(index.queried) == bucket_of(NOW - timedelta(minutes=5))
    assert len(index.queried) == 12  # one hour back, 5-minute buckets
    assert jobs.position == max(index.queried)


def test_the_next_run_starts_after_the_cursor():
    clock = ManualClock(NOW)
    jobs = FakeJobs(clock, cursor=bucket_of(NOW - timedelta(minutes=10)))
    index = FakeIndex({})
    Cleanup(index, jobs, {}, clock, lookback=timedelta(hours=24)).run()
    assert index.queried == [bucket_of(NOW - timedelta(minutes=5))]


def test_a_kind_without_a_purge_keeps_its_rows_and_is_reported():
    clock = ManualClock(NOW)
    bucket = bucket_of(NOW - timedelta(minutes=7))
    index = FakeIndex({bucket: [{"RowKey": "mystery:1", "kind": "mystery"}, {"RowKey": "code:a", "kind": "code"}]})
    run = Cleanup(index, FakeJobs(clock), {"code": len}, clock, lookback=timedelta(minutes=10)).run()
    assert [row["RowKey"] for row in index.rows[bucket]] == ["mystery:1"]
    assert run.status == "failed" and "mystery" in run.errors[0]


def test_a_failing_bucket_stops_the_run_and_the_cursor_stays_before_it():
    clock = ManualClock(NOW)
    failing = bucket_of(NOW - timedelta(minutes=7))
    index = FakeIndex({failing: [{"RowKey": "code:a", "kind": "code"}]})
    jobs = FakeJobs(clock)

    def broken(rows):
        raise RuntimeError("storage said no")

    run = Cleanup(index, jobs, {"code": broken}, clock, lookback=timedelta(minutes=15)).run()
    assert run.status == "failed" and "storage said no" in run.errors[0]
    assert jobs.position is not None and jobs.position < failing
