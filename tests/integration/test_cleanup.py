"""Cleanup against Azurite: it deletes exactly what expired, reads no live partition
(every storage request is inspected), audits each unused expired code once, and is safe
when two instances run it at the same time."""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest
from azure.core.exceptions import AzureError, ServiceResponseError
from azure.data.tables import UpdateMode

from shared.cleanup import JOB
from shared.clock import ManualClock
from shared.codes.models import HASH_PURPOSE, AccessCode, CodeState, new_code_id
from shared.codes.store import code_entity, index_fields, owner_entity
from shared.expiry import ExpiryIndex, batches, bucket_of
from shared.services import Services
from shared.storage import Storage

from .codes_support import add_resource, add_user, fresh_cursor  # noqa: F401 - a fixture

KEYS = re.compile(r"\((?:PartitionKey=)?'([^']*)',(?:RowKey=)?'([^']*)'\)")
FILTER = re.compile(r"PartitionKey eq '([^']*)'")


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
    log = RequestLog()
    svc = Services(settings.model_copy(update=overrides), clock=clock)
    svc.storage = Storage(svc.settings, request_hook=log)
    return svc, log


def seed(
    svc: Services, owner: str, resource_id: str, expiries: list[datetime], values: list[str], states, old_version=()
) -> list:
    """Codes written the way issuing writes them, but in bulk: code rows (one partition
    each) in parallel, as active codes; then index rows, carrying the ETag each code row
    got, and owner rows in batch transactions; then the redemptions and revocations,
    which change their rows' ETags. The codes at the positions in `old_version` get index
    rows as the previous version wrote them: without the ETag and the code as issued."""
    codes = []
    for value, expires_at, state in zip(values, expiries, states, strict=True):
        hashed = svc.keys.hash(HASH_PURPOSE, value)
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
        for position, (code, etag) in enumerate(zip(codes, etags, strict=True)):
            fields = index_fields(code, etag)
            if position in old_version:
                fields = {name: fields[name] for name in ("codeHash", "keyId", "issuerId")}
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


