"""Login timing: does a failed login tell an unknown email from a wrong password?

Runs the login use case against a fresh Azurite at the configured bcrypt cost, alternating
unknown-email and wrong-password attempts, and prints the median time of each and their
ratio. Exits 1 when the medians are more than 10% apart. The rate limiter is left out
(no client IP), so the figures are the login path itself: user lookup, bcrypt, audit.

    python -m bench.login_timing [--rounds 60] [--cost 12]
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
from shared.accounts.emails import parse_email
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="attempts of each kind (default 60)")
    parser.add_argument("--cost", type=int, default=12, help="bcrypt cost (default 12, the production default)")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)

    with Azurite.on_free_ports() as azurite:
        settings = Settings(
            storage_connection_string=azurite.connection_string,
            hmac_keys="b1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            hmac_active_key_id="b1",
            bcrypt_cost=args.cost,
            app_environment="local",
            mail_provider="devmailbox",
            instance_id="bench",
        )
        svc = Services(settings)
        svc.storage.ensure_created()
        password = "violet-Harbor-engine-42"
        email = seed_user(svc, password)

        unknown: list[float] = []
        wrong: list[float] = []
        for round_ in range(args.warmup + args.rounds):
            # alternate the order so drift in the machine's load hits both alike
            pair = [
                (unknown, f"nobody.{secrets.token_hex(6)}@example.com", password),
                (wrong, email, "wrong-" + secrets.token_urlsafe(12)),
            ]
            for samples, address, attempt in pair if round_ % 2 else reversed(pair):
                elapsed = timed_failure(svc, address, attempt)
                if round_ >= args.warmup:
                    samples.append(elapsed)

    unknown_median = statistics.median(unknown)
    wrong_median = statistics.median(wrong)
    ratio = max(unknown_median, wrong_median) / min(unknown_median, wrong_median)
    print(f"bcrypt cost {args.cost}, {args.rounds} attempts each")
    print(f"unknown email   median {unknown_median * 1000:8.2f} ms")
    print(f"wrong password  median {wrong_median * 1000:8.2f} ms")
    print(f"ratio (slower/faster)  {ratio:8.3f}  (limit {1 + TOLERANCE:.2f})")
    if ratio > 1 + TOLERANCE:
        print("FAIL: the medians are more than 10% apart")
        return 1
    print("PASS: within 10%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
