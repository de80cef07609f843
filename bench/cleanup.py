"""Cleanup of N expired codes among N live ones, against the floor of deleting the same
rows directly.

Seeding writes the codes engineer's layout straight into storage: per code a code row
(in its resource's partition; a resource each, as codes spread over many resources), an
owner row (the issuer's partition, shared by expired and live codes) and an expiry-index
row (the expiry bucket's partition) carrying the ETag the code row's write returned, as
issuing writes it. Expired codes expire in the two hours before the seed began; live ones
are issued then with the longest lifetime. The cleanup runs on a clock held at that
moment: on a small machine, seeding 200,000 codes takes longer than a code lives, and the
live codes must still be live when the cleanup runs.

The cleanup runs in this process (the timer function only calls `services().cleanup.run()`)
with a request hook on its storage clients, so every storage request it makes is counted
and checked against the live rows' keys: reading or deleting any of them counts as a touch.
The floor then deletes a fresh, identical set of expired rows: code rows one by one (each
in a partition of its own), owner and index rows in batches of 100, at the cleanup's own
concurrency (the services' pool)."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import unquote

from azure.data.tables import UpdateMode

from bench.harness import call_load
from shared.clock import ManualClock
from shared.codes.models import LONGEST_TTL_SECONDS, AccessCode, CodeState
from shared.codes.store import code_entity, code_partition, code_row, index_fields, owner_entity, owner_partition
from shared.housekeeping.expiry import BATCH_LIMIT, bucket_of

CODES_PER_ISSUER = 50  # of each kind: an issuer's partition holds expired and live codes
SEED_CONCURRENCY = 64
SEED_TRIES = 3
FLOOR_CONCURRENCY = 32  # the services' pool, which the cleanup's purge uses
LIVE_SPREAD_SECONDS = 600
KEY = re.compile(r"PartitionKey(?:='|%3D%27|\s+eq\s+')([^'%]*(?:%[0-9A-Fa-f]{2}[^'%]*)*)")
ROW = re.compile(r"RowKey(?:='|%3D%27)([^'%]*(?:%[0-9A-Fa-f]{2}[^'%]*)*)")


def make_codes(n: int, issuers: list[str], key_id: str, now: datetime, *, expired: bool) -> list[AccessCode]:
    codes = []
    for i in range(n):
        if expired:  # spread over the two hours before the last whole bucket
            expires_at = now - timedelta(minutes=10) - timedelta(seconds=(i * 7200 / max(n, 1)))
            created_at = expires_at - timedelta(minutes=10)
        else:  # spread over the last ten minutes of the longest lifetime
            created_at = now
            expires_at = now + timedelta(seconds=LONGEST_TTL_SECONDS - i * LIVE_SPREAD_SECONDS / max(n, 1))
        codes.append(
            AccessCode(
                code_id=secrets.token_urlsafe(12),
                code_hash=secrets.token_hex(32),
                key_id=key_id,
                issuer_id=issuers[i % len(issuers)],
                resource_id=secrets.token_urlsafe(16),
                created_at=created_at,
                expires_at=expires_at,
                state=CodeState.ACTIVE,
            )
        )
    return codes


def _index_entity(code: AccessCode, etag: str) -> dict:
    return {
        "PartitionKey": bucket_of(code.expires_at),
        "RowKey": f"code:{code.code_id}",
        "kind": "code",
        **index_fields(code, etag),
    }


def _grouped(entities: list[dict]) -> list[list[dict]]:
    by_partition: dict[str, list[dict]] = {}
    for entity in entities:
        by_partition.setdefault(entity["PartitionKey"], []).append(entity)
    return [rows[i : i + BATCH_LIMIT] for rows in by_partition.values() for i in range(0, len(rows), BATCH_LIMIT)]


def seed(storage, codes: list[AccessCode]) -> float:
    """Write the codes' three rows, code rows first (the index rows need their ETags);
    returns seconds taken."""
    codes_table, expiry_table = storage.table("codes"), storage.table("expiry")

    def write(unit):
        table, batch = unit
        return table.submit_transaction([("upsert", entity) for entity in batch])

    started = time.perf_counter()
    inserted = _written(partial(codes_table.upsert_entity, mode=UpdateMode.REPLACE), [code_entity(c) for c in codes])
    etags = [metadata["etag"] for metadata in inserted]
    units = [(codes_table, batch) for batch in _grouped([owner_entity(code) for code in codes])]
    units += [(expiry_table, b) for b in _grouped([_index_entity(c, e) for c, e in zip(codes, etags, strict=True)])]
    _written(write, units)
    return time.perf_counter() - started


def _written(write, units: list) -> list:
    """`write(unit)`'s answer for every unit. Every write is an upsert, so a unit that
    timed out (Azurite busy at 200,000 rows) is sent again."""
    answers: list = [None] * len(units)
    pending = list(range(len(units)))
    for _ in range(SEED_TRIES):
        done = call_load(lambda position: write(units[position]), pending, SEED_CONCURRENCY)
        for position, call in zip(pending, done.calls, strict=True):
            answers[position] = call.data
        pending = [position for position, call in zip(pending, done.calls, strict=True) if not call.ok]
        if not pending:
            return answers
    _all_ok(done)  # raises, naming the calls that failed every try
    return answers


def _all_ok(done, what: str = "seeding"):
    if done.errors:
        raise RuntimeError(f"{what}: {done.errors} calls failed: {done.statuses()}")
    return done


def floor(storage, codes: list[AccessCode]) -> float:
    """Delete the expired codes' rows directly, batched wherever one partition allows."""
    codes_table, expiry_table = storage.table("codes"), storage.table("expiry")
    singles = [("one", (code_partition(code.resource_id), code_row(code.keyed_hash))) for code in codes]
    owner_rows = [{"PartitionKey": owner_partition(c.issuer_id), "RowKey": c.code_id} for c in codes]
    index_rows = [{"PartitionKey": bucket_of(c.expires_at), "RowKey": f"code:{c.code_id}"} for c in codes]
    batches = [("codes", batch) for batch in _grouped(owner_rows)] + [("expiry", b) for b in _grouped(index_rows)]

    def delete(unit) -> None:
        kind, payload = unit
        if kind == "one":
            codes_table.delete_entity(*payload)
        else:
            table = codes_table if kind == "codes" else expiry_table
            table.submit_transaction([("delete", entity) for entity in payload])

    started = time.perf_counter()
    _all_ok(call_load(delete, singles + batches, FLOOR_CONCURRENCY), "floor")
    return time.perf_counter() - started


