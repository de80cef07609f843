"""Rate limits shared by every instance: fixed-window counters in Table Storage.

Counter rows live in TTL-style partitions: PartitionKey = "<expiry bucket of the window's
end>:<shard>", RowKey = "<limit>:<keyed hash of the key>:<window>[:<slot>]". A lookup
derives both from the key and the clock (a point read); cleanup deletes whole partitions
of buckets that ended, without an index row per counter and without touching a live
window. The shard (the key hash's first hex digit) spreads one bucket's counters over 16
partitions. Increments are read-modify-write with the row's ETag, so concurrent
instances never lose a count. Keys (client IPs, emails, resource ids) are stored only as
keyed hashes. A hot counter (the global failure budget) is split into slots, read back
with one range query. Limits counted before the act are strict: `reserve` inserts the
next numbered row ("<row>=<number>", a number is taken once), `attempt` a row of its own
and then counts the window's rows (for keys many race on).
"""

from __future__ import annotations

import secrets
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import errors
from shared.clock import Clock
from shared.expiry import batches, bucket_of
from shared.keys import KeyRing

KEY_PURPOSE = "ratelimit-key"
SHARDS = "0123456789abcdef"
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_MAX_WRITE_TRIES = 50
# Numbered rows of `reserve` are stored as _NUMBERS - n (zero-padded), so the highest
# number sorts first; above the largest count a rate setting takes.
_NUMBERS = 10_000_000
_MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class Limit:
    name: str  # e.g. "login-ip"
    limit: int  # events allowed per window
    window: timedelta
    shards: int = 1  # >1 spreads a hot counter over several rows

    def window_of(self, moment: datetime) -> tuple[int, datetime]:
        """The window's number and the moment it ends."""
        seconds = int(self.window.total_seconds())
        number = int((moment - _EPOCH).total_seconds()) // seconds
        return number, _EPOCH + timedelta(seconds=(number + 1) * seconds)


@dataclass(frozen=True)
class CounterKey:
    partition: str
    row: str  # without the slot suffix of a sharded counter
    ends: datetime


def _numbered(row: str, number: int) -> str:
    return f"{row}={_NUMBERS - number:07d}"


