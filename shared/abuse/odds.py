"""The brief's brute-force target, computed from the default settings.

An attacker with 1,000 IPs, while 10,000 codes are active, tries to find a valid code
within one 10-minute lifetime; target: probability <= 1e-4, without and with one leaked
guest link. Run `python -m bench.brute_force_odds` to print the figures and their inputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from shared.abuse.guard import limit_from
from shared.config import Settings

CODE_SPACE = 10**6  # 6 digits
RESOURCE_ID_BITS = 128  # secrets.token_urlsafe(16)
TARGET = 1e-4


@dataclass(frozen=True)
class Odds:
    attacker_ips: int
    active_codes: int
    lifetime_seconds: int
    failures_per_ip: str
    attempts_per_resource: str
    max_active_codes_per_resource: int
    guesses_per_lifetime_without_link: int
    guesses_per_lifetime_on_leaked_resource: int
    without_link: float
    with_one_leaked_link: float


def windows_touched(lifetime_seconds: float, window_seconds: float) -> int:
    """How many fixed windows an interval of this length can overlap at most."""
    return math.ceil(lifetime_seconds / window_seconds) + 1


def brute_force_odds(settings: Settings, attacker_ips: int = 1000, active_codes: int = 10_000) -> Odds:
    lifetime = settings.code_ttl_seconds
    per_ip = limit_from("ip", settings.limit_redeem_failures_per_ip)
    per_resource = limit_from("resource", settings.limit_redeem_attempts_per_resource)
    codes_per_resource = settings.max_active_codes_per_resource

    # Without a link every guess must also name a resource id: 128 random bits. A guess
    # hits only if the id is one of the (at most `active_codes`) resources with a live
    # code and the code is one of that resource's codes.
    guesses = attacker_ips * per_ip.limit * windows_touched(lifetime, per_ip.window.total_seconds())
    per_guess = active_codes / 2**RESOURCE_ID_BITS * codes_per_resource / CODE_SPACE
    without_link = guesses * per_guess

    # With one leaked link every attempt on that resource counts against its budget,
    # whatever the source, before the code is looked at (so no overshoot by racing).
    on_resource = per_resource.limit * windows_touched(lifetime, per_resource.window.total_seconds())
    with_link = on_resource * codes_per_resource / CODE_SPACE + without_link

    return Odds(
        attacker_ips=attacker_ips,
        active_codes=active_codes,
        lifetime_seconds=lifetime,
        failures_per_ip=settings.limit_redeem_failures_per_ip,
        attempts_per_resource=settings.limit_redeem_attempts_per_resource,
        max_active_codes_per_resource=codes_per_resource,
        guesses_per_lifetime_without_link=guesses,
        guesses_per_lifetime_on_leaked_resource=on_resource,
        without_link=without_link,
        with_one_leaked_link=with_link,
    )


def default_settings() -> Settings:
    """The defaults, whatever this process's environment says (keys are placeholders)."""
    return Settings.model_construct(**{name: field.default for name, field in Settings.model_fields.items()})


def main() -> None:
    odds = brute_force_odds(default_settings())
    for name, value in asdict(odds).items():
        print(f"{name:42} {value:.3g}" if isinstance(value, float) else f"{name:42} {value}")
    verdict = "PASS" if max(odds.without_link, odds.with_one_leaked_link) <= TARGET else "FAIL"
    print(f"target <= {TARGET:g}: {verdict}")


if __name__ == "__main__":
    main()
