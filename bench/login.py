"""Login (POST /api/sessions) against the bcrypt check alone at the configured cost.

The two are measured alternately, one login then one bare `bcrypt.checkpw` on the same
hash, so both see the same machine load."""

from __future__ import annotations

import time

import bcrypt

from bench.seed import PASSWORD, Seeder
from bench.stats import Call, Run


def run(stack, host, n: int) -> dict:
    services = stack.services()
    seeder = Seeder(services)
    user = seeder.user(with_session=False, with_resource=False)
    body = {"email": user.email, "password": PASSWORD}
    password, stored = PASSWORD.encode(), seeder.password_hash.encode()

    first = host.client.post("/api/sessions", json=body)  # warm: the host's dummy hash, connections
    if first.status_code != 201:
        raise RuntimeError(f"login answered {first.status_code}: {first.text[:300]}")
    logins, checks = Run(), Run()
    for _ in range(n):
        start = time.perf_counter()
        response = host.client.post("/api/sessions", json=body)
        logins.calls.append(Call(start, time.perf_counter(), response.status_code))
        start = time.perf_counter()
        if not bcrypt.checkpw(password, stored):
            raise RuntimeError("the seeded hash does not match")
        checks.calls.append(Call(start, time.perf_counter()))
    login_summary = logins.summary()
    bcrypt_summary = checks.summary()
    return {
        "bcrypt_cost": services.settings.bcrypt_cost,
        "login": login_summary,
        "bcrypt": bcrypt_summary,
        "bcrypt_p50_ms": bcrypt_summary["p50_ms"],
        "ratio": round(login_summary["p50_ms"] / bcrypt_summary["p50_ms"], 3),
        "statuses": logins.statuses(),
    }
