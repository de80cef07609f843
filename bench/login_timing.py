"""Login and registration timing: does an answer's time tell whether an account exists?

Runs the use case against a fresh Azurite at the configured bcrypt cost and prints the
median time of each case and the ratio of the slowest to the fastest. Exits 1 when they
are more than 10% apart. The per-IP limits are left out (no client IP), so the figures
are the path itself.

- `login` (default): failed logins, alternating an unknown email and a wrong password
  (user lookup, bcrypt, audit).
- `registration`: registering a new address, an address still pending, and a taken one
  (an active account, registered again and again, so its owner was told recently); the
  mail budget is raised out of reach, so every case goes the whole way.

    python -m bench.login_timing [--case login|registration] [--rounds 60] [--cost 12]
"""

from __future__ import annotations

import argparse
import base64
import secrets
import statistics
import sys
import time

from devhost.azurite import Azurite
from shared import errors
from shared.accounts.addresses import parse_email
from shared.accounts.passwords import PasswordHasher
from shared.accounts.users import User, new_user_id
from shared.config import Settings
from shared.services import Services

TOLERANCE = 0.10


def timed_failure(svc: Services, email: str, password: str) -> float:
    start = time.perf_counter()
    try:
        svc.accounts.login(email, password)
    except errors.Unauthenticated:
        pass
    else:
        raise AssertionError("the login was expected to fail")
    return time.perf_counter() - start


def seed_user(svc: Services, password: str) -> str:
    address = parse_email(f"bench.{secrets.token_hex(4)}@example.com")
    now = svc.clock.now()
    svc.users.create(
        User(
            user_id=new_user_id(),
            email=address.display,
            email_key=address.key,
            email_hash=address.key_hash,
            role="user",
            status="active",
            password_hash=PasswordHasher(svc.settings.bcrypt_cost).hash(password),
            password_changed_at=now,
            created_at=now,
            activated_at=now,
        )
    )
    return address.display


def timed_registration(svc: Services, email: str, password: str) -> float:
    start = time.perf_counter()
    svc.accounts.register(email, password)
    return time.perf_counter() - start


def registration_samples(svc: Services, password: str, rounds: int, warmup: int) -> dict[str, list[float]]:
    """Alternate the three cases, in a rotating order so drift hits each alike."""
    taken = seed_user(svc, password)
    pending = f"pending.{secrets.token_hex(4)}@example.com"
    svc.accounts.register(pending, password)
    samples: dict[str, list[float]] = {"new address": [], "pending address": [], "taken address": []}
    for round_ in range(warmup + rounds):
        cases = [
            ("new address", f"new.{secrets.token_hex(6)}@example.com"),
            ("pending address", pending),
            ("taken address", taken),
        ]
        shift = round_ % len(cases)
        for name, address in cases[shift:] + cases[:shift]:
            elapsed = timed_registration(svc, address, password)
            if round_ >= warmup:
                samples[name].append(elapsed)
    return samples


def login_samples(svc: Services, password: str, rounds: int, warmup: int) -> dict[str, list[float]]:
    email = seed_user(svc, password)
    unknown: list[float] = []
    wrong: list[float] = []
    for round_ in range(warmup + rounds):
        # alternate the order so drift in the machine's load hits both alike
        pair = [
            (unknown, f"nobody.{secrets.token_hex(6)}@example.com", password),
            (wrong, email, "wrong-" + secrets.token_urlsafe(12)),
        ]
        for samples, address, attempt in pair if round_ % 2 else reversed(pair):
            elapsed = timed_failure(svc, address, attempt)
            if round_ >= warmup:
                samples.append(elapsed)
    return {"unknown email": unknown, "wrong password": wrong}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="attempts of each kind (default 60)")
    parser.add_argument("--cost", type=int, default=12, help="bcrypt cost (default 12, the production default)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--case", choices=["login", "registration"], default="login")
    args = parser.parse_args(argv)
    out_of_reach = {
        "limit_registration_mails_per_recipient": "1000000/1h",
        "limit_registration_mails_per_recipient_daily": "1000000/1d",
        "limit_registration_mails_global": "1000000/1h",
    }

    with Azurite.on_free_ports() as azurite:
        settings = Settings(
            storage_connection_string=azurite.connection_string,
            hmac_keys="b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            hmac_active_key_id="b1",
            bcrypt_cost=args.cost,
            app_environment="local",
            mail_provider="devmailbox",
            instance_id="bench",
            **out_of_reach,
        )
        svc = Services(settings)
        svc.storage.ensure_created()
        password = "violet-Harbor-engine-42"
        sample = registration_samples if args.case == "registration" else login_samples
        samples = sample(svc, password, args.rounds, args.warmup)

    medians = {name: statistics.median(times) for name, times in samples.items()}
    ratio = max(medians.values()) / min(medians.values())
    print(f"{args.case}: bcrypt cost {args.cost}, {args.rounds} attempts each")
    for name, median in medians.items():
        print(f"{name:16s} median {median * 1000:8.2f} ms")
    print(f"ratio (slowest/fastest) {ratio:7.3f}  (limit {1 + TOLERANCE:.2f})")
    if ratio > 1 + TOLERANCE:
        print("FAIL: the medians are more than 10% apart")
        return 1
    print("PASS: within 10%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
