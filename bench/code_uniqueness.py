"""Uniqueness of codes at scale: `python -m bench.code_uniqueness [--active 100000] [--issue 2000]`.

Fills a fresh Azurite with `--active` live codes (written in bulk, in the store's own
layout), then issues `--issue` more through the real service path and reports the
collision retry rate (retries per issued code) beside the expected p / (1 - p), where
p is the share of the 1,000,000 codes already taken. Checks that every live code is
distinct: the values drawn, and the rows in the table (one per hash)."""

from __future__ import annotations

import argparse
import base64
import random
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from devhost.azurite import Azurite
from shared.codes.models import CODE_SPACE, HASH_PURPOSE, AccessCode, CodeState, new_code_id
from shared.codes.store import code_entity
from shared.config import Settings
from shared.services import Services


def services(connection_string: str) -> Services:
    settings = Settings(
        _env_file=None,
        storage_connection_string=connection_string,
        hmac_keys="b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        hmac_active_key_id="b1",
        instance_id="bench-uniqueness",
    )
    svc = Services(settings)
    svc.storage.ensure_created()
    return svc


def seed_active(svc: Services, owner: str, resource_id: str, count: int, workers: int) -> set[str]:
    """`count` distinct live codes; only the code rows matter for uniqueness."""
    values = {f"{n:06d}" for n in random.sample(range(CODE_SPACE), count)}
    now = datetime.now(UTC)
    table = svc.storage.table("codes")

    def insert(value: str) -> None:
        hashed = svc.keys.hash(HASH_PURPOSE, value)
        code = AccessCode(
            new_code_id(), hashed.digest, hashed.key_id, owner, resource_id,
            now, now + timedelta(hours=1), CodeState.ACTIVE,
        )  # fmt: skip
        table.upsert_entity(code_entity(code))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(insert, values))
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", type=int, default=100_000, help="live codes before issuing")
    parser.add_argument("--issue", type=int, default=2_000, help="codes issued through the service")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()

    with Azurite.on_free_ports() as azurite:
        svc = services(azurite.connection_string)
        from bench.seed import Seeder

        seeded = Seeder(svc).user(with_session=False)
        began = time.perf_counter()
        values = seed_active(svc, seeded.user_id, seeded.resource_id, args.active, args.workers)
        seeding = time.perf_counter() - began

        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            issued = list(pool.map(lambda _: svc.codes.issue(seeded.user_id, seeded.resource_id), range(args.issue)))
        issuing = time.perf_counter() - began

        retries = sum(code.attempts - 1 for code in issued)
        new_values = [code.code for code in issued]
        distinct = len(set(new_values)) == len(new_values) and not set(new_values) & values
        rows = sum(
            row["PartitionKey"].startswith("code:")
            for row in svc.storage.table("codes").list_entities(select=["PartitionKey"])
        )
        taken = (args.active + args.issue / 2) / CODE_SPACE  # the mean occupancy while issuing
        print(f"active codes before issuing: {args.active:,} (seeded in {seeding:.0f}s)")
        print(f"codes issued: {args.issue:,} in {issuing:.1f}s ({args.issue / issuing:.0f}/s)")
        print(f"collision retries: {retries:,}; retry rate {retries / args.issue:.4f} per issued code")
        print(f"expected p/(1-p) at {taken:.1%} occupancy: {taken / (1 - taken):.4f}")
        print(f"every live code distinct: {distinct}; code rows in the table: {rows:,}")
        print(f"most attempts for one code: {max(code.attempts for code in issued)}")
        if not distinct:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
