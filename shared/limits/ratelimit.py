"""Rate limits shared by every instance: fixed-window counters in Table Storage.

Counter rows live in TTL-style partitions: PartitionKey = "<expiry bucket of the window's
end>:<shard>", RowKey = "<limit>:<keyed hash of the key>:<window>..." . A lookup derives
both from the key and the clock; cleanup deletes whole partitions of buckets that ended,
without an index row per counter and without touching a live window. The shard (the key
hash's first hex digit) spreads one bucket's counters over 16 partitions. Keys (client
sources, emails, resource ids) are stored only as keyed hashes; new rows go under the
active key and every count reads the rows under every key of the ring, so a key rotation
resets no counter.

Every limit that guards an act takes its slot before the act, so concurrency cannot
overshoot it:
- `reserve` inserts the window's next numbered row ("<row>=<number>"): the insert is the
  claim, a number is taken once. For acts counted whatever their outcome, and for
  failure budgets of keys few race on: `give_back` then adds a row ("<row>~<id>") when
  the act turns out not to count, and the numbers given back are read only when a
  reservation would pass the limit, so a try costs one insert and one more on success.
- `hold` inserts a row of its own, then counts the window's rows: the n-th holder always
  sees at least n. `release` gives the slot back when the act turns out not to count (a
  right password), so only failures stay counted. For keys many race on (an account).
- `note` counts after the fact, a row of its own per event: for the global failure
  budget, a soft signal that many instances write at once.
"""

from __future__ import annotations

import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby, islice

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from shared import errors
from shared.auth.keys import KeyRing
from shared.clock import Clock
from shared.housekeeping.expiry import batches, bucket_of

KEY_PURPOSE = "ratelimit-key"
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

    def window_of(self, moment: datetime) -> tuple[int, datetime]:
        """The window's number and the moment it ends."""
        seconds = int(self.window.total_seconds())
        number = int((moment - _EPOCH).total_seconds()) // seconds
        return number, _EPOCH + timedelta(seconds=(number + 1) * seconds)


@dataclass(frozen=True)
class CounterKey:
    partition: str
    row: str  # the prefix of the window's rows
    ends: datetime


def _numbered(row: str, number: int) -> str:
    return f"{row}={_NUMBERS - number:07d}"


@dataclass(frozen=True)
class Claim:
    """A reserved act: its counter, to give it back, and how many acts the window had
    taken with it (those given back not subtracted: an upper bound)."""

    partition: str
    row: str
    number: int
    window_ends: datetime


@dataclass(frozen=True)
class Slot:
    """A held slot: its row, to release it, and how many the window held with it."""

    partition: str
    row: str
    held: int
    window_ends: datetime


