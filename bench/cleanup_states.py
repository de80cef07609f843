"""Cleanup among codes in every state, each storage request it makes inspected: N expired
codes (a tenth redeemed, a twentieth revoked, the rest unused) and N live ones, all of one
issuer, expiring within the hour either side of now.

Reported: what cleanup left (expired codes still stored, live codes lost, owner rows that
are not exactly the live codes'), requests that named anything but expired buckets and
expired codes' rows, reads and deletes of code rows against what the states imply, the
buckets queried against the look-back, and `expire` audit events against the codes that
expired unused (each exactly once). `make bench` runs it at 10,000 + 10,000; the suite at
small N (tests/integration/test_cleanup.py), which also uses the seeding and request log
here."""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import unquote

from azure.core.exceptions import ServiceResponseError
from azure.data.tables import UpdateMode

from shared.clock import ManualClock
from shared.codes.models import HASH_PURPOSE, AccessCode, CodeState, bound_to, new_code_id
from shared.codes.store import code_entity, code_partition, code_row, index_fields, owner_entity
from shared.housekeeping.expiry import BUCKET, batches, bucket_of, bucket_start
from shared.services import Services

KEYS = re.compile(r"\((?:PartitionKey=)?'([^']*)',(?:RowKey=)?'([^']*)'\)")
FILTER = re.compile(r"PartitionKey (?:eq|gt|ge) '([^']*)'")


class RequestLog:
    """Every storage request while `recording`: (method, table or container, partition, row)."""

    def __init__(self):
        self.recording = False
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str | None, str | None]] = []

    def __call__(self, pipeline_request) -> None:
        if self.recording:
            for entry in self._describe(pipeline_request.http_request):
                with self.lock:
                    self.seen.append(entry)

    def _describe(self, request):
        parts = getattr(request, "multipart_mixed_info", None)
        if parts:  # a table transaction: look inside at each operation
            for part in parts[0]:
                yield from self._describe(part)
            return
        path = unquote(request.url.split("?")[0].split("/", 4)[-1]) if "//" in request.url else request.url
        target = path.split("(")[0].split("/")[0]
        keys = KEYS.search(unquote(request.url))
        query = FILTER.search(unquote(request.url).replace("+", " "))
        if keys:
            yield request.method, target, keys.group(1), keys.group(2)
        elif query:
            yield "QUERY", target, query.group(1), None
        else:
            yield request.method, target, None, None


def services_with_log(settings, clock, **overrides) -> tuple[Services, RequestLog]:
    """Services whose storage clients report every request to the returned log."""
    log = RequestLog()
    svc = Services(settings.model_copy(update=overrides), clock=clock, storage_request_hook=log)
    return svc, log


def seed(
    svc: Services, owner: str, resource_id: str, expiries: list[datetime], values: list[str], states
) -> list[AccessCode]:
    """Codes written the way issuing writes them, but in bulk: code rows in parallel, as
    active codes; then index rows, carrying the ETag each code row
    got, and owner rows in batch transactions; then the redemptions and revocations,
    which change their rows' ETags."""
    codes = []
    for value, expires_at, state in zip(values, expiries, states, strict=True):
        hashed = svc.keys.hash(HASH_PURPOSE, bound_to(resource_id, value))
        codes.append(
            AccessCode(
                new_code_id(), hashed.digest, hashed.key_id, owner, resource_id,
                expires_at - timedelta(minutes=10), expires_at, state,
            )
        )  # fmt: skip
    codes_table, expiry_table = svc.storage.table("codes"), svc.storage.table("expiry")
    with ThreadPoolExecutor(max_workers=8) as pool:
        issued = [code_entity(replace(code, state=CodeState.ACTIVE)) for code in codes]
        etags = [written["etag"] for written in pool.map(lambda row: patiently(codes_table.upsert_entity, row), issued)]
        by_bucket: dict[str, list[dict]] = {}
        for code, etag in zip(codes, etags, strict=True):
            fields = index_fields(code, etag)
            row = {"PartitionKey": bucket_of(code.expires_at), "RowKey": f"code:{code.code_id}", "kind": "code"}
            by_bucket.setdefault(row["PartitionKey"], []).append({**row, **fields})
        jobs = [(expiry_table, batch) for rows in by_bucket.values() for batch in batches(rows)]
        jobs += [(codes_table, batch) for batch in batches([owner_entity(code) for code in codes])]
        list(pool.map(lambda job: patiently(job[0].submit_transaction, [("upsert", row) for row in job[1]]), jobs))
        used = [code_entity(code) for code in codes if code.state is not CodeState.ACTIVE]
        list(pool.map(lambda row: patiently(codes_table.update_entity, row, UpdateMode.MERGE), used))
    return codes


