"""Cleanup of what expired: codes, sessions, activation codes, rate-limit rows.

Each run walks the expiry index's 5-minute buckets from its cursor (the last bucket it
finished; on the very first run, a bounded look-back) to the last bucket that lies wholly
in the past. A bucket is one partition query. Buckets are purged in groups of up to about
GROUP_ROWS index rows: the rows are handed, by `kind`, to that area's purge function,
which deletes what the rows point at; then each bucket's index rows go in batch
transactions of at most 100. Live data is never read: only buckets that ended before
now, and the rows they name.

Idempotent and safe when two instances run at once: purges tolerate rows already gone
(and the code purge audits a code only when its own conditional delete won), index
deletes fall back to single deletes when a batch finds a row gone, and the cursor only
moves forward. A failing group stops the run there; the next run retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import timedelta
from itertools import islice

from shared.clock import Clock
from shared.housekeeping.expiry import BUCKET as BUCKET_LENGTH
from shared.housekeeping.expiry import ExpiryIndex, bucket_of, bucket_start, buckets_between
from shared.housekeeping.jobs import JobRun, JobStore

log = logging.getLogger(__name__)

JOB = "cleanup"
# What a purge function takes: the bucket's index rows of its kind; returns how many it handled.
Purge = Callable[[list[dict]], int]
# What a sweep function takes: a bucket that ended; it deletes that bucket's own
# partitions (data stored by expiry bucket, with no index rows) and returns how many rows.
Sweep = Callable[[str], int]
# Index rows purged together. Rows of different buckets often point into one partition
# (an issuer's owner rows), which then takes one batch per group instead of one per
# bucket; the bound keeps a long backlog's rows out of memory.
GROUP_ROWS = 20_000
# Threads for the index deletes and sweeps, which go side by side (purges use their own).
THREADS = 8


class Cleanup:
    def __init__(
        self,
        expiry: ExpiryIndex,
        jobs: JobStore,
        purges: Mapping[str, Purge],
        clock: Clock,
        *,
        lookback: timedelta,
        sweeps: Mapping[str, Sweep] | None = None,
        max_buckets_per_run: int = 12 * 24 * 7,
        group_rows: int = GROUP_ROWS,
    ):
        self._expiry = expiry
        self._jobs = jobs
        self._purges = purges
        self._sweeps = sweeps or {}
        self._clock = clock
        self._lookback = lookback
        self._max_buckets = max_buckets_per_run
        self._group_rows = group_rows

    def run(self) -> JobRun:
        run = self._jobs.start(JOB)
        now = run.started_at
        cursor = self._jobs.cursor(JOB)
        first = (
            bucket_of(bucket_start(cursor) + BUCKET_LENGTH) if cursor is not None else bucket_of(now - self._lookback)
        )
        buckets = list(islice(buckets_between(first, now), self._max_buckets))
        done: list[str] = []
        with ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="cleanup") as pool:
            try:
                for group in self._groups(buckets):
                    self._clean(group, run, pool)
                    done.extend(group)
            except Exception as error:
                bucket = buckets[len(done)]
                log.exception("cleanup stopped at bucket %s", bucket)
                run.errors.append(f"bucket {bucket}: {type(error).__name__}: {str(error)[:300]}")
        if done:
            self._jobs.advance_cursor(JOB, done[-1])
        run.details = {"firstBucket": first, "lastBucket": done[-1] if done else None, "buckets": len(done)}
        return self._jobs.finish(run)

    def _groups(self, buckets: list[str]) -> Iterator[dict[str, list[dict]]]:
        """Consecutive buckets with their index rows, up to about `group_rows` rows."""
        group: dict[str, list[dict]] = {}
        for bucket in buckets:
            group[bucket] = self._expiry.entries(bucket)
            if sum(map(len, group.values())) >= self._group_rows:
                yield group
                group = {}
        if group:
            yield group

    def _clean(self, group: dict[str, list[dict]], run: JobRun, pool: Executor) -> None:
        sweeps = [(kind, pool.submit(sweep, bucket)) for bucket in group for kind, sweep in self._sweeps.items()]
        by_kind: dict[str, list[dict]] = {}
        for rows in group.values():
            for row in rows:
                by_kind.setdefault(_kind(row), []).append(row)
        for kind, kind_rows in sorted(by_kind.items()):
            purge = self._purges.get(kind)
            if purge is None:
                run.errors.append(f"buckets from {min(group)}: no purge for kind {kind!r}; {len(kind_rows)} rows kept")
                continue
            _count(run, kind, purge(kind_rows))
        # index rows go only once what they name is gone
        deletes = [
            pool.submit(self._expiry.delete, bucket, [row["RowKey"] for row in rows if _kind(row) in self._purges])
            for bucket, rows in group.items()
        ]
        _count(run, "indexRows", sum(deleted.result() for deleted in deletes))
        for kind, swept in sweeps:
            if n := swept.result():
                _count(run, kind, n)


def _kind(index_row: dict) -> str:
    return index_row["kind"]


def _count(run: JobRun, kind: str, n: int) -> None:
    run.counts[kind] = run.counts.get(kind, 0) + n
