"""What a ban saves: a request the app refuses (429 from a failure limit) against the same
request refused by the edge's ban (403 from nginx), through the same nginx, same run.
Counted: the storage calls the app makes to refuse a sign-in and a redemption (in
process, through the same use cases the host runs), and the median time of each answer.
`python -m bench.ban_cost`."""

from __future__ import annotations

import os
import statistics
import time
from contextlib import suppress

import httpx

from bench.harness import Stack
from devhost.azurite import free_port
from devhost.edge import EdgeProxy
from shared import errors

ROUNDS = 300
REFUSED = "198.51.100.60"  # over its limits: the app answers 429
BANNED = "198.51.100.50"  # in nginx's ban map: nginx answers 403
WRONG = {"email": "someone@example.com", "password": "not the password 1"}
TIGHT = {"TRUSTED_PROXY_COUNT": "2", "LIMIT_LOGIN_FAILURES_PER_IP": "1/1h", "LIMIT_REDEEM_FAILURES_PER_IP": "1/1h"}


def storage_calls_when_refused(stack: Stack) -> dict[str, int]:
    """Storage requests of one refused sign-in and one refused redemption, past the first
    refusal (whose strike is stored once per window)."""
    requests: list[str] = []
    svc = stack.services()
    svc.storage_request_hook = lambda request: requests.append(request.http_request.method)
    attempts = {
        "sign-in": lambda: svc.accounts.login(WRONG["email"], WRONG["password"], client_ip=REFUSED),
        "redemption": lambda: svc.codes.redeem("A" * 22, "123456", source=REFUSED),
    }
    counts = {}
    for name, attempt in attempts.items():
        for _ in range(3):
            with suppress(errors.DomainError):
                attempt()
        requests.clear()
        with suppress(errors.TooManyRequests):
            attempt()
            raise AssertionError(f"the {name} was not refused")
        counts[name] = len(requests)
    return counts


def median_ms(client: httpx.Client, url: str, source: str, status: int) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = client.post(url, json=WRONG, headers={"x-forwarded-for": source})
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == status, answer.text
    return statistics.median(samples)


def main() -> None:
    with Stack.start(**TIGHT) as stack:
        calls = storage_calls_when_refused(stack)
        host = stack.host()
        with EdgeProxy(free_port(), host.url, stack.workdir / "edge") as proxy, httpx.Client(timeout=10) as client:
            proxy.publish([BANNED])
            time.sleep(0.5)  # nginx's reload
            url = f"{proxy.url}/api/sessions"
            median_ms(client, url, REFUSED, 429)  # warm up
            app_ms = median_ms(client, url, REFUSED, 429)
            edge_ms = median_ms(client, url, BANNED, 403)
    print(f"storage calls of a refused request: {calls}")
    print(f"refused sign-in p50: app {app_ms:.2f} ms, banned at the edge {edge_ms:.2f} ms ({app_ms / edge_ms:.1f}x)")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
