"""Codes at scale: no ceiling on active codes, and redemption unchanged by table size.

Codes are unique per resource (shared/codes/store.py), so the 6-digit space caps no
total. This fills the `codes` table with `active` live codes in the store's own layout,
written in batch transactions: two on each resource the service then issues on (one
short of the default cap of three active codes), the rest 100 to a resource id (more than
issuing allows, but they only fill the table, and a transaction of 100 rows is what makes
a million affordable). Then it issues `issue` more through the service, one on each of
those resources, and counts collision retries: an issue collides only with its
resource's two codes, p = 2 / 10^6, so 0 are expected (with one global space, at
1,000,000 active codes every draw would collide and issuing would stop).

Redemption latency (in process, one at a time, every code through the service) is taken
on the empty table first, then again beside the filled one: the ratio should be about 1.
Beside it, the two reads a redemption could make are timed alone on both tables: a point
read, and a query of one partition for two named rows (what redemption makes). Azurite
answers every query by scanning the whole table, so that query slows with the table there;
Azure serves it from the one partition.
`python -m bench --only uniqueness` runs it in `make bench`."""

from __future__ import annotations

import secrets
import time
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError

from bench.harness import call_load
from bench.seed import Seeder
from bench.stats import median
from shared.codes.models import HASH_PURPOSE, AccessCode, CodeState, bound_to, new_code, new_code_id
from shared.codes.store import code_entity
from shared.resources.store import new_resource_id

CODES_PER_RESOURCE = 2
FILLER_PER_RESOURCE = 100  # a transaction's most
SEED_CONCURRENCY = 8


def seed_active(svc, owner: str, count: int, among: list[str]) -> None:
    """`count` live codes in all: CODES_PER_RESOURCE on each resource `among`, the rest
    FILLER_PER_RESOURCE to an id of no resource row (one transaction each)."""
    now = datetime.now(UTC)
    table = svc.storage.table("codes")
    filler = max(0, count - CODES_PER_RESOURCE * len(among))
    jobs = [(resource_id, CODES_PER_RESOURCE) for resource_id in among]
    jobs += [(new_resource_id(), min(FILLER_PER_RESOURCE, filler - n)) for n in range(0, filler, FILLER_PER_RESOURCE)]

    def write(job: tuple[str, int]) -> None:
        resource_id, how_many = job
        values: set[str] = set()
        while len(values) < how_many:
            values.add(new_code())
        rows = []
        for value in values:
            hashed = svc.keys.hash(HASH_PURPOSE, bound_to(resource_id, value))
            code = AccessCode(
                new_code_id(), hashed.digest, hashed.key_id, owner, resource_id,
                now, now + timedelta(hours=1), CodeState.ACTIVE,
            )  # fmt: skip
            rows.append(("upsert", code_entity(code)))
        table.submit_transaction(rows)

    seeded = call_load(write, jobs, SEED_CONCURRENCY)
    if seeded.errors:
        raise RuntimeError(f"seeding: {seeded.statuses()}")


def redeem_p50_ms(svc, owner: str, resource_ids: list[str]) -> float:
    """Issue a code on each resource, then redeem each, one at a time: the median redemption."""
    issued = [svc.codes.issue(owner, resource_id) for resource_id in resource_ids]
    timings = []
    for code in issued:
        started = time.perf_counter()
        source = f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"
        svc.codes.redeem(code.resource_id, code.code, source=source)
        timings.append((time.perf_counter() - started) * 1000)
    return median(timings)


def read_ms(table, n: int = 100) -> dict[str, float]:
    """Medians of a point read and of a two-row partition query (of an empty partition)."""
    partition = f"resource:{new_resource_id()}"

    def point_read() -> None:
        with suppress(ResourceNotFoundError):
            table.get_entity(partition, "attempts")

    def partition_query() -> None:
        list(
            table.query_entities(
                "PartitionKey eq @pk and ( RowKey eq @a or RowKey eq @b )",
                parameters={"pk": partition, "a": "attempts", "b": "code:none"},
            )
        )

    def timed(call) -> float:
        samples = []
        for _ in range(n):
            started = time.perf_counter()
            call()
            samples.append((time.perf_counter() - started) * 1000)
        return round(median(samples), 2)

    return {"point_read": timed(point_read), "partition_query": timed(partition_query)}


def run(stack, *, active: int, issue: int, redeem: int) -> dict:
    svc = stack.services()
    seeder = Seeder(svc)
    owner = seeder.user(with_session=False, with_resource=False)
    real = [resource_id for _, resource_id in seeder.resources([owner], 2 * redeem + issue)]
    redeem_empty_ms = redeem_p50_ms(svc, owner.user_id, real[:redeem])
    reads_empty = read_ms(svc.storage.table("codes"))

    began = time.perf_counter()
    seed_active(svc, owner.user_id, active, real[redeem:])
    seed_s = time.perf_counter() - began
    began = time.perf_counter()
    issued = call_load(lambda resource_id: svc.codes.issue(owner.user_id, resource_id), real[redeem:][:issue], 16)
    issue_s = time.perf_counter() - began
    attempts = [call.data.attempts for call in issued.calls if call.ok]
    redeem_full_ms = redeem_p50_ms(svc, owner.user_id, real[redeem + issue :])
    reads_full = read_ms(svc.storage.table("codes"))
    return {
        "active": active,
        "seed_s": round(seed_s, 1),
        "issued": len(attempts),
        "issue_errors": issued.errors,
        "issue_per_s": round(len(attempts) / issue_s, 1),
        "collision_retries": sum(a - 1 for a in attempts),
        "collisions_expected": round(issue * CODES_PER_RESOURCE / 1_000_000, 4),
        "redeem_p50_ms_empty": round(redeem_empty_ms, 2),
        "redeem_p50_ms_full": round(redeem_full_ms, 2),
        "redeem_ratio": round(redeem_full_ms / redeem_empty_ms, 3),
        "reads_ms_empty": reads_empty,
        "reads_ms_full": reads_full,
    }