def patiently(call, *args):
    """Seeding only: retry an idempotent write when the emulator drops a kept-alive connection."""
    for attempt in range(5):
        try:
            return call(*args)
        except ServiceResponseError:
            if attempt == 4:
                raise


def expire_events(svc: Services, start: datetime, end: datetime) -> Counter:
    return Counter(event.code_id for event in svc.audit.read(start, end, types={"expire"}))


def run(settings, n: int, *, now: datetime, owner: str, resource_id: str) -> dict:
    """Seed N expired and N live codes of `owner` around `now`, run cleanup at `now` on a
    fresh cursor (the caller's job), and report. `settings`: the app's, on the storage to use."""
    now = bucket_start(bucket_of(now))  # a bucket's start: every code expired before it is in an ended bucket
    clock = ManualClock(now - timedelta(hours=2))
    svc, log = services_with_log(settings, clock, instance_id="cleanup-states")
    values = [f"{v:06d}" for v in random.sample(range(1_000_000), 2 * n)]
    expired_at = [now - timedelta(seconds=random.randint(60, 50 * 60)) for _ in range(n)]
    live_at = [now + timedelta(seconds=random.randint(60, 60 * 60)) for _ in range(n)]
    states = [CodeState.REDEEMED] * (n // 10) + [CodeState.REVOKED] * (n // 20)
    states += [CodeState.ACTIVE] * (n - len(states))
    began = time.perf_counter()
    expired = seed(svc, owner, resource_id, expired_at, values[:n], states)
    live = seed(svc, owner, resource_id, live_at, values[n:], [CodeState.ACTIVE] * n)
    seed_s = time.perf_counter() - began

    clock.advance(hours=2)
    log.recording = True
    began = time.perf_counter()
    job = svc.cleanup.run()
    cleanup_s = time.perf_counter() - began
    log.recording = False

    codes_table = svc.storage.table("codes")
    codes_partition = code_partition(resource_id)
    stored = {
        row["RowKey"]
        for row in codes_table.query_entities("PartitionKey eq @pk", parameters={"pk": codes_partition})
        if row["RowKey"].startswith("code:")
    }
    expired_rows = {code_row(code.keyed_hash) for code in expired}
    live_rows = {code_row(code.keyed_hash) for code in live}
    owner_rows = {row["RowKey"] for row in codes_table.query_entities(f"PartitionKey eq 'owner:{owner}'")}

    # what cleanup asked storage for: expired buckets, expired codes' rows, nothing live
    live_bucket = bucket_of(now)
    expired_ids = {code.code_id for code in expired}

    def allowed(method: str, target: str, partition: str | None, row: str | None) -> bool:
        if target in ("expiry", "ratelimits"):  # rate-limit counters: "<bucket>:<shard>" partitions
            return partition is not None and partition < live_bucket
        if target == "codes" and partition == codes_partition:
            return row in expired_rows
        if target == "codes":
            return method == "DELETE" and partition == f"owner:{owner}" and row in expired_ids
        return target in ("jobs", "audit")

    by_target = Counter((method, target) for method, target, _, _ in log.seen)
    # an unused code's row goes with one conditional delete; a row that changed since
    # issuing (redeemed, revoked) first fails that delete, then is read and deleted
    changed = sum(1 for code in expired if code.state is not CodeState.ACTIVE)
    code_deletes = sum(1 for method, _, partition, _ in log.seen if method == "DELETE" and partition == codes_partition)
    queried = {partition for method, target, partition, _ in log.seen if (method, target) == ("QUERY", "expiry")}
    events = expire_events(svc, now - timedelta(hours=1), now + timedelta(hours=1))
    unused = {code.code_id for code in expired if code.state is CodeState.ACTIVE}
    lookback = timedelta(hours=settings.cleanup_lookback_hours)
    return {
        "expired": n,
        "live": n,
        "seed_s": round(seed_s, 1),
        "cleanup_s": round(cleanup_s, 2),
        "status": job.status,
        "errors": job.errors,
        "codes_purged": job.counts.get("code", 0),
        "index_rows_purged": job.counts.get("indexRows", 0),
        "expired_left": len(stored & expired_rows),
        "live_lost": len(live_rows - stored),
        "owner_rows_not_live": len(owner_rows ^ {code.code_id for code in live}),
        "requests": len(log.seen),
        "requests_by_kind": {f"{method} {target}": count for (method, target), count in by_target.items()},
        "requests_outside_expired": sum(1 for entry in log.seen if not allowed(*entry)),
        "code_reads": by_target[("GET", "codes")],
        "code_reads_expected": changed,
        "code_deletes": code_deletes,
        "code_deletes_expected": n + changed,
        "buckets_queried": len(queried),
        "buckets_expected": lookback // BUCKET,
        "expire_events_missing": len(unused - set(events)),
        "expire_events_not_unused": len(set(events) - unused),
        "expire_events_repeated": sum(count - 1 for count in events.values()),
    }