class RateLimiter:
    def __init__(self, table: TableClient, keys: KeyRing, clock: Clock):
        self._table = table
        self._keys = keys
        self._clock = clock
        # counter row -> the highest number this process saw taken by `reserve`; a stale
        # value costs one failed insert, never a wrong count
        self._taken: dict[str, int] = {}

    def key_hash(self, key: str) -> str:
        return self._keys.hash(KEY_PURPOSE, key, self._keys.active_key_id).digest[:32]

    def _counter(self, limit: Limit, key: str) -> CounterKey:
        number, ends = limit.window_of(self._clock.now())
        digest = self.key_hash(key)
        return CounterKey(f"{bucket_of(ends)}:{digest[0]}", f"{limit.name}:{digest}:{number}", ends)

    def count(self, limit: Limit, key: str) -> tuple[int, datetime]:
        """Events counted in the current window, and when the window ends."""
        counter = self._counter(limit, key)
        if limit.shards == 1:
            try:
                return self._table.get_entity(counter.partition, counter.row)["count"], counter.ends
            except ResourceNotFoundError:
                return 0, counter.ends
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": counter.partition, "low": f"{counter.row}:", "high": f"{counter.row};"},
            select=["count"],
        )
        return sum(row["count"] for row in rows), counter.ends

    def check(self, limit: Limit, key: str) -> None:
        """Raise TooManyRequests when the window's budget is spent."""
        count, ends = self.count(limit, key)
        if count >= limit.limit:
            raise errors.TooManyRequests(self.seconds_until(ends))

    def hit(self, limit: Limit, key: str) -> int:
        """Count one event; returns the count of this counter row after it."""
        counter = self._counter(limit, key)
        row = counter.row if limit.shards == 1 else f"{counter.row}:{secrets.randbelow(limit.shards)}"
        # Most counters start in the call that counts: try the insert first (one round trip).
        try:
            self._table.create_entity({"PartitionKey": counter.partition, "RowKey": row, "count": 1})
            return 1
        except ResourceExistsError:
            pass
        for attempt in range(_MAX_WRITE_TRIES):
            if attempt:
                time.sleep(secrets.randbelow(10 * min(attempt, 5)) / 1000)  # jitter, so racers spread out
            try:
                entity = self._table.get_entity(counter.partition, row)
            except ResourceNotFoundError:  # swept meanwhile: start again
                with suppress(ResourceExistsError):
                    self._table.create_entity({"PartitionKey": counter.partition, "RowKey": row, "count": 1})
                    return 1
                continue
            entity["count"] += 1
            try:
                self._table.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return entity["count"]
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another instance counted first: read again
        raise errors.TooManyRequests(self.seconds_until(counter.ends))

    def attempt(self, limit: Limit, key: str) -> int:
        """Record one attempt as a row of its own, then count the window's rows: no
        contention between racers, and the n-th recorded attempt always sees at least n,
        so at most `limit.limit` attempts ever see a count within the limit. Two calls
        whatever the contention: for keys many race on (a resource's guests) with small
        limits (the count reads up to limit + 1 rows)."""
        counter = self._counter(limit, key)
        self._table.create_entity(
            {"PartitionKey": counter.partition, "RowKey": f"{counter.row}:{secrets.token_hex(8)}", "count": 1}
        )
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": counter.partition, "low": f"{counter.row}:", "high": f"{counter.row};"},
            select=["RowKey"],
            results_per_page=min(limit.limit + 1, 1000),  # the service's page limit
        )
        return sum(1 for _ in islice(rows, limit.limit + 1))

    def reserve(self, limit: Limit, key: str) -> int:
        """Count one event before it happens, strictly: each event inserts the window's
        next numbered row, and the insert is the claim, so racers never share a number
        and at most `limit.limit` events ever pass. Raises TooManyRequests once they are
        taken. Usually one insert: most counters are new, and this process remembers the
        last number it saw taken of the others; but racers on one key retry one another
        (see `attempt` for keys many race on)."""
        counter = self._counter(limit, key)
        taken = self._taken.get(counter.row, 0)
        for _ in range(_MAX_WRITE_TRIES):
            number = taken + 1
            if number > limit.limit:
                break
            try:
                self._table.create_entity({"PartitionKey": counter.partition, "RowKey": _numbered(counter.row, number)})
            except ResourceExistsError:
                taken = self._highest_taken(counter)  # another instance came first
                continue
            if len(self._taken) >= _MAX_REMEMBERED:
                self._taken.clear()
            self._taken[counter.row] = number
            return number
        raise errors.TooManyRequests(self.seconds_until(counter.ends))

    def _highest_taken(self, counter: CounterKey) -> int:
        """The highest number taken in the window: numbered rows sort highest first, so
        it is the first row of a one-row page."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": counter.partition, "low": f"{counter.row}=", "high": f"{counter.row}>"},
            select=["RowKey"],
            results_per_page=1,
        )
        first = next(iter(rows), None)
        return 0 if first is None else _NUMBERS - int(first["RowKey"].rpartition("=")[2])

    def consume(self, limit: Limit, key: str) -> None:
        """Check, then count: for limits on every attempt (not only failures)."""
        self.check(limit, key)
        self.hit(limit, key)

    def now(self) -> datetime:
        return self._clock.now()

    def seconds_until(self, moment: datetime) -> int:
        return max(1, int((moment - self._clock.now()).total_seconds() + 0.999))

    def sweep(self, bucket: str) -> int:
        """Cleanup: delete every counter of a bucket that has ended, partition by
        partition, in batches of at most 100; returns how many went."""
        deleted = 0
        for shard in SHARDS:
            partition = f"{bucket}:{shard}"
            rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"])
            for batch in batches(row["RowKey"] for row in rows):
                self._table.submit_transaction([("delete", {"PartitionKey": partition, "RowKey": rk}) for rk in batch])
                deleted += len(batch)
        return deleted
