"""The storage floor on the SDK's aio clients beside the sync floor on threads: would
async handlers beat the worker's thread pool?

The Python worker runs `async def` functions on its event loop and sync ones on its
thread pool. An async redeem or issue can cost no less than its three storage calls on
the aio clients, so the same three calls (bench/floor.py) are timed both ways, at
concurrency 1 and at the worker's thread count: the sync floor on as many threads, the
aio floor as as many tasks on one loop (aiohttp, the aio SDK's transport). The handlers
stay sync unless the aio floor is clearly the faster."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient

from bench.floor import Floor, audit_line, floor_code
from bench.latency import WORKER_THREADS
from bench.stats import Call, Run
from shared.storage import AUDIT_CONTAINER

LEVELS = (1, WORKER_THREADS)


class AioFloor:
    def __init__(self, connection_string: str):
        self._tables = TableServiceClient.from_connection_string(connection_string)
        self._blobs = BlobServiceClient.from_connection_string(connection_string)
        self._codes = self._tables.get_table_client("codes")
        self._sessions = self._tables.get_table_client("sessions")
        self._audit = self._blobs.get_container_client(AUDIT_CONTAINER).get_blob_client(
            f"bench-aio-floor/{secrets.token_hex(6)}.jsonl"
        )

    async def start(self) -> None:
        await self._audit.create_append_blob()

    async def close(self) -> None:
        await self._tables.close()
        await self._blobs.close()

    async def redeem(self, entity: dict) -> None:
        stored = await self._codes.get_entity(entity["PartitionKey"], entity["RowKey"])
        await self._codes.update_entity(
            {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], "state": "redeemed"},
            mode=UpdateMode.MERGE,
            etag=stored.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        await self._audit.append_block(audit_line("redeem"))

    async def issue(self, session_key: tuple[str, str]) -> None:
        await self._sessions.get_entity(*session_key)
        await self._codes.create_entity(floor_code(datetime.now(UTC)))
        await self._audit.append_block(audit_line("issue"))


async def _load(function, items: list, concurrency: int) -> Run:
    """`function(item)` for every item, at most `concurrency` at once on this loop."""
    gate = asyncio.Semaphore(concurrency)

    async def timed(item) -> Call:
        async with gate:
            start = time.perf_counter()
            try:
                await function(item)
            except Exception as error:  # noqa: BLE001 - recorded as a failed call
                return Call(start, time.perf_counter(), 0, type(error).__name__)
            return Call(start, time.perf_counter(), 200, None)

    return Run(list(await asyncio.gather(*(timed(item) for item in items))), concurrency)


async def _aio_runs(connection_string: str, codes: dict[int, list[dict]], sessions: list, n: int) -> dict:
    floor = AioFloor(connection_string)
    await floor.start()
    try:
        for entity in codes.pop("warm"):  # connections and code paths warm
            await floor.redeem(entity)
        figures = {}
        for level in LEVELS:
            figures[f"c{level}"] = {
                "redeem": (await _load(floor.redeem, codes[level], level)).summary(),
                "issue": (await _load(floor.issue, [sessions[i % len(sessions)] for i in range(n)], level)).summary(),
            }
        return figures
    finally:
        await floor.close()


def run(stack, n: int) -> dict:
    """`n` redemptions and issuances per level, each way, on one Azurite."""
    sync_floor = Floor(stack.storage())
    sync = {f"c{level}": {"redeem": sync_floor.run_redeem(n, level).summary()} for level in LEVELS}
    for level in LEVELS:
        sync[f"c{level}"]["issue"] = sync_floor.run_issue(n, level).summary()
    codes = {level: sync_floor.seed_codes(n) for level in LEVELS} | {"warm": sync_floor.seed_codes(10)}
    sessions = [sync_floor.seed_session() for _ in range(50)]
    connection_string = stack.values["AzureWebJobsStorage"]
    aio = asyncio.run(_aio_runs(connection_string, codes, sessions, n))
    ratios = {
        level: {op: aio[level][op]["throughput_per_s"] / sync[level][op]["throughput_per_s"] for op in aio[level]}
        for level in sync
    }
    return {"n": n, "sync": sync, "aio": aio, "aio_vs_sync_throughput": ratios}