@pytest.mark.timeout(1800)  # 10,000 + 10,000 codes: several minutes on a busy 2-core machine
@pytest.mark.usefixtures("fresh_cursor")
def test_cleanup_deletes_exactly_the_expired_codes_and_reads_no_live_partition(settings):
    size = int(os.environ.get("CLEANUP_TEST_SIZE", "10000"))  # expired codes, and as many live ones
    now = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(now - timedelta(hours=2))
    svc, log = services_with_log(settings, clock, instance_id="cleanup-big")
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    values = [f"{n:06d}" for n in random.sample(range(1_000_000), 2 * size)]
    expired_at = [now - timedelta(seconds=random.randint(60, 50 * 60)) for _ in range(size)]
    live_at = [now + timedelta(seconds=random.randint(60, 60 * 60)) for _ in range(size)]
    states = [CodeState.REDEEMED] * (size // 10) + [CodeState.REVOKED] * (size // 20)
    states += [CodeState.ACTIVE] * (size - len(states))
    old_version = set(range(0, size, 10))  # index rows without the ETag, of every state
    began = time.perf_counter()
    expired = seed(svc, owner, resource.resource_id, expired_at, values[:size], states, old_version)
    live = seed(svc, owner, resource.resource_id, live_at, values[size:], [CodeState.ACTIVE] * size)
    seeded = time.perf_counter()

    clock.advance(hours=2)
    log.recording = True
    run = svc.cleanup.run()
    log.recording = False
    print(f"\nseeding {seeded - began:.0f}s, cleanup {time.perf_counter() - seeded:.0f}s")

    assert run.status == "ok", run.errors
    assert (run.counts["code"], run.counts["indexRows"]) == (size, size)
    codes_table = svc.storage.table("codes")
    stored = {row["PartitionKey"] for row in codes_table.list_entities(select=["PartitionKey"])}
    assert not stored & {f"code:{code.code_hash}" for code in expired}
    assert {f"code:{code.code_hash}" for code in live} <= stored
    owner_rows = {row["RowKey"] for row in codes_table.query_entities(f"PartitionKey eq 'owner:{owner}'")}
    assert owner_rows == {code.code_id for code in live}

    # what cleanup asked storage for: expired buckets, expired codes' rows, nothing live
    live_bucket = bucket_of(now)
    expired_partitions = {f"code:{code.code_hash}" for code in expired}
    expired_ids = {code.code_id for code in expired}
    by_target = Counter((method, target) for method, target, _, _ in log.seen)
    for method, target, partition, row in log.seen:
        if target in ("expiry", "ratelimits"):  # rate-limit counters: "<bucket>:<shard>" partitions
            assert partition is not None and partition < live_bucket, (method, partition)
        elif target == "codes" and partition.startswith("code:"):
            assert partition in expired_partitions, (method, partition)
        elif target == "codes":
            assert method == "DELETE" and partition == f"owner:{owner}" and row in expired_ids, (method, row)
        else:
            assert target in ("jobs", "audit"), (method, target)
    # an unused code's row goes with one conditional delete; a row that changed since
    # issuing (redeemed, revoked) first fails that delete, then is read and deleted; a row
    # behind an old version's index row is read and deleted
    changed = sum(1 for i, code in enumerate(expired) if code.state is not CodeState.ACTIVE and i not in old_version)
    code_deletes = [
        partition for method, _, partition, _ in log.seen if method == "DELETE" and partition.startswith("code:")
    ]
    assert by_target[("GET", "codes")] == changed + len(old_version)
    assert len(code_deletes) == size + changed
    queried = {partition for method, target, partition, _ in log.seen if (method, target) == ("QUERY", "expiry")}
    assert len(queried) == 24 * 12  # each bucket of the look-back (a bucket of over 1,000 rows takes 2 pages)
    print(f"\ncleanup storage requests: {dict(by_target)}")

    # one expire event per code that expired unused, none for the redeemed or revoked
    events = expire_events(svc, now - timedelta(hours=1), now + timedelta(hours=1))
    unused = {code.code_id for code in expired if code.state is CodeState.ACTIVE}
    assert set(events) == unused and set(events.values()) == {1}


@pytest.mark.usefixtures("fresh_cursor")
def test_two_cleanups_at_once_audit_each_expired_code_exactly_once(settings):
    now = datetime(2031, 7, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(now - timedelta(hours=1))
    first, _ = services_with_log(settings, clock, instance_id="cleanup-a")
    second, _ = services_with_log(settings, clock, instance_id="cleanup-b")
    owner = add_user(first)
    resource = add_resource(first, owner)
    values = [f"{n:06d}" for n in random.sample(range(1_000_000), 600)]
    expiries = [now - timedelta(seconds=random.randint(60, 20 * 60)) for _ in range(600)]
    # both ways of deleting a code row race: half the index rows are of the old version
    codes = seed(first, owner, resource.resource_id, expiries, values, [CodeState.ACTIVE] * 600, range(0, 600, 2))
    clock.advance(hours=1)

    start = threading.Barrier(2)

    def run(svc):
        start.wait()
        return svc.cleanup.run()

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(run, (first, second)))
    assert all(run.status == "ok" for run in runs), [run.errors for run in runs]
    events = expire_events(first, now - timedelta(hours=1), now + timedelta(hours=1))
    assert set(events) == {code.code_id for code in codes}
    assert set(events.values()) == {1}
    assert first.expiry.entries(bucket_of(expiries[0])) == []
    # and running it again finds nothing left to do
    again = first.cleanup.run()
    assert again.counts.get("code", 0) == 0


@pytest.mark.usefixtures("fresh_cursor")
def test_cleanup_records_its_run_for_the_admin_console(settings):
    clock = ManualClock(datetime(2031, 8, 1, 12, 0, tzinfo=UTC))
    svc, _ = services_with_log(settings, clock)
    run = svc.cleanup.run()
    latest = svc.jobs.recent(JOB, limit=1)[0]
    assert latest.run_id == run.run_id and latest.status == "ok"
    assert latest.started_at <= latest.ended_at and latest.details["buckets"] == 24 * 12


@pytest.mark.usefixtures("fresh_cursor")
def test_issued_codes_are_cleaned_up_reading_only_the_rows_that_changed_since_issuing(settings):
    start = datetime(2031, 9, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(start)
    svc, log = services_with_log(settings, clock, instance_id="cleanup-issued")
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    value = iter(["100001", "100002", "100003", "100004", "100004"])
    svc.codes._generate = lambda: next(value)
    unused, redeemed, revoked, taken = (
        svc.codes.issue(owner, resource.resource_id, timedelta(seconds=60)) for _ in range(4)
    )
    svc.codes.redeem(resource.resource_id, redeemed.code, source="ip:guest")
    svc.codes.revoke(owner, revoked.code_id)
    clock.advance(minutes=2)
    # the same code again, still live at cleanup: it takes over the row of `taken`, which expired unused
    taker = svc.codes.issue(owner, resource.resource_id, timedelta(minutes=60))
    assert taker.code == taken.code
    clock.advance(minutes=20)

    log.recording = True
    run = svc.cleanup.run()
    log.recording = False

    assert run.status == "ok", run.errors
    # read: the redeemed and revoked rows, and the row `taken`'s index row names but `taker` holds
    hashes = {svc.keys.hash(HASH_PURPOSE, code.code).digest for code in (redeemed, revoked, taken)}
    reads = [partition for method, target, partition, _ in log.seen if (method, target) == ("GET", "codes")]
    assert sorted(reads) == sorted(f"code:{digest}" for digest in hashes)
    # once each: `unused` by cleanup, `taken` by the take-over (other tests' dead rows may
    # have been taken over under these values too: their events are not counted here)
    ours = {code.code_id for code in (unused, redeemed, revoked, taken, taker)}
    events = expire_events(svc, start, start + timedelta(hours=2))
    assert {code_id: n for code_id, n in events.items() if code_id in ours} == {unused.code_id: 1, taken.code_id: 1}
    stored = [svc.codes._store.exists(svc.keys.hash(HASH_PURPOSE, code.code)) for code in (unused, redeemed, revoked)]
    assert stored == [None, None, None]
    assert svc.codes._store.exists(svc.keys.hash(HASH_PURPOSE, taker.code)).code.code_id == taker.code_id
    assert [row.code_id for row in svc.codes._store.owner_rows(owner)] == [taker.code_id]


def test_an_issuance_whose_index_row_cannot_be_written_leaves_no_rows_behind(settings):
    svc, _ = services_with_log(settings, ManualClock(datetime(2031, 10, 1, 12, 0, tzinfo=UTC)))
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    # the index's table is missing: its write fails as it would in a storage fault
    svc.__dict__["expiry"] = ExpiryIndex(svc.storage.table("nosuchtable"))
    svc.codes._generate = lambda: "100005"
    with pytest.raises(AzureError):
        svc.codes.issue(owner, resource.resource_id)
    assert svc.codes._store.exists(svc.keys.hash(HASH_PURPOSE, "100005")) is None
    assert svc.codes._store.owner_rows(owner) == []
