import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared import errors
from shared.abuse.ratelimit import Limit, RateLimiter
from shared.expiry import bucket_of

from .codes_support import fresh_cursor  # noqa: F401 - a fixture


@pytest.fixture
def limiter(svc) -> RateLimiter:
    return RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)


def unique_key() -> str:
    return f"203.0.113.{secrets.randbelow(250)}-{secrets.token_hex(4)}"


def test_the_call_after_the_limit_is_refused_until_the_window_ends(limiter, clock):
    limit = Limit("test-login-ip", limit=3, window=timedelta(minutes=5))
    key = unique_key()
    for _ in range(3):
        limiter.consume(limit, key)
    with pytest.raises(errors.TooManyRequests) as refused:
        limiter.consume(limit, key)
    assert 1 <= refused.value.retry_after_seconds <= 300
    clock.advance(seconds=refused.value.retry_after_seconds)
    limiter.consume(limit, key)  # a new window


def test_concurrent_hits_from_many_instances_are_all_counted(limiter):
    limit = Limit("test-concurrent", limit=1000, window=timedelta(minutes=5))
    key = unique_key()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: limiter.hit(limit, key), range(64)))
    assert limiter.count(limit, key)[0] == 64


def test_a_sharded_counter_sums_its_shards(limiter):
    limit = Limit("test-global", limit=1000, window=timedelta(minutes=5), shards=8)
    key = "global"
    before = limiter.count(limit, key)[0]
    for _ in range(40):
        limiter.hit(limit, key)
    assert limiter.count(limit, key)[0] == before + 40


def test_strict_reservations_from_racing_instances_never_pass_the_limit(svc):
    # each instance (a limiter of its own) remembers only the numbers it saw taken
    instances = [RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock) for _ in range(4)]
    limit = Limit("test-reserve", limit=25, window=timedelta(minutes=5))
    key = unique_key()

    def reserve(n: int) -> int | None:
        try:
            return instances[n % len(instances)].reserve(limit, key)
        except errors.TooManyRequests:
            return None

    with ThreadPoolExecutor(16) as pool:
        numbers = [number for number in pool.map(reserve, range(60)) if number is not None]
    assert sorted(numbers) == list(range(1, 26))


def test_a_new_instance_continues_the_count_of_the_others(svc):
    limit = Limit("test-reserve-new", limit=5, window=timedelta(minutes=5))
    key = unique_key()
    first = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    assert [first.reserve(limit, key) for _ in range(4)] == [1, 2, 3, 4]
    later = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    assert later.reserve(limit, key) == 5
    with pytest.raises(errors.TooManyRequests):
        first.reserve(limit, key)


def test_sweeping_an_ended_bucket_deletes_its_counters_and_no_live_one(limiter, svc, clock):
    ended = Limit("test-sweep-old", limit=5, window=timedelta(minutes=5))
    key = unique_key()
    limiter.hit(ended, key)
    _, ends = ended.window_of(clock.now())
    clock.advance(minutes=10)
    live = Limit("test-sweep-live", limit=5, window=timedelta(minutes=5))
    limiter.hit(live, key)
    assert limiter.sweep(bucket_of(ends)) >= 1
    assert limiter.count(live, key)[0] == 1
    clock.advance(minutes=-10)
    assert limiter.count(ended, key)[0] == 0


def test_counters_store_no_raw_key(limiter, svc, clock):
    limit = Limit("test-raw", limit=5, window=timedelta(minutes=5))
    key = unique_key()
    limiter.hit(limit, key)
    rows = list(svc.storage.table("ratelimits").query_entities("RowKey ge 'test-raw:' and RowKey lt 'test-raw;'"))
    assert rows and not any(key in row["RowKey"] or key in row["PartitionKey"] for row in rows)


@pytest.mark.usefixtures("fresh_cursor")
def test_the_cleanup_job_sweeps_rate_limit_counters_of_ended_buckets(make_services, clock):
    # The cursor is global and only moves forward: a run of another test (or one at the
    # wall time, later than this test's clock) must not leave this bucket behind it.
    svc = make_services()
    limit = Limit("test-cleanup-sweep", limit=5, window=timedelta(minutes=5))
    limiter = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    key = unique_key()
    limiter.hit(limit, key)
    clock.advance(minutes=15)
    run = svc.cleanup.run()
    assert run.counts.get("ratelimit", 0) >= 1
    clock.advance(minutes=-15)
    assert limiter.count(limit, key)[0] == 0
