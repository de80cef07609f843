"""The brief's brute-force target, computed from the settings: the one place the README's
figures, the test that guards them and `python -m shared.limits.odds` read.

An attacker with 1,000 sources, while 10,000 codes are active, tries to find a valid code
within one code lifetime; target: probability <= 1e-4 without and with one leaked guest
link, at the default lifetime and at the longest a code may be given.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from shared.codes.models import CODE_SPACE, LONGEST_TTL_SECONDS
from shared.config import Settings
from shared.limits.guard import limit_from
from shared.resources.store import RESOURCE_ID_BITS

TARGET = 1e-4
ATTACKER_SOURCES = 1000
ACTIVE_CODES = 10_000


@dataclass(frozen=True)
class Odds:
    attacker_sources: int
    active_codes: int
    lifetime_seconds: int
    failures_per_source: str
    attempts_per_resource: str
    max_active_codes_per_resource: int
    guesses_per_lifetime_without_link: int
    guesses_per_lifetime_on_leaked_resource: int
    without_link: float
    with_one_leaked_link: float


def windows_touched(lifetime_seconds: float, window_seconds: float) -> int:
    """How many fixed windows an interval of this length can overlap at most."""
    return math.ceil(lifetime_seconds / window_seconds) + 1


def brute_force_odds(
    settings: Settings,
    lifetime_seconds: int,
    attacker_sources: int = ATTACKER_SOURCES,
    active_codes: int = ACTIVE_CODES,
) -> Odds:
    per_source = limit_from("source", settings.limit_redeem_failures_per_ip)
    per_resource = limit_from("resource", settings.limit_redeem_attempts_per_resource)
    codes_per_resource = settings.max_active_codes_per_resource

    # Without a link every guess must also name a resource id: 128 random bits. A guess
    # hits only if the id is one of the (at most `active_codes`) resources with a live
    # code and the code is one of that resource's codes.
    guesses = attacker_sources * per_source.limit * windows_touched(lifetime_seconds, per_source.window.total_seconds())
    per_guess = active_codes / 2**RESOURCE_ID_BITS * codes_per_resource / CODE_SPACE
    without_link = guesses * per_guess

    # With one leaked link every attempt on that resource takes a slot of its budget,
    # whatever the source, before the code is looked at (so racing cannot overshoot).
    on_resource = per_resource.limit * windows_touched(lifetime_seconds, per_resource.window.total_seconds())
    with_link = on_resource * codes_per_resource / CODE_SPACE + without_link

    return Odds(
        attacker_sources=attacker_sources,
        active_codes=active_codes,
        lifetime_seconds=lifetime_seconds,
        failures_per_source=settings.limit_redeem_failures_per_ip,
        attempts_per_resource=settings.limit_redeem_attempts_per_resource,
        max_active_codes_per_resource=codes_per_resource,
        guesses_per_lifetime_without_link=guesses,
        guesses_per_lifetime_on_leaked_resource=on_resource,
        without_link=without_link,
        with_one_leaked_link=with_link,
    )


def odds_at_both_lifetimes(settings: Settings) -> list[Odds]:
    """The figures at the default lifetime and at the longest allowed."""
    return [brute_force_odds(settings, lifetime) for lifetime in (settings.code_ttl_seconds, LONGEST_TTL_SECONDS)]


def wrong_passwords_per_account_per_day(settings: Settings) -> int:
    """The most wrong passwords checked against one account in a day from unknown
    devices, whatever the number of sources: the daily account budget."""
    return limit_from("day", settings.limit_login_failures_per_account_daily).limit


def default_settings() -> Settings:
    """The defaults, whatever this process's environment says (keys are placeholders)."""
    return Settings.model_construct(**{name: field.default for name, field in Settings.model_fields.items()})


def main() -> None:
    settings = default_settings()
    all_odds = odds_at_both_lifetimes(settings)
    for odds in all_odds:
        print(f"-- lifetime {odds.lifetime_seconds} s")
        for name, value in asdict(odds).items():
            print(f"{name:42} {value:.3g}" if isinstance(value, float) else f"{name:42} {value}")
    print(f"wrong passwords per account per day (unknown devices): {wrong_passwords_per_account_per_day(settings)}")
    worst = max(max(odds.without_link, odds.with_one_leaked_link) for odds in all_odds)
    print(f"target <= {TARGET:g}: {'PASS' if worst <= TARGET else 'FAIL'}")


if __name__ == "__main__":
    main()
