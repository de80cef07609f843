"""Issue and redeem through the host at concurrency 1, at the worker's thread count and at
200 (an overload: requests wait for a thread), each level right after the storage floor at
the same concurrency on the same Azurite.

The host runs sync functions on WORKER_THREADS threads, as the Python worker does with
PYTHON_THREADPOOL_THREAD_COUNT, which infra sets to the per-instance concurrency (16, the
`httpPerInstanceConcurrency` of every profile in infra/main.bicep); at that concurrency the
floor also runs on as many threads, so both have the same parallelism.

Codes are spread over many resources (at most three per resource, the default cap on
active codes), and redeemed in random order, as real guests would."""

from __future__ import annotations

import random
import secrets

from bench.floor import Floor
from bench.harness import http_load
from bench.seed import Seeder
from bench.stats import Run, median

WORKER_THREADS = 16
LEVELS = (1, WORKER_THREADS, 200)
CODES_PER_RESOURCE = 3


def a_source() -> dict[str, str]:
    """A caller's own address (in the benchmarking range 198.18.0.0/15), as Azure Front
    Door passes it on (the bench host trusts two proxies, see bench.harness)."""
    return {"X-Forwarded-For": f"198.{18 + secrets.randbelow(2)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"}


def issue_job(token: str, resource_id: str, ttl_seconds: int | None = None):
    headers = {"Authorization": f"Bearer {token}", **a_source()}
    body = {"resourceId": resource_id} | ({"ttlSeconds": ttl_seconds} if ttl_seconds else {})

    async def job(client):
        return await client.post("/api/codes", json=body, headers=headers)

    return job


def redeem_job(resource_id: str, code: str):
    headers = a_source()

    async def job(client):
        return await client.post("/api/codes/redeem", json={"resourceId": resource_id, "code": code}, headers=headers)

    return job


async def unrouted(client):
    """A path no function serves: the host answers 404 itself, so its time is the local
    host's own HTTP work (uvicorn, routing), which the Functions host does outside Python."""
    return await client.get("/api/no-such-function")


def samples(run: Run) -> list[float]:
    return [round(ms, 3) for ms in run.latencies_ms()]


def run(stack, host, sizes: dict[int, int]) -> dict:
    services = stack.services()
    seeder = Seeder(services)
    floor = Floor(stack.storage())
    total = sum(sizes.values())
    owners = seeder.users(max(4, min(50, total // 20)), concurrency=16)
    resources = seeder.resources(owners, -(-total // CODES_PER_RESOURCE) + 10)
    # warm the host's paths and connections
    warm = [issue_job(owner.token, resource_id) for owner, resource_id in resources[-10:]]
    warmed = http_load(host.url, warm, 5)
    http_load(host.url, [redeem_job(c.data["resourceId"], c.data["code"]) for c in warmed.calls if c.ok], 5)

    figures: dict = {"sizes": sizes, "floor": {}, "service": {}, "samples": {}}
    host_only = http_load(host.url, [unrouted] * sizes[1], 1)
    figures["host_only_c1"] = {
        "p50_ms": round(median(host_only.latencies_ms(ok_only=False)), 3),
        "statuses": host_only.statuses(),
    }
    next_resource = 0
    for level in LEVELS:
        n = sizes[level]
        jobs = []
        for i in range(n):
            owner, resource_id = resources[next_resource + i // CODES_PER_RESOURCE]
            jobs.append(issue_job(owner.token, resource_id))
        next_resource += -(-n // CODES_PER_RESOURCE)

        floor_issue = floor.run_issue(n, level)
        service_issue = http_load(host.url, jobs, level)
        issued = [c.data for c in service_issue.calls if c.ok]
        redeem_jobs = [redeem_job(data["resourceId"], data["code"]) for data in issued]
        random.shuffle(redeem_jobs)
        floor_redeem = floor.run_redeem(len(redeem_jobs), level)
        service_redeem = http_load(host.url, redeem_jobs, level)

        for name, measured in (
            ("issue", (floor_issue, service_issue)),
            ("redeem", (floor_redeem, service_redeem)),
        ):
            floor_run, service_run = measured
            figures["floor"].setdefault(name, {})[f"c{level}"] = floor_run.summary()
            service_summary = service_run.summary()
            service_summary["statuses"] = service_run.statuses()
            figures["service"].setdefault(name, {})[f"c{level}"] = service_summary
            figures["samples"].setdefault(name, {})[f"c{level}"] = {
                "floor": samples(floor_run),
                "service": samples(service_run),
            }
    return figures
