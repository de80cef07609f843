"""Abuse resistance: which limits apply where, built on the shared rate limiter.

- Attempts that cost us or a third party (registration, resend, issuance, activation)
  are counted per client IP (and per user for issuance) on every call.
- Guessing: failed logins per IP, per IP and account, and per account; failed
  redemptions per IP and globally. Redemption attempts on one resource are counted
  before the code is looked at, so concurrent guesses cannot overshoot that budget.
- A stranger can never lock an owner out for long: per-IP limits stop one source first;
  only failures spread over many sources pause the account, with a growing wait that is
  capped; a resource's redemption pauses until its short window ends, and its codes are
  never burned by wrong guesses.
- When the global failed-redemption budget is spent, the per-IP allowance tightens.
"""

from __future__ import annotations

from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared import errors
from shared.clock import Clock
from shared.concurrency import run_parallel
from shared.config import Settings
from shared.expiry import ExpiryIndex
from shared.abuse.ratelimit import Limit, RateLimiter

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
GLOBAL = "global"
PAUSE_KIND = "pause"  # kind of the expiry-index rows of account pauses
# How long a pause level is remembered after the pause ends, before it starts again at 1.
PAUSE_MEMORY = timedelta(days=1)
# The global failure budget only tightens the per-source allowance, so a process reads it
# at most once a second: a redemption then usually makes no query of it.
GLOBAL_COUNT_TTL = timedelta(seconds=1)


def limit_from(name: str, spec: str, shards: int = 1) -> Limit:
    count, _, window = spec.partition("/")
    return Limit(name, int(count), timedelta(seconds=int(window[:-1]) * _SECONDS[window[-1]]), shards)


@dataclass(frozen=True)
class Limits:
    register_ip: Limit
    login_ip: Limit
    login_ip_account: Limit
    login_account: Limit
    activation_ip: Limit
    resend_ip: Limit
    issue_user: Limit
    issue_ip: Limit
    redeem_ip: Limit
    redeem_ip_tight: Limit
    redeem_resource: Limit
    redeem_global: Limit

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        redeem_ip = limit_from("redeem-fail-ip", s.limit_redeem_failures_per_ip)
        return cls(
            register_ip=limit_from("register-ip", s.limit_register_per_ip),
            login_ip=limit_from("login-fail-ip", s.limit_login_failures_per_ip),
            login_ip_account=limit_from("login-fail-ip-account", s.limit_login_failures_per_ip_and_account),
            login_account=limit_from("login-fail-account", s.limit_login_failures_per_account),
            activation_ip=limit_from("activation-ip", s.limit_activation_per_ip),
            resend_ip=limit_from("resend-ip", s.limit_resend_per_ip),
            issue_user=limit_from("issue-user", s.limit_issue_per_user),
            issue_ip=limit_from("issue-ip", s.limit_issue_per_ip),
            redeem_ip=redeem_ip,
            # same counter, smaller allowance
            redeem_ip_tight=replace(redeem_ip, limit=s.limit_redeem_failures_per_ip_tightened),
            redeem_resource=limit_from("redeem-resource", s.limit_redeem_attempts_per_resource),
            # sharded: every failed redemption anywhere counts here
            redeem_global=limit_from("redeem-fail-global", s.limit_redeem_failures_global, shards=16),
        )


class AccountPauses:
    """Growing, capped pauses of an account under distributed password guessing.

    One row per account (keyed hash), `{level, pausedUntil}`; each pause doubles the
    last, up to the cap, and a successful login forgets the level."""

    def __init__(self, table: TableClient, expiry: ExpiryIndex, clock: Clock, base: timedelta, cap: timedelta):
        self._table = table
        self._expiry = expiry
        self._clock = clock
        self._base = base
        self._cap = cap

    def paused_until(self, partition: str) -> datetime | None:
        try:
            until = self._table.get_entity(partition, "pause")["pausedUntil"]
        except ResourceNotFoundError:
            return None
        return until if until > self._clock.now() else None

    def pause(self, partition: str) -> datetime:
        """Start the next, longer pause (unless one is running); returns when it ends."""
        now = self._clock.now()
        for _ in range(10):
            try:
                row = self._table.get_entity(partition, "pause")
            except ResourceNotFoundError:
                row = None
            if row is not None and row["pausedUntil"] > now:
                return row["pausedUntil"]
            level = (row["level"] if row is not None else 0) + 1
            until = now + min(self._base * 2 ** (level - 1), self._cap)
            entity = {"PartitionKey": partition, "RowKey": "pause", "level": level, "pausedUntil": until}
            # registered before the row is written, so cleanup always finds it
            self._expiry.add(PAUSE_KIND, partition, until + PAUSE_MEMORY, pausePartition=partition)
            try:
                if row is None:
                    self._table.create_entity(entity)
                else:
                    self._table.update_entity(
                        entity, mode=UpdateMode.REPLACE, etag=row.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )  # fmt: skip
                return until
            except (ResourceExistsError, ResourceModifiedError):
                continue  # another instance paused it first: read again
        return now + self._base

    def forget(self, partition: str) -> None:
        self._table.delete_entity(partition, "pause")

    def purge(self, index_rows: list[dict]) -> int:
        """Cleanup: drop pauses whose memory ran out (a later pause re-registered its row
        under a later bucket, so only rows that are still this old go)."""
        now = self._clock.now()
        for row in index_rows:
            with suppress(ResourceNotFoundError):
                pause = self._table.get_entity(row["pausePartition"], "pause")
                if pause["pausedUntil"] + PAUSE_MEMORY <= now:
                    self._table.delete_entity(row["pausePartition"], "pause", etag=pause.metadata["etag"],
                                              match_condition=MatchConditions.IfNotModified)  # fmt: skip
        return len(index_rows)


