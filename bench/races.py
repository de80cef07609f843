"""Guests racing for one code: N codes, each redeemed by `racers` guests released at the
same moment (a barrier), on the service in this process, so nothing but storage's ETag
check decides who wins. Every racer is a source of its own, as a shared code draws them.

Reported: codes won by more than one racer, codes won by none, racers refused for any
reason but `used`, and the wall time and rate of the racing redemptions."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bench.seed import Seeder
from shared.codes.models import CodeRejected

RACERS = 50


def run(services, n: int, racers: int = RACERS) -> dict:
    """`services`: the app's `Services` on the storage to race on (any clock)."""
    owner = Seeder(services).user(with_session=False, with_resource=False)

    def a_code(i: int):
        resource, _ = services.resources.put(owner.user_id, f"raced-{i}.txt", b"raced\n", "text/plain")
        return services.codes.issue(owner.user_id, resource.resource_id, timedelta(hours=1))

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(a_code, range(n)))

    winners: list[int] = []
    refusals: Counter = Counter()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=racers) as pool:
        for round_, issued in enumerate(codes):
            barrier = threading.Barrier(racers)

            def race(racer: int, issued=issued, barrier=barrier, round_=round_) -> str:
                barrier.wait()
                try:
                    services.codes.redeem(issued.resource_id, issued.code, source=f"ip:racer-{round_}-{racer}")
                except CodeRejected as rejected:
                    return rejected.reason.value
                return "won"

            outcomes = Counter(pool.map(race, range(racers)))
            winners.append(outcomes.pop("won", 0))
            refusals.update(outcomes)
    wall_s = time.perf_counter() - started
    return {
        "codes": n,
        "racers": racers,
        "redemptions": n * racers,
        "wall_s": round(wall_s, 2),
        "redemptions_per_s": round(n * racers / wall_s, 1) if wall_s else None,
        "codes_won_more_than_once": sum(1 for won in winners if won > 1),
        "codes_won_by_none": sum(1 for won in winners if won == 0),
        "refusals": dict(refusals),
        "refused_not_as_used": sum(count for reason, count in refusals.items() if reason != "used"),
    }
