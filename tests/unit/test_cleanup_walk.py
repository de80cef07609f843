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


def test_a_failing_group_stops_the_run_and_the_cursor_stays_before_it():
    clock = ManualClock(NOW)
    done, failing = bucket_of(NOW - timedelta(minutes=17)), bucket_of(NOW - timedelta(minutes=7))
    index = FakeIndex(
        {done: [{"RowKey": "session:a", "kind": "session"}], failing: [{"RowKey": "code:a", "kind": "code"}]}
    )
    jobs = FakeJobs(clock)

    def broken(rows):
        raise RuntimeError("storage said no")

    purges = {"code": broken, "session": len}
    run = Cleanup(index, jobs, purges, clock, lookback=timedelta(minutes=20), group_rows=1).run()
    assert run.status == "failed" and "storage said no" in run.errors[0]
    assert jobs.position == done and index.rows[done] == [] and index.rows[failing]


def test_buckets_are_purged_together_up_to_the_group_size():
    clock = ManualClock(NOW)
    buckets = [bucket_of(NOW - timedelta(minutes=m)) for m in (22, 17, 12, 7)]
    index = FakeIndex({bucket: [{"RowKey": f"code:{bucket}", "kind": "code"}] for bucket in buckets})
    calls = []
    purge = {"code": lambda rows: calls.append(len(rows)) or len(rows)}
    run = Cleanup(index, FakeJobs(clock), purge, clock, lookback=timedelta(minutes=25), group_rows=2).run()
    assert calls == [2, 2] and run.counts == {"code": 4, "indexRows": 4}
    assert all(index.rows[bucket] == [] for bucket in buckets)
