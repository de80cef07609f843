import base64
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from pydantic import SecretStr

from shared import errors
from shared.housekeeping.expiry import bucket_of
from shared.limits.ratelimit import Limit, RateLimiter

from .codes_support import fresh_cursor  # noqa: F401 - a fixture


@pytest.fixture
def limiter(svc) -> RateLimiter:
    return RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)


def unique_key() -> str:
    return f"203.0.113.{secrets.randbelow(250)}-{secrets.token_hex(4)}"


def test_the_hold_after_the_limit_is_refused_until_the_window_ends(limiter, clock):
    limit = Limit("test-login-ip", limit=3, window=timedelta(minutes=5))
    key = unique_key()
    for _ in range(3):
        limiter.hold(limit, key)
    with pytest.raises(errors.TooManyRequests) as refused:
        limiter.hold(limit, key)
    assert 1 <= refused.value.retry_after_seconds <= 300
    clock.advance(seconds=refused.value.retry_after_seconds)
    limiter.hold(limit, key)  # a new window


def test_a_released_slot_is_free_again(limiter):
    limit = Limit("test-release", limit=2, window=timedelta(minutes=5))
    key = unique_key()
    limiter.hold(limit, key)
    limiter.release(limiter.hold(limit, key))
    limiter.hold(limit, key)
    assert limiter.tally(limit, key)[0] == 2


def test_racing_holds_never_pass_the_limit(svc):
    instances = [RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock) for _ in range(4)]
    limit = Limit("test-hold-race", limit=7, window=timedelta(minutes=5))
    key = unique_key()

    def hold(n: int) -> bool:
        try:
            instances[n % len(instances)].hold(limit, key)
            return True
        except errors.TooManyRequests:
            return False

    with ThreadPoolExecutor(16) as pool:
        assert sum(pool.map(hold, range(60))) <= 7
    assert instances[0].tally(limit, key)[0] <= 7


def test_events_noted_by_many_instances_at_once_are_all_counted(limiter):
    limit = Limit("test-concurrent", limit=1000, window=timedelta(minutes=5))
    key = unique_key()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: limiter.note(limit, key), range(64)))
    assert limiter.tally(limit, key)[0] == 64


def test_counts_survive_a_key_rotation(svc, make_services):
    """A new active key in the ring resets no counter: rows under the old key still count."""
    limit = Limit("test-rotation", limit=3, window=timedelta(minutes=5))
    key = unique_key()
    before = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    before.hold(limit, key)
    before.reserve(Limit("test-rotation-reserve", limit=2, window=timedelta(minutes=5)), key)
    old_keys = svc.settings.hmac_keys.get_secret_value()
    rotated = make_services(
        hmac_keys=SecretStr(f"{old_keys},t9:{base64.b64encode(secrets.token_bytes(32)).decode()}"),
        hmac_active_key_id="t9",
    )
    after = RateLimiter(rotated.storage.table("ratelimits"), rotated.keys, rotated.clock)
    assert after.tally(limit, key)[0] == 1
    after.hold(limit, key)
    after.hold(limit, key)
    with pytest.raises(errors.TooManyRequests):
        after.hold(limit, key)
    assert after.reserve(Limit("test-rotation-reserve", limit=2, window=timedelta(minutes=5)), key).number == 2
    with pytest.raises(errors.TooManyRequests):
        after.reserve(Limit("test-rotation-reserve", limit=2, window=timedelta(minutes=5)), key)


def test_strict_reservations_from_racing_instances_never_pass_the_limit(svc):
    # each instance (a limiter of its own) remembers only the numbers it saw taken
    instances = [RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock) for _ in range(4)]
    limit = Limit("test-reserve", limit=25, window=timedelta(minutes=5))
    key = unique_key()

    def reserve(n: int) -> int | None:
        try:
            return instances[n % len(instances)].reserve(limit, key).number
        except errors.TooManyRequests:
            return None

    with ThreadPoolExecutor(16) as pool:
        numbers = [number for number in pool.map(reserve, range(60)) if number is not None]
    assert sorted(numbers) == list(range(1, 26))


def test_a_new_instance_continues_the_count_of_the_others(svc):
    limit = Limit("test-reserve-new", limit=5, window=timedelta(minutes=5))
    key = unique_key()
    first = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    assert [first.reserve(limit, key).number for _ in range(4)] == [1, 2, 3, 4]
    later = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    assert later.reserve(limit, key).number == 5
    with pytest.raises(errors.TooManyRequests):
        first.reserve(limit, key)


def test_a_reservation_given_back_frees_its_place_for_the_rest_of_the_window(limiter, clock):
    limit = Limit("test-give-back", limit=2, window=timedelta(minutes=5))
    key = unique_key()
    first = limiter.reserve(limit, key)
    limiter.reserve(limit, key)
    with pytest.raises(errors.TooManyRequests):
        limiter.reserve(limit, key)
    limiter.give_back(first)
    assert limiter.reserve(limit, key).number == 3  # numbers go on; the one given back is subtracted
    with pytest.raises(errors.TooManyRequests):
        limiter.reserve(limit, key)
    clock.advance(minutes=5)
    assert limiter.reserved_before(limit, key) == 2


def test_sweeping_an_ended_bucket_deletes_its_counters_and_no_live_one(limiter, svc, clock):
    clock.advance(days=401)  # a day no other test counts in: the sweep deletes only this test's counters
    ended = Limit("test-sweep-old", limit=5, window=timedelta(minutes=5))
    key = unique_key()
    keys = [unique_key() for _ in range(40)]  # counters in most of the bucket's 16 partitions
    for other in keys:
        limiter.hold(ended, other)
    _, ends = ended.window_of(clock.now())
    clock.advance(minutes=10)
    live = Limit("test-sweep-live", limit=5, window=timedelta(minutes=5))
    limiter.hold(live, key)
    assert limiter.sweep(bucket_of(ends)) >= 40
    assert limiter.tally(live, key)[0] == 1
    clock.advance(minutes=-10)
    assert all(limiter.tally(ended, other)[0] == 0 for other in keys)


def test_counters_store_no_raw_key(limiter, svc, clock):
    limit = Limit("test-raw", limit=5, window=timedelta(minutes=5))
    key = unique_key()
    limiter.hold(limit, key)
    rows = list(svc.storage.table("ratelimits").query_entities("RowKey ge 'test-raw:' and RowKey lt 'test-raw;'"))
    assert rows and not any(key in row["RowKey"] or key in row["PartitionKey"] for row in rows)


@pytest.mark.usefixtures("fresh_cursor")
def test_the_cleanup_job_sweeps_rate_limit_counters_of_ended_buckets(make_services, clock):
    # The cursor is global and only moves forward: a run of another test (or one at the
    # wall time, later than this test's clock) must not leave this bucket behind it.
    clock.advance(days=402)  # a day no other test counts in, and a look-back of an hour, not a day
    svc = make_services(cleanup_lookback_hours=1)
    limit = Limit("test-cleanup-sweep", limit=5, window=timedelta(minutes=5))
    limiter = RateLimiter(svc.storage.table("ratelimits"), svc.keys, svc.clock)
    key = unique_key()
    limiter.hold(limit, key)
    clock.advance(minutes=15)
    run = svc.cleanup.run()
    assert run.counts.get("ratelimit", 0) >= 1
    clock.advance(minutes=-15)
    assert limiter.tally(limit, key)[0] == 0