class RequestLog:
    """Every storage request while `recording`: method, table and the keys it names."""

    def __init__(self):
        self.recording = False
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []  # method, url, body

    def hook(self, request) -> None:
        if not self.recording:
            return
        http = request.http_request
        body = http.body if isinstance(http.body, str) else (http.body or b"").decode("utf-8", "replace")
        if not body and getattr(http, "multipart_mixed_info", None):
            body = " ".join(part.url for part in http.multipart_mixed_info[0])
        with self._lock:
            self.requests.append((http.method, http.url, body))


def touches(url: str, body: str, live_partitions: set[str], live_rows: set[str]) -> bool:
    text = unquote(url) + " " + unquote(body)
    partitions = {unquote(k) for k in KEY.findall(text)}
    named = partitions & live_partitions
    if not named:
        return False
    # the owner partitions hold both kinds: only a named live row counts there
    if any(not partition.startswith("owner:") for partition in named):
        return True
    return bool({unquote(r) for r in ROW.findall(text)} & live_rows)


def run(stack, n: int) -> dict:
    from shared.services import Services

    log = RequestLog()
    now = datetime.now(UTC)
    services = Services(stack.settings(), clock=ManualClock(now), storage_request_hook=log.hook)
    storage = services.storage
    key_id = services.keys.active_key_id
    issuers = [secrets.token_urlsafe(16) for _ in range(max(1, n // CODES_PER_ISSUER))]

    live = make_codes(n, issuers, key_id, now, expired=False)
    expired = make_codes(n, issuers, key_id, now, expired=True)
    seed_s = seed(storage, live + expired)

    live_partitions = {code_partition(c.resource_id) for c in live} | {bucket_of(c.expires_at) for c in live}
    live_partitions |= {owner_partition(c.issuer_id) for c in live}
    live_rows = {c.code_id for c in live} | {f"code:{c.code_id}" for c in live}

    log.recording = True
    started = time.perf_counter()
    runs = [services.cleanup.run()]
    while runs[-1].errors and len(runs) < 3:  # a failed bucket waits for the next run, as with the timer
        runs.append(services.cleanup.run())
    cleanup_s = time.perf_counter() - started
    log.recording = False
    job = runs[-1]

    methods = Counter()
    touched = 0
    for method, url, body in log.requests:
        kind = "batch" if "$batch" in url else method
        methods[kind] += 1
        if touches(url, body, live_partitions, live_rows):
            touched += 1

    # what is left of the expired codes (a sample of code rows, all index buckets)
    codes_table = storage.table("codes")
    sample = expired[:: max(1, len(expired) // 500)]
    left = sum(
        1
        for c in sample
        if list(
            codes_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": code_partition(c.resource_id)}, select=["RowKey"]
            )
        )
    )
    live_sample = live[:: max(1, len(live) // 500)]
    live_left = sum(
        1
        for c in live_sample
        if list(
            codes_table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": code_partition(c.resource_id)}, select=["RowKey"]
            )
        )
    )

    refill = make_codes(n, issuers, key_id, now, expired=True)
    reseed_s = seed(storage, refill)
    floor_s = floor(storage, refill)

    return {
        "expired": n,
        "live": n,
        "seed_s": round(seed_s, 1),
        "reseed_s": round(reseed_s, 1),
        "cleanup_s": round(cleanup_s, 2),
        "floor_s": round(floor_s, 2),
        "ratio": round(cleanup_s / floor_s, 3) if floor_s else None,
        "requests": len(log.requests),
        "requests_per_expired_code": round(len(log.requests) / n, 3),
        "requests_by_kind": dict(methods),
        "live_rows_touched": touched,
        "expired_left": left,
        "expired_checked": len(sample),
        "live_kept": live_left,
        "live_checked": len(live_sample),
        "live_lost": len(live_sample) - live_left,
        "job": {"counts": job.counts, "errors": job.errors, "details": job.details},
        "runs": len(runs),
        "codes_purged": sum(run.counts.get("code", 0) for run in runs),
        "errors_of_earlier_runs": [error for earlier in runs[:-1] for error in earlier.errors],
    }