class RateLimiter:
    def __init__(self, table: TableClient, keys: KeyRing, clock: Clock):
        self._table = table
        self._keys = keys
        self._clock = clock
        # counter row -> the highest number this process saw taken by `reserve`; a stale
        # value costs one failed insert, never a wrong count
        self._taken: dict[str, int] = {}

    def _counters(self, limit: Limit, key: str) -> list[CounterKey]:
        """The key's counter in the current window under every key of the ring, the
        active key (where new rows go) first."""
        number, ends = limit.window_of(self._clock.now())
        return [self._counter(limit, key, key_id, number, ends) for key_id in self._keys.key_ids]

    def digests(self, key: str) -> list[str]:
        """A key as limits store it in rows of other tables (a resource's attempts row):
        its keyed hash under every key of the ring, the active key first."""
        return [self._keys.hash(KEY_PURPOSE, key, key_id).digest[:32] for key_id in self._keys.key_ids]

    def _counter(self, limit: Limit, key: str, key_id: str, number: int, ends: datetime) -> CounterKey:
        digest = self._keys.hash(KEY_PURPOSE, key, key_id).digest[:32]
        return CounterKey(f"{bucket_of(ends)}:{digest[0]}", f"{limit.name}:{digest}:{number}", ends)

    def _rows(self, counter: CounterKey, low: str, high: str, select: list[str], per_page: int | None = None):
        return self._table.query_entities(
            "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high",
            parameters={"pk": counter.partition, "low": f"{counter.row}{low}", "high": f"{counter.row}{high}"},
            select=select,
            results_per_page=per_page,
        )

    # -- hold and release: rows of their own, counted

    def _held(self, counter: CounterKey, cap: int) -> int:
        return sum(1 for _ in islice(self._rows(counter, ":", ";", ["RowKey"], min(cap, 1000)), cap))

    def hold(self, limit: Limit, key: str) -> Slot:
        """Take a slot of the window before the act; TooManyRequests (and no slot) when
        `limit.limit` are taken. Two calls whatever the contention (three or more only
        while a rotation leaves several keys in the ring)."""
        active, *others = self._counters(limit, key)
        row = f"{active.row}:{secrets.token_hex(8)}"
        self._table.create_entity({"PartitionKey": active.partition, "RowKey": row})
        cap = limit.limit + 1
        held = self._held(active, cap) + sum(self._held(other, cap) for other in others)
        slot = Slot(active.partition, row, held, active.ends)
        if held > limit.limit:
            self.release(slot)
            raise errors.TooManyRequests(self.seconds_until(active.ends))
        return slot

    def release(self, slot: Slot) -> None:
        with suppress(ResourceNotFoundError):  # swept with its bucket meanwhile
            self._table.delete_entity(slot.partition, slot.row)

    def tally(self, limit: Limit, key: str) -> tuple[int, datetime]:
        """Slots held in the current window (up to limit + 1), and when the window ends."""
        counters = self._counters(limit, key)
        return sum(self._held(counter, limit.limit + 1) for counter in counters), counters[0].ends

    # -- reserve: numbered rows

    def reserve(self, limit: Limit, key: str) -> Claim:
        """Count one act before it happens, strictly: each act inserts the window's next
        numbered row, and the insert is the claim, so racers never share a number and at
        most `limit.limit` acts (less those given back) ever pass. Raises TooManyRequests
        once they are taken. Usually one insert: most counters are new, and this process
        remembers the last number it saw taken of the others; racers on one key retry one
        another (`hold` suits keys many race on)."""
        active, *others = self._counters(limit, key)
        # numbers taken under an older key of the ring count too (rotation resets nothing)
        earlier = sum(self._net_taken(other) for other in others)
        taken = self._taken.get(active.row, 0)
        given_back: int | None = None  # read only when the limit is in sight
        for _ in range(_MAX_WRITE_TRIES):
            number = taken + 1
            if earlier + number - (given_back or 0) > limit.limit:
                if given_back is not None:
                    break
                given_back = self._given_back(active)
                continue
            try:
                self._table.create_entity({"PartitionKey": active.partition, "RowKey": _numbered(active.row, number)})
            except ResourceExistsError:
                taken = self._highest_taken(active)  # another instance came first
                continue
            if len(self._taken) >= _MAX_REMEMBERED:
                self._taken.clear()
            self._taken[active.row] = number
            return Claim(active.partition, active.row, earlier + number, active.ends)
        raise errors.TooManyRequests(self.seconds_until(active.ends))

    def give_back(self, claim: Claim) -> None:
        """The reserved act turned out not to count (a redeemed code): its number is free
        again for the rest of the window."""
        self._table.create_entity({"PartitionKey": claim.partition, "RowKey": f"{claim.row}~{secrets.token_hex(8)}"})

    def reserved_before(self, limit: Limit, key: str) -> int:
        """Acts reserved and not given back in the window before the current one."""
        number, ends = limit.window_of(self._clock.now() - limit.window)
        return sum(self._net_taken(self._counter(limit, key, key_id, number, ends)) for key_id in self._keys.key_ids)

    def _highest_taken(self, counter: CounterKey) -> int:
        """The highest number taken in the window: numbered rows sort highest first, so
        it is the first row of a one-row page."""
        first = next(iter(self._rows(counter, "=", ">", ["RowKey"], 1)), None)
        return 0 if first is None else _NUMBERS - int(first["RowKey"].rpartition("=")[2])

    def _given_back(self, counter: CounterKey) -> int:
        # ids are hex, so every "~<id>" row sorts below "~g"
        return sum(1 for _ in self._rows(counter, "~", "~g", ["RowKey"], 1000))

    def _net_taken(self, counter: CounterKey) -> int:
        highest = self._highest_taken(counter)
        return highest - self._given_back(counter) if highest else 0

    # -- note: counted after the fact

    def note(self, limit: Limit, key: str) -> None:
        """Count an event that happened (a row of its own: one insert, no contention), for
        a soft signal many instances write at once, read back with `tally`."""
        active = self._counters(limit, key)[0]
        self._table.create_entity({"PartitionKey": active.partition, "RowKey": f"{active.row}:{secrets.token_hex(8)}"})

    def now(self) -> datetime:
        return self._clock.now()

    def seconds_until(self, moment: datetime) -> int:
        return max(1, int((moment - self._clock.now()).total_seconds() + 0.999))

    def sweep(self, bucket: str) -> int:
        """Cleanup: delete every counter of a bucket that has ended, in batches of at most
        100 (one partition per batch); returns how many went. One range query reads the
        bucket's shards ("<bucket>:0" to "<bucket>:f" sort together, before "<bucket>;")."""
        rows = self._table.query_entities(
            "PartitionKey gt @low and PartitionKey lt @high",
            parameters={"low": f"{bucket}:", "high": f"{bucket};"},
            select=["PartitionKey", "RowKey"],
        )
        deleted = 0
        # rows come sorted by partition, so each partition's batches go as they are read
        for partition, partition_rows in groupby(rows, key=lambda row: row["PartitionKey"]):
            for batch in batches(row["RowKey"] for row in partition_rows):
                self._table.submit_transaction([("delete", {"PartitionKey": partition, "RowKey": rk}) for rk in batch])
                deleted += len(batch)
        return deleted
