"""Rate limits shared by every instance: fixed-window counters in Table Storage.

A counter row is `{PartitionKey: "<limit>:<keyed hash of the key>", RowKey: "<window>[:<shard>]",
count}`; increments are read-modify-write with the row's ETag, so concurrent instances
never lose a count. Keys (client IPs, emails, resource ids) are stored only as keyed
hashes. A hot counter (the global failure budget) is split into shards, read back with
one partition query. Each counter is registered in the expiry index when its window
starts, so cleanup removes it without scanning.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import errors
from shared.clock import Clock
from shared.expiry import ExpiryIndex
from shared.keys import KeyRing

KEY_PURPOSE = "ratelimit-key"
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_MAX_WRITE_TRIES = 50


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


class RateLimiter:
    def __init__(self, table: TableClient, expiry: ExpiryIndex, keys: KeyRing, clock: Clock):
        self._table = table
        self._expiry = expiry
        self._keys = keys
        self._clock = clock

    def partition_for(self, limit: Limit, key: str) -> str:
        return f"{limit.name}:{self._keys.hash(KEY_PURPOSE, key, self._keys.active_key_id).digest[:32]}"

    def count(self, limit: Limit, key: str) -> tuple[int, datetime]:
        """Events counted in the current window, and when the window ends."""
        number, ends = limit.window_of(self._clock.now())
        partition = self.partition_for(limit, key)
        if limit.shards == 1:
            try:
                return self._table.get_entity(partition, str(number))["count"], ends
            except ResourceNotFoundError:
                return 0, ends
        rows = self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": partition, "low": f"{number}:", "high": f"{number};"},
            select=["count"],
        )
        return sum(row["count"] for row in rows), ends

    def check(self, limit: Limit, key: str) -> None:
        """Raise TooManyRequests when the window's budget is spent."""
        count, ends = self.count(limit, key)
        if count >= limit.limit:
            raise errors.TooManyRequests(self.seconds_until(ends))

    def hit(self, limit: Limit, key: str) -> int:
        """Count one event; returns the count of this counter row after it."""
        number, ends = limit.window_of(self._clock.now())
        partition = self.partition_for(limit, key)
        row = str(number) if limit.shards == 1 else f"{number}:{secrets.randbelow(limit.shards)}"
        for attempt in range(_MAX_WRITE_TRIES):
            if attempt:
                time.sleep(secrets.randbelow(10 * min(attempt, 5)) / 1000)  # jitter, so racers spread out
            try:
                entity = self._table.get_entity(partition, row)
            except ResourceNotFoundError:
                try:
                    # registered before the row exists, so cleanup always finds it
                    self._expiry.add(
                        "ratelimit", f"{partition}|{row}", ends, counterPartition=partition, counterRow=row
                    )
                    self._table.create_entity({"PartitionKey": partition, "RowKey": row, "count": 1})
                    return 1
                except ResourceExistsError:
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
        raise errors.TooManyRequests(self.seconds_until(ends))

    def consume(self, limit: Limit, key: str) -> None:
        """Check, then count: for limits on every attempt (not only failures)."""
        self.check(limit, key)
        self.hit(limit, key)

    def now(self) -> datetime:
        return self._clock.now()

    def seconds_until(self, moment: datetime) -> int:
        return max(1, int((moment - self._clock.now()).total_seconds() + 0.999))

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: delete the counters behind expired index rows (idempotent)."""
        for row in index_rows:
            self._table.delete_entity(row["counterPartition"], row["counterRow"])
        return len(index_rows)
