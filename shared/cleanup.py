"""Cleanup of what expired: codes, sessions, activation codes, rate-limit rows.

Each run walks the expiry index's 5-minute buckets from its cursor (the last bucket it
finished; on the very first run, a bounded look-back) to the last bucket that lies wholly
in the past. A bucket is one partition query; its rows are handed, by `kind`, to that
area's purge function, which deletes what the rows point at; then the bucket's index
rows go in batch transactions of at most 100. Live data is never read: only buckets that
ended before now, and the rows they name.

Idempotent and safe when two instances run at once: purges tolerate rows already gone
(and the code purge audits a code only when its own conditional delete won), index
deletes fall back to single deletes when a batch finds a row gone, and the cursor only
moves forward. A failing bucket stops the run there; the next run retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from shared.clock import Clock
from shared.expiry import BUCKET as BUCKET_LENGTH
from shared.expiry import ExpiryIndex, bucket_of, bucket_start, buckets_between
from shared.jobs import JobRun, JobStore

log = logging.getLogger(__name__)

JOB = "cleanup"
# What a purge function takes: the bucket's index rows of its kind; returns how many it handled.
Purge = Callable[[list[dict]], int]
# What a sweep function takes: a bucket that ended; it deletes that bucket's own
# partitions (data stored by expiry bucket, with no index rows) and returns how many rows.
Sweep = Callable[[str], int]


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
    ):
        self._expiry = expiry
        self._jobs = jobs
        self._purges = purges
        self._sweeps = sweeps or {}
        self._clock = clock
        self._lookback = lookback
        self._max_buckets = max_buckets_per_run

    def run(self) -> JobRun:
        run = self._jobs.start(JOB)
        now = run.started_at
        cursor = self._jobs.cursor(JOB)
        first = (
            bucket_of(bucket_start(cursor) + BUCKET_LENGTH) if cursor is not None else bucket_of(now - self._lookback)
        )
        done: list[str] = []
        for bucket in buckets_between(first, now):
            if len(done) >= self._max_buckets:
                break
            try:
                self._clean(bucket, run)
            except Exception as error:
                log.exception("cleanup stopped at bucket %s", bucket)
                run.errors.append(f"bucket {bucket}: {type(error).__name__}: {str(error)[:300]}")
                break
            done.append(bucket)
        if done:
            self._jobs.advance_cursor(JOB, done[-1])
        run.details = {"firstBucket": first, "lastBucket": done[-1] if done else None, "buckets": len(done)}
        return self._jobs.finish(run)

    def _clean(self, bucket: str, run: JobRun) -> None:
        rows = self._expiry.entries(bucket)
        by_kind: dict[str, list[dict]] = {}
        for row in rows:
            by_kind.setdefault(row.get("kind") or row["RowKey"].split(":", 1)[0], []).append(row)
        handled: list[str] = []
        for kind, kind_rows in sorted(by_kind.items()):
            purge = self._purges.get(kind)
            if purge is None:
                run.errors.append(f"bucket {bucket}: no purge for kind {kind!r}; {len(kind_rows)} rows kept")
                continue
            run.counts[kind] = run.counts.get(kind, 0) + purge(kind_rows)
            handled.extend(row["RowKey"] for row in kind_rows)
        deleted = self._expiry.delete(bucket, handled)
        run.counts["indexRows"] = run.counts.get("indexRows", 0) + deleted
        for kind, sweep in self._sweeps.items():
            if swept := sweep(bucket):
                run.counts[kind] = run.counts.get(kind, 0) + swept