class AbuseGuard:
    def __init__(self, limiter: RateLimiter, pauses: AccountPauses, limits: Limits, pool: Executor):
        self._limiter = limiter
        self._pauses = pauses
        self.limits = limits
        self._pool = pool  # leaf calls only: nothing run here submits to the pool again
        self._global_failures_cache: tuple[datetime, int] | None = None  # (valid until, count)

    # -- cleanup

    def purge_pauses(self, index_rows: list[dict]) -> int:
        return self._pauses.purge(index_rows)

    def sweep_counters(self, bucket: str) -> int:
        return self._limiter.sweep(bucket)

    # -- attempts counted on every call

    def registration(self, ip: str) -> None:
        self._limiter.consume(self.limits.register_ip, ip)

    def activation(self, ip: str) -> None:
        self._limiter.consume(self.limits.activation_ip, ip)

    def resend(self, ip: str) -> None:
        self._limiter.consume(self.limits.resend_ip, ip)

    def reserve_issuance(self, user_id: str, client: str) -> None:
        """Before issuing: count the issuance for the user and for the source, strictly
        (a refused or failed issuance counts too)."""
        run_parallel(
            self._pool,
            lambda: self._limiter.reserve(self.limits.issue_user, user_id),
            lambda: self._limiter.reserve(self.limits.issue_ip, client),
        )

    # -- logins: counted on failure

    def _account_key(self, email: str) -> str:
        return f"account:{email}"

    def check_login(self, ip: str, email: str) -> None:
        """Before the password is checked: 429 while this source or the account is held back."""
        _, _, until = run_parallel(
            self._pool,
            lambda: self._limiter.check(self.limits.login_ip, ip),
            lambda: self._limiter.check(self.limits.login_ip_account, f"{ip}|{email}"),
            lambda: self._pauses.paused_until(self._pause_partition(email)),
        )
        if until is not None:
            raise errors.TooManyRequests(self._limiter.seconds_until(until))

    def login_failed(self, ip: str, email: str) -> bool:
        """Count a failed login; True when it started a pause of the account."""
        account = self._account_key(email)
        _, _, account_failures = run_parallel(
            self._pool,
            lambda: self._limiter.hit(self.limits.login_ip, ip),
            lambda: self._limiter.hit(self.limits.login_ip_account, f"{ip}|{email}"),
            lambda: self._limiter.hit(self.limits.login_account, account),
        )
        if account_failures < self.limits.login_account.limit:
            return False
        self._pauses.pause(self._pause_partition(email))
        return account_failures == self.limits.login_account.limit

    def login_succeeded(self, email: str) -> None:
        self._pauses.forget(self._pause_partition(email))

    def _pause_partition(self, email: str) -> str:
        return f"pause:{self._limiter.key_hash(self._account_key(email))}"

    # -- redemptions: counted on failure

    def reserve_redemption(self, ip: str, resource_id: str) -> None:
        """Before a code is looked at: count the attempt on the resource, and 429 when
        the resource's attempts or this source's failures are spent (the per-source
        allowance tightens while the global failure budget is spent)."""
        (ip_count, ip_window_end), resource_attempts = run_parallel(
            self._pool,
            lambda: self._limiter.count(self.limits.redeem_ip, ip),
            lambda: self._limiter.attempt(self.limits.redeem_resource, resource_id),
        )
        spent = self._global_failures() >= self.limits.redeem_global.limit
        ip_limit = self.limits.redeem_ip_tight if spent else self.limits.redeem_ip
        if ip_count >= ip_limit.limit:
            raise errors.TooManyRequests(self._limiter.seconds_until(ip_window_end))
        if resource_attempts > self.limits.redeem_resource.limit:
            _, resource_window_end = self.limits.redeem_resource.window_of(self._limiter.now())
            raise errors.TooManyRequests(self._limiter.seconds_until(resource_window_end))

    def _global_failures(self) -> int:
        now = self._limiter.now()
        cached = self._global_failures_cache
        if cached is not None and now < cached[0]:
            return cached[1]
        count, _ = self._limiter.count(self.limits.redeem_global, GLOBAL)
        self._global_failures_cache = (now + GLOBAL_COUNT_TTL, count)
        return count

    def redemption_failed(self, ip: str) -> None:
        self._global_failures_cache = None  # this process sees its own failures at once
        run_parallel(
            self._pool,
            lambda: self._limiter.hit(self.limits.redeem_global, GLOBAL),
            lambda: self._limiter.hit(self.limits.redeem_ip, ip),
        )
