"""The expiry index: TTL-style partitions by expiry bucket.

Everything that expires (each `ExpiryKind`: codes, sessions, activation codes, ...) is
registered here under PartitionKey = the bucket (BUCKET, 5 minutes) in which it expires at
the latest. Cleanup then reads only buckets that are wholly in the past, one partition at a
time, and deletes in batch transactions of at most 100 rows (one partition per batch, as
the service requires). Live data is never scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from azure.data.tables import TableClient, TableTransactionError

BUCKET = timedelta(minutes=5)  # divides an hour, so buckets start on whole minutes of the hour
BATCH_LIMIT = 100  # entities per table transaction
_FORMAT = "%Y%m%d%H%M"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # where buckets are counted from


class ExpiryKind(StrEnum):
    """What an index row names (its `kind`, and the start of its RowKey); cleanup has one
    purge per kind. RATELIMIT has no index rows: counters live in partitions of their own
    bucket and are swept whole (shared/limits/ratelimit.py)."""

    CODE = "code"
    SESSION = "session"
    ACTIVATION = "activation"
    REGISTRATION = "registration"
    DEVICE = "device"
    UNLOCK = "unlock"
    RATELIMIT = "ratelimit"
    VERIFIER = "verifier"  # offline codes and uploaded log entries (shared/verifiers)
    BAN = "ban"  # strikes and bans (shared/limits/bans.py)


def bucket_of(moment: datetime) -> str:
    """The bucket holding `moment`: its start, as a sortable string."""
    moment = moment.astimezone(UTC)
    return (moment - (moment - _EPOCH) % BUCKET).strftime(_FORMAT)


def bucket_start(bucket: str) -> datetime:
    return datetime.strptime(bucket, _FORMAT).replace(tzinfo=UTC)


def buckets_between(first: str, before: datetime) -> Iterator[str]:
    """Buckets from `first` on that end at or before `before` (wholly expired)."""
    start = bucket_start(first)
    while start + BUCKET <= before:
        yield start.strftime(_FORMAT)
        start += BUCKET


def batches(items: Iterable, size: int = BATCH_LIMIT) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def delete_batch(table: TableClient, partition: str, row_keys: list[str]) -> None:
    """Delete up to 100 rows of one partition in one transaction. It fails whole when one
    row is gone already (another cleanup running at the same time): the rest are then
    deleted one by one, where a missing row is fine."""
    try:
        table.submit_transaction([("delete", {"PartitionKey": partition, "RowKey": row_key}) for row_key in row_keys])
    except TableTransactionError:
        for row_key in row_keys:
            table.delete_entity(partition, row_key)


def key_of(index_row: dict) -> str:
    """The key an index row was added with (its RowKey without the kind)."""
    return index_row["RowKey"].removeprefix(f"{index_row['kind']}:")


class ExpiryIndex:
    """Rows are `{PartitionKey: bucket, RowKey: "<kind>:<key>", ...what cleanup needs}`."""

    def __init__(self, table: TableClient):
        self._table = table

    def add(self, kind: ExpiryKind, key: str, expires_at: datetime, **fields) -> None:
        self._table.upsert_entity(
            {"PartitionKey": bucket_of(expires_at), "RowKey": f"{kind}:{key}", "kind": kind, **fields}
        )

    def entries(self, bucket: str) -> list[dict]:
        return list(self._table.query_entities("PartitionKey eq @bucket", parameters={"bucket": bucket}))

    def delete(self, bucket: str, row_keys: Iterable[str]) -> int:
        """Delete rows of one bucket in batches; returns how many went."""
        deleted = 0
        for batch in batches(row_keys):
            delete_batch(self._table, bucket, batch)
            deleted += len(batch)
        return deleted
