"""What the shared rate limits cost a request, against one storage point read measured
in the same run (same Azurite, same process). `python -m bench.ratelimit_cost`."""

from __future__ import annotations

import base64
import os
import secrets
import statistics
import time
from collections.abc import Callable
from contextlib import suppress

from azure.core.exceptions import ResourceNotFoundError

from devhost.azurite import Azurite

ROUNDS = 300


def median_ms(call: Callable[[int], object]) -> float:
    samples = []
    for n in range(ROUNDS):
        started = time.perf_counter()
        call(n)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    with Azurite.on_free_ports() as azurite:
        os.environ.update(
            AzureWebJobsStorage=azurite.connection_string,
            HMAC_KEYS="bench:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            HMAC_ACTIVE_KEY_ID="bench",
        )
        from shared.config import get_settings
        from shared.services import Services

        svc = Services(get_settings())
        svc.storage.ensure_created()
        table = svc.storage.table("codes")

        def point_read(n: int) -> None:
            with suppress(ResourceNotFoundError):
                table.get_entity("absent", str(n))

        floor = median_ms(point_read)
        figures = {
            "reserve_redemption (every redemption)": median_ms(
                lambda n: svc.abuse.reserve_redemption(f"198.51.100.{n % 250}")
            ),
            "... and give_back (a redeemed code)": median_ms(
                lambda n: svc.abuse.give_back(svc.abuse.reserve_redemption(f"198.51.101.{n % 250}"))
            ),
            "reserve_issuance (every issuance)": median_ms(
                lambda n: svc.abuse.reserve_issuance(f"user-{n}", f"198.51.102.{n % 250}")
            ),
            "redemption_failed (failures only)": median_ms(lambda n: svc.abuse.redemption_failed()),
            "password_attempt (a new device)": median_ms(
                lambda n: svc.abuse.password_attempt(f"198.51.103.{n % 250}", f"u{n}@example.com")
            ),
            "password_attempt (a known device)": median_ms(
                lambda n: svc.abuse.password_attempt(f"198.51.104.{n % 250}", f"u{n}@example.com", device=f"d{n}")
            ),
        }
        print(f"{'one point read (the unit)':40} {floor:7.2f} ms  1.00x")
        for name, value in figures.items():
            print(f"{name:40} {value:7.2f} ms  {value / floor:.2f}x")


if __name__ == "__main__":
    main()
