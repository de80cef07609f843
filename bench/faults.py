"""An outage in the middle of a load run: Azurite (with its data on disk) is stopped for a
few seconds and started again on the same ports while guests keep redeeming codes and a
monitor keeps asking /api/health.

Checked: no 500 ever; during the gap only 503 (or a success that finished in time);
afterwards the service answers again by itself; every acknowledged (200) redemption has
its audit line and its code is still redeemed."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx

from bench.harness import http_load
from bench.latency import issue_job
from bench.seed import Seeder
from bench.stats import Call
from shared.codes.models import HASH_PURPOSE, bound_to
from shared.codes.store import code_partition, code_row

PACE_S = 0.25  # each worker's pause between requests
RECOVERY_GRACE_S = 5.0  # after Azurite is back, how long the service may take to answer again


def _outage(stack, before_s: float, gap_s: float, marks: dict) -> None:
    time.sleep(before_s)
    marks["stop"] = time.perf_counter()
    stack.azurite.stop()
    time.sleep(gap_s)
    marks["restart"] = time.perf_counter()
    stack.azurite.start()
    marks["up"] = time.perf_counter()


async def _load(
    url: str, codes: list[dict], concurrency: int, marks: dict, after_s: float, grace_s: float, limit_s: float
):
    """Workers loop until `after_s` past Azurite's return and until some request that
    started after the grace period has finished (or `limit_s` in all): each turn redeems
    the next unused code (or, once they are used up, asks for health)."""
    results: list[tuple[str, dict | None, Call]] = []
    pending = iter(codes)
    give_up = time.perf_counter() + limit_s

    def going() -> bool:
        now = time.perf_counter()
        if now >= give_up or "up" not in marks:
            return now < give_up
        return now < marks["up"] + after_s or "tail_seen" not in marks

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker(number: int) -> None:
            turn = 0
            while going():
                turn += 1
                code = next(pending, None) if (turn + number) % 4 else None
                start = time.perf_counter()
                try:
                    if code is None:
                        response = await client.get("/api/health")
                    else:
                        body = {"resourceId": code["resourceId"], "code": code["code"]}
                        response = await client.post("/api/codes/redeem", json=body)
                    call = Call(start, time.perf_counter(), response.status_code)
                except httpx.HTTPError as error:
                    call = Call(start, time.perf_counter(), 0, type(error).__name__)
                results.append(("redeem" if code else "health", code, call))
                if "up" in marks and start > marks["up"] + grace_s:
                    marks["tail_seen"] = True  # judged by what answered after the grace period
                await asyncio.sleep(PACE_S)  # a steady load, not a flood

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return results


def run(stack, *, gap_s: float, before_s: float, after_s: float, concurrency: int) -> dict:
    host = stack.host()
    services = stack.services()
    seeder = Seeder(services)
    owners = seeder.users(max(2, concurrency // 4), concurrency=8)
    needed = int(concurrency * (before_s + gap_s + after_s) / PACE_S * 0.8)
    resources = seeder.resources(owners, -(-needed // 3))
    issued = http_load(host.url, [issue_job(o.token, r) for o, r in resources for _ in range(3)], 32)
    codes = [c.data for c in issued.calls if c.ok]

    started_at = datetime.now(UTC)
    marks: dict[str, float] = {}
    outage = threading.Thread(target=_outage, args=(stack, before_s, gap_s, marks))
    outage.start()
    grace = min(RECOVERY_GRACE_S, after_s / 2)
    limit_s = before_s + gap_s + after_s + 120
    results = asyncio.run(_load(host.url, codes, concurrency, marks, after_s, grace, limit_s))
    outage.join()

    stop, up = marks["stop"], marks["up"]
    in_gap = [(kind, code, call) for kind, code, call in results if call.end >= stop and call.start <= up]
    before = [r for r in results if r[2].end < stop]
    after = [r for r in results if r[2].start > up]
    failures_after = [r for r in after if not r[2].ok]
    last_failure = max((r[2].end for r in failures_after), default=up)
    recovery_s = round(last_failure - up, 2)
    late_failures = [r for r in failures_after if r[2].start > up + grace]
    tail = [r for r in after if r[2].start > up + grace]

    def statuses(rows) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind, _, call in rows:
            key = f"{kind}:{call.status if call.error is None else call.error}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    # every acknowledged redemption: audited, and still redeemed
    acknowledged = [code for kind, code, call in results if kind == "redeem" and call.status == 200]
    events = services.audit.read(started_at - timedelta(seconds=5), datetime.now(UTC) + timedelta(seconds=5))
    audited = {e.code_id for e in events if e.type == "redeem" and e.outcome == "ok"}
    table = services.storage.table("codes")

    def state_of(code: dict) -> str | None:
        hashed = services.keys.hash(HASH_PURPOSE, bound_to(code["resourceId"], code["code"]))
        try:
            return table.get_entity(code_partition(code["resourceId"]), code_row(hashed))["state"]
        except Exception:  # noqa: BLE001 - a missing row is a finding, not a crash
            return None

    not_redeemed = sum(1 for code in acknowledged if state_of(code) != "redeemed")
    unacknowledged = [code for kind, code, call in results if kind == "redeem" and call.status != 200]
    burned = [code for code in unacknowledged if state_of(code) == "redeemed"]
    host.stop()
    stack.hosts.remove(host)

    return {
        "planned_gap_s": gap_s,
        "gap_s": round(up - stop, 2),  # with Azurite's own start-up
        "concurrency": concurrency,
        "requests": len(results),
        "before": statuses(before),
        "gap": statuses(in_gap),
        "after": statuses(after),
        "in_gap": len(in_gap),
        "gap_503": sum(1 for r in in_gap if r[2].status == 503),
        "status_500": sum(1 for r in results if r[2].status == 500),
        "failures_outside_gap": sum(1 for r in before if not r[2].ok) + len(late_failures),
        "recovery_s": recovery_s,
        "recovered": bool(tail) and all(r[2].ok for r in tail),
        "acknowledged_redemptions": len(acknowledged),
        "acknowledged_without_audit": sum(1 for code in acknowledged if code["codeId"] not in audited),
        "acknowledged_not_redeemed": not_redeemed,
        # answered 503, yet the code is used up: the guest cannot try again
        "unacknowledged_but_redeemed": len(burned),
        "unacknowledged_redeemed_without_audit": sum(1 for code in burned if code["codeId"] not in audited),
    }
