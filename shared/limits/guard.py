"""Which limits apply where, built on the shared rate limiter (shared/limits/ratelimit.py).

Every limit takes its slot before the work it guards, so concurrency cannot overshoot it
(`reserve` for acts counted whatever their outcome, `hold` then `release` for failures).
Sources are client addresses as shared/limits/sources.py parses them (IPv6 per /64).

- Acts that cost us or a third party (registration, activation, resend, unlock mails,
  issuance) are reserved per source (and per user or account) on every call.
- Passwords: from an unknown device, the source's failures (in all and on this account)
  are held first, then the account's (a short and a daily window); a right password
  gives its slots back. Once the account's slots are spent, unknown devices are paused:
  every answer to them is the same, right password or wrong, and no password is checked;
  the owner gets in from a known device (its own small budget, never held back by
  failures elsewhere) or with an unlock code by mail. So at most
  `login_account_daily.limit` wrong passwords per account per day are checked from
  unknown devices, whatever the number of sources.
- Redemptions: the source's failure budget is reserved before the code is looked at, and
  given back when the code is redeemed. The resource's budget (every source) and the
  source's share of it, so one source uses only part of it, live on the resource's
  attempts row beside its codes (shared/codes/store.py): read with the code, and written
  ETag-conditionally in one transaction with the code's own update, so of racing tries
  at the last slot only one is judged. Only failures count there. The global failure
  budget, once spent, tightens only sources that failed in the window before: a guest
  who never failed always has the full allowance, whatever a botnet does.
- A source's failure limit refusing it (sign-in, activation, redemption, its share of a
  resource) is a strike towards a ban at the edge (shared/limits/bans.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared import errors
from shared.concurrency import run_parallel
from shared.config import Settings
from shared.limits.ratelimit import Claim, Limit, RateLimiter, Slot

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
GLOBAL = "global"
# The global failure budget only tightens the allowance of sources that failed before, so
# a process reads it at most once a second: a redemption then usually makes no query of it.
GLOBAL_COUNT_TTL = timedelta(seconds=1)

SIGN_IN_PAUSED = (
    "Too many failed sign-ins to this account from new devices. Sign in from a device you used "
    "before, or ask for an unlock code (POST /api/sessions/unlock) and sign in with it."
)


def limit_from(name: str, spec: str) -> Limit:
    count, _, window = spec.partition("/")
    return Limit(name, int(count), timedelta(seconds=int(window[:-1]) * _SECONDS[window[-1]]))


@dataclass(frozen=True)
class Limits:
    register_source: Limit
    activation_source: Limit
    resend_source: Limit
    unlock_source: Limit
    unlock_account: Limit
    login_source: Limit
    login_source_account: Limit
    login_account: Limit
    login_account_daily: Limit
    login_device: Limit
    pause_notice: Limit
    issue_user: Limit
    issue_source: Limit
    redeem_source: Limit
    redeem_source_tightened: int
    redeem_resource_source: Limit
    redeem_resource: Limit
    redeem_global: Limit

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        redeem_source = limit_from("redeem-fail-ip", s.limit_redeem_failures_per_ip)
        return cls(
            register_source=limit_from("register-ip", s.limit_register_per_ip),
            activation_source=limit_from("activation-ip", s.limit_activation_per_ip),
            resend_source=limit_from("resend-ip", s.limit_resend_per_ip),
            unlock_source=limit_from("unlock-ip", s.limit_unlock_per_ip),
            unlock_account=limit_from("unlock-account", s.limit_unlock_mails_per_account),
            login_source=limit_from("login-fail-ip", s.limit_login_failures_per_ip),
            login_source_account=limit_from("login-fail-ip-account", s.limit_login_failures_per_ip_and_account),
            login_account=limit_from("login-fail-account", s.limit_login_failures_per_account),
            login_account_daily=limit_from("login-fail-account-day", s.limit_login_failures_per_account_daily),
            login_device=limit_from("login-fail-device", s.limit_login_failures_per_device),
            pause_notice=limit_from("pause-notice", "1/1d"),
            issue_user=limit_from("issue-user", s.limit_issue_per_user),
            issue_source=limit_from("issue-ip", s.limit_issue_per_ip),
            redeem_source=redeem_source,
            # the same counter's smaller allowance for repeat offenders while the global budget is spent
            redeem_source_tightened=s.limit_redeem_failures_per_ip_tightened,
            redeem_resource_source=limit_from("redeem-resource-ip", s.limit_redeem_attempts_per_resource_and_ip),
            redeem_resource=limit_from("redeem-resource", s.limit_redeem_attempts_per_resource),
            # every failed redemption anywhere counts here
            redeem_global=limit_from("redeem-fail-global", s.limit_redeem_failures_global),
        )


@dataclass(frozen=True)
class ResourceAttempts:
    """A resource's redemption failures in the current windows: all of them, and per
    source (keyed hashes, shared/limits/ratelimit.py `digests`)."""

    failed_window: int
    failed_window_ends: datetime
    failed: int
    by_source_window: int
    by_source_window_ends: datetime
    by_source: dict[str, int]


@dataclass
class Attempt:
    """Slots held for one password check (or unlock code): `releasing` gives them back
    when the try turns out not to count (it succeeded), a failure keeps them."""

    _giving_back: Callable[[list[Slot]], list[Future]]
    slots: list[Slot]

    def releasing(self) -> list[Future]:
        """Start giving the slots back; the caller waits on the futures beside its own work."""
        futures, self.slots = self._giving_back(self.slots), []
        return futures


class AbuseGuard:
    def __init__(
        self,
        limiter: RateLimiter,
        limits: Limits,
        pool: Executor,
        strike: Callable[[str, str, int], None] | None = None,
    ):
        self._limiter = limiter
        self.limits = limits
        self._pool = pool  # leaf calls only: nothing run here submits to the pool again
        self._strike = strike  # BanList.strike: a failure limit refused a source
        self._global_failures_cache: tuple[datetime, int] | None = None  # (valid until, count)
        self._global_read = threading.Lock()  # one thread of the process reads it at a time

    def sweep_counters(self, bucket: str) -> int:
        return self._limiter.sweep(bucket)

    def _hold(self, *wanted: tuple[Limit, str]) -> list[Slot]:
        """Hold a slot of each, side by side; when one is refused, give back the others
        and raise its TooManyRequests (the longest wait when several are)."""
        if len(wanted) == 1:
            outcomes = [self._try_hold(*wanted[0])]
        else:
            outcomes = run_parallel(self._pool, *(lambda pair=pair: self._try_hold(*pair) for pair in wanted))
        slots = [outcome for outcome in outcomes if isinstance(outcome, Slot)]
        refusals = [outcome for outcome in outcomes if isinstance(outcome, errors.TooManyRequests)]
        if refusals:
            self._give_back(slots)
            raise max(refusals, key=lambda refusal: refusal.retry_after_seconds)
        return slots

    def _struck(self, source: str, limit: Limit) -> None:
        """A failure limit refused `source`: a strike towards a ban (shared/limits/bans.py)."""
        if self._strike is not None:
            self._strike(source, limit.name, limit.window_of(self._limiter.now())[0])

    @contextmanager
    def _striking(self, source: str, limit: Limit) -> Iterator[None]:
        """A refusal inside the block is a strike of `source` in `limit`'s window."""
        try:
            yield
        except errors.TooManyRequests:
            self._struck(source, limit)
            raise

    def _try_hold(self, limit: Limit, key: str) -> Slot | errors.TooManyRequests:
        try:
            return self._limiter.hold(limit, key)
        except errors.TooManyRequests as refusal:
            return refusal

    # -- acts counted on every call

    def registration(self, source: str) -> None:
        self._limiter.reserve(self.limits.register_source, source)

    def activation(self, source: str) -> None:
        with self._striking(source, self.limits.activation_source):
            self._limiter.reserve(self.limits.activation_source, source)

    def resend(self, source: str) -> None:
        self._limiter.reserve(self.limits.resend_source, source)

    def unlock_request(self, source: str) -> None:
        self._limiter.reserve(self.limits.unlock_source, source)

    def unlock_mail_allowed(self, account: str) -> bool:
        """Whether another unlock code may be mailed for this account now (the answer to
        the caller is the same either way)."""
        return self._reserved(self.limits.unlock_account, f"account:{account}")

    def pause_notice_due(self, account: str) -> bool:
        """At most one "someone is guessing your password" mail per account a day."""
        return self._reserved(self.limits.pause_notice, f"account:{account}")

    def _reserved(self, limit: Limit, key: str) -> bool:
        try:
            self._limiter.reserve(limit, key)
        except errors.TooManyRequests:
            return False
        return True

    def reserve_issuance(self, user_id: str, source: str) -> None:
        """Before issuing: count the issuance for the user and for the source, strictly
        (a refused or failed issuance counts too)."""
        run_parallel(
            self._pool,
            lambda: self._limiter.reserve(self.limits.issue_user, user_id),
            lambda: self._limiter.reserve(self.limits.issue_source, source),
        )

    # -- passwords

    def password_attempt(
        self, source: str, account: str, *, device: str | None = None, unlock: bool = False
    ) -> Attempt:
        """Before a password (or an unlock code) is checked. A known device (`device`, its
        id) meets only its own budget; an unlock-code sign-in only the source's; any other
        try the source's, then the account's, and past those TooManyRequests with code
        `sign_in_paused` and no check at all."""
        if device is not None:
            return Attempt(self._giving_back, self._hold((self.limits.login_device, device)))
        with self._striking(source, self.limits.login_source):
            source_slots = self._hold(
                (self.limits.login_source, source), (self.limits.login_source_account, f"{source}|{account}")
            )
        if unlock:
            return Attempt(self._giving_back, source_slots)
        key = f"account:{account}"
        try:
            account_slots = self._hold((self.limits.login_account, key), (self.limits.login_account_daily, key))
        except errors.TooManyRequests as refusal:
            self._give_back(source_slots)  # a paused account costs the source nothing
            raise errors.TooManyRequests(refusal.retry_after_seconds, SIGN_IN_PAUSED, code="sign_in_paused") from None
        return Attempt(self._giving_back, source_slots + account_slots)

    # -- redemptions

    def reserve_redemption(self, source: str) -> Claim:
        """Before a code is looked at: a slot of the source's failure budget, 429 when it
        is spent (or tightened); `give_back` when the code is redeemed."""
        with self._striking(source, self.limits.redeem_source):
            claim = self._limiter.reserve(self.limits.redeem_source, source)
            if claim.number > self.limits.redeem_source_tightened and self._tightened(source):
                self._limiter.give_back(claim)
                raise errors.TooManyRequests(self._limiter.seconds_until(claim.window_ends))
        return claim

    def give_back(self, claim: Claim) -> None:
        self._limiter.give_back(claim)

    def check_resource_attempts(self, row: Mapping | None, source: str) -> None:
        """429 when the resource's failure budget, or this source's share of it, is spent
        in the current window (`row`: the resource's attempts row, None before its first)."""
        attempts = self._resource_attempts(row)
        by_source = sum(attempts.by_source.get(digest, 0) for digest in self._limiter.digests(source))
        if attempts.failed >= self.limits.redeem_resource.limit:
            raise errors.TooManyRequests(self._limiter.seconds_until(attempts.failed_window_ends))
        if by_source >= self.limits.redeem_resource_source.limit:
            self._struck(source, self.limits.redeem_resource_source)
            raise errors.TooManyRequests(self._limiter.seconds_until(attempts.by_source_window_ends))

    def resource_attempt(self, row: Mapping | None, source: str, *, failed: bool) -> dict:
        """The attempts row's fields after this try: a failure counts for the resource and
        for the source's share. A redeemed code counts nowhere, but writes the row all the
        same, so the try takes its turn on the row's ETag like every other."""
        attempts = self._resource_attempts(row)
        by_source = dict(attempts.by_source)
        if failed:
            active = self._limiter.digests(source)[0]
            by_source[active] = by_source.get(active, 0) + 1
        return {
            "failedWindow": attempts.failed_window,
            "failed": attempts.failed + int(failed),
            "bySourceWindow": attempts.by_source_window,
            "bySource": json.dumps(by_source, separators=(",", ":")),
        }

    def resource_pressure(self, row: Mapping | None) -> dict:
        """What the owner sees of guessing on a resource: failed attempts in the current
        window, and whether its budget is spent (redemption paused until the window ends)."""
        attempts = self._resource_attempts(row)
        paused = attempts.failed >= self.limits.redeem_resource.limit
        return {
            "failedAttempts": attempts.failed,
            "paused": paused,
            "pausedUntil": attempts.failed_window_ends if paused else None,
        }

    def _resource_attempts(self, row: Mapping | None) -> ResourceAttempts:
        """The row's counts in the current windows (a count of an earlier window is 0)."""
        now = self._limiter.now()
        failed_window, failed_ends = self.limits.redeem_resource.window_of(now)
        source_window, source_ends = self.limits.redeem_resource_source.window_of(now)
        row = row or {}
        same_failed = row.get("failedWindow") == failed_window
        same_source = row.get("bySourceWindow") == source_window
        return ResourceAttempts(
            failed_window=failed_window,
            failed_window_ends=failed_ends,
            failed=row.get("failed", 0) if same_failed else 0,
            by_source_window=source_window,
            by_source_window_ends=source_ends,
            by_source=json.loads(row.get("bySource", "{}")) if same_source else {},
        )

    def _tightened(self, source: str) -> bool:
        """Whether a source's failure allowance is tightened: only while the global budget
        is spent, and only for a source that failed in the window before, so a guest who
        never failed keeps the full allowance."""
        return (
            self._global_failures() >= self.limits.redeem_global.limit
            and self._limiter.reserved_before(self.limits.redeem_source, source) > 0
        )

    def _giving_back(self, slots: list[Slot]) -> list[Future]:
        """Start releasing the slots side by side (a successful sign-in gives back four)."""
        return [self._pool.submit(self._limiter.release, slot) for slot in slots]

    def _give_back(self, slots: list[Slot]) -> None:
        for released in self._giving_back(slots):
            released.result()

    def _global_failures(self) -> int:
        now = self._limiter.now()
        cached = self._global_failures_cache
        if cached is not None and now < cached[0]:
            return cached[1]
        if not self._global_read.acquire(blocking=cached is None):
            return cached[1]  # another thread is reading it: the last figure will do
        try:
            count, _ = self._limiter.tally(self.limits.redeem_global, GLOBAL)
            self._global_failures_cache = (now + GLOBAL_COUNT_TTL, count)
        finally:
            self._global_read.release()
        return count

    def redemption_failed(self) -> None:
        self._limiter.note(self.limits.redeem_global, GLOBAL)
        cached = self._global_failures_cache
        if cached is not None:  # this process sees its own failures at once, without a read
            self._global_failures_cache = (cached[0], cached[1] + 1)
