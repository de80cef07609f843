"""The expiry index: TTL-style partitions by expiry bucket.

Everything that expires (codes, sessions, activation codes) is registered here under
PartitionKey = the 5-minute bucket in which it expires at the latest. Cleanup then
reads only buckets that are wholly in the past, one partition at a time, and deletes
in batch transactions of at most 100 rows (one partition per batch, as the service
requires). Live data is never scanned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableClient, TableTransactionError

BUCKET = timedelta(minutes=5)
BATCH_LIMIT = 100  # entities per table transaction
_FORMAT = "%Y%m%d%H%M"


def bucket_of(moment: datetime) -> str:
    """The bucket holding `moment`: its start, as a sortable string."""
    moment = moment.astimezone(UTC)
    start = moment - timedelta(minutes=moment.minute % 5, seconds=moment.second, microseconds=moment.microsecond)
    return start.strftime(_FORMAT)


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


class ExpiryIndex:
    """Rows are `{PartitionKey: bucket, RowKey: "<kind>:<key>", ...what cleanup needs}`."""

    def __init__(self, table: TableClient):
        self._table = table

    def add(self, kind: str, key: str, expires_at: datetime, **fields) -> None:
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
