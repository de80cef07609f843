"""Cleanup against Azurite: it deletes exactly what expired, reads no live partition
(every storage request is inspected), audits each unused expired code once, and is safe
when two instances run it at the same time."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ResourceNotFoundError

from bench import cleanup_states
from bench.cleanup_states import expire_events, seed, services_with_log
from shared.clock import ManualClock
from shared.codes.models import CodeState
from shared.codes.store import code_row
from shared.housekeeping.cleanup import JOB
from shared.housekeeping.expiry import ExpiryIndex, bucket_of
from shared.services import Services

from .codes_support import add_resource, add_user, codes_service, fresh_cursor, hashed  # noqa: F401 - a fixture

# Every test's codes expire within the hour before its cleanup: a first run looks back one
# hour (12 buckets) instead of the default day, a walk that alone costs seconds per run.
LOOKBACK = {"cleanup_lookback_hours": 1}


@pytest.fixture
def settings(settings):
    return settings.model_copy(update=LOOKBACK)


@pytest.mark.usefixtures("fresh_cursor")
def test_cleanup_deletes_exactly_the_expired_codes_and_reads_no_live_partition(settings):
    """At small N; `make bench` runs the same at 10,000 + 10,000 (bench/cleanup_states.py)."""
    svc = Services(settings)
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    f = cleanup_states.run(settings, 200, now=datetime(2031, 6, 1, 12, 0, tzinfo=UTC), owner=owner,
                           resource_id=resource.resource_id)  # fmt: skip
    assert f["status"] == "ok", f["errors"]
    assert (f["codes_purged"], f["index_rows_purged"]) == (200, 200)
    assert f["expired_left"] == f["live_lost"] == f["owner_rows_not_live"] == 0
    assert f["requests_outside_expired"] == 0, f["requests_by_kind"]
    assert f["code_reads"] == f["code_reads_expected"] > 0
    assert f["code_deletes"] == f["code_deletes_expected"]
    assert f["buckets_queried"] == f["buckets_expected"] == 12  # each bucket of the look-back
    # one expire event per code that expired unused, none for the redeemed or revoked
    assert f["expire_events_missing"] == f["expire_events_not_unused"] == f["expire_events_repeated"] == 0


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
    codes = seed(first, owner, resource.resource_id, expiries, values, [CodeState.ACTIVE] * 600)
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
    # later than any other test's run: the console lists the newest first
    clock = ManualClock(datetime(2040, 8, 1, 12, 0, tzinfo=UTC))
    svc, _ = services_with_log(settings, clock)
    run = svc.cleanup.run()
    latest = svc.jobs.recent(JOB, limit=1)[0]
    assert latest.run_id == run.run_id and latest.status == "ok"
    assert latest.started_at <= latest.ended_at and latest.details["buckets"] == 12


@pytest.mark.usefixtures("fresh_cursor")
def test_issued_codes_are_cleaned_up_reading_only_the_rows_that_changed_since_issuing(settings):
    start = datetime(2031, 9, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(start)
    svc, log = services_with_log(settings, clock, instance_id="cleanup-issued")
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    value = iter(["100001", "100002", "100003", "100004", "100004"])
    codes, store = codes_service(svc, generate=lambda: next(value))
    unused, redeemed, revoked, taken = (
        codes.issue(owner, resource.resource_id, timedelta(seconds=60)) for _ in range(4)
    )
    codes.redeem(resource.resource_id, redeemed.code, source="ip:guest")
    codes.revoke(owner, revoked.code_id)
    clock.advance(minutes=2)
    # the same code again, still live at cleanup: it takes over the row of `taken`, which expired unused
    taker = codes.issue(owner, resource.resource_id, timedelta(minutes=60))
    assert taker.code == taken.code
    clock.advance(minutes=20)

    log.recording = True
    run = svc.cleanup.run()
    log.recording = False

    assert run.status == "ok", run.errors
    # read: the redeemed and revoked rows, and the row `taken`'s index row names but `taker` holds
    rows = {code_row(hashed(svc, resource.resource_id, code.code)) for code in (redeemed, revoked, taken)}
    reads = [row for method, target, _, row in log.seen if (method, target) == ("GET", "codes")]
    assert sorted(reads) == sorted(rows)
    # once each: `unused` by cleanup, `taken` by the take-over (other tests' dead rows may
    # have been taken over under these values too: their events are not counted here)
    ours = {code.code_id for code in (unused, redeemed, revoked, taken, taker)}
    events = expire_events(svc, start, start + timedelta(hours=2))
    assert {code_id: n for code_id, n in events.items() if code_id in ours} == {unused.code_id: 1, taken.code_id: 1}
    stored = [
        store.read(resource.resource_id, hashed(svc, resource.resource_id, c.code)) for c in (unused, redeemed, revoked)
    ]
    assert stored == [None, None, None]
    assert store.read(resource.resource_id, hashed(svc, resource.resource_id, taker.code)).code.code_id == taker.code_id
    assert [row.code_id for row in store.owner_rows(owner)] == [taker.code_id]


def test_an_issuance_whose_index_row_cannot_be_written_leaves_no_rows_behind(settings):
    svc, _ = services_with_log(settings, ManualClock(datetime(2031, 10, 1, 12, 0, tzinfo=UTC)))
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    # the index's table is missing: its write fails as it would in a storage fault
    codes, store = codes_service(svc, generate=lambda: "100005", expiry=ExpiryIndex(svc.storage.table("nosuchtable")))
    with pytest.raises(ResourceNotFoundError) as failed:
        codes.issue(owner, resource.resource_id)
    assert failed.value.error_code == "TableNotFound"
    assert store.read(resource.resource_id, hashed(svc, resource.resource_id, "100005")) is None
    assert store.owner_rows(owner) == []
