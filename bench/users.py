"""Many users at once: N activated users (seeded straight into storage, each with a session
and a resource) each issue a code through the host, with the longest lifetime (issuing and
redeeming 10,000 took longer than the default ten minutes here); guests then redeem every
code at concurrency 200, half of the codes raced by a second guest at the same moment.

Reported: wall times, errors (answers other than the one success and the generic
refusal), double redemptions (a code answered 200 twice), and audit lines written for
this run against those the answers imply."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from bench.harness import http_load
from bench.latency import issue_job, redeem_job
from bench.seed import Seeder
from shared.codes.models import LONGEST_TTL_SECONDS

CONCURRENCY = 200


def run(stack, host, n: int, concurrency: int = CONCURRENCY) -> dict:
    services = stack.services()
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    users = Seeder(services).users(n)
    seed_s = time.perf_counter() - t0

    issued = http_load(host.url, [issue_job(u.token, u.resource_id, LONGEST_TTL_SECONDS) for u in users], concurrency)
    codes = [c.data for c in issued.calls if c.ok]

    jobs, owners = [], []
    for position, code in enumerate(codes):
        racers = 2 if position % 2 == 0 else 1  # every other code gets a second guest, side by side
        for _ in range(racers):
            jobs.append(redeem_job(code["resourceId"], code["code"]))
            owners.append(code["codeId"])
    redeemed = http_load(host.url, jobs, concurrency)

    answers: dict[str, Counter] = {}
    for code_id, call in zip(owners, redeemed.calls, strict=True):
        answers.setdefault(code_id, Counter())[call.status if call.error is None else f"0:{call.error}"] += 1
    double = sum(1 for counts in answers.values() if counts[200] > 1)
    unredeemed = sum(1 for counts in answers.values() if counts[200] == 0)
    odd_answers = sum(n for counts in answers.values() for status, n in counts.items() if status not in (200, 400))
    refusals = sum(counts[400] for counts in answers.values())
    successes = sum(counts[200] for counts in answers.values())

    # the audit of this run: one line per issue, per redemption and per refused redemption
    events = services.audit.read(started_at - timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=1))
    lines = Counter((e.type, e.outcome) for e in events)
    audit_lines = lines[("issue", "ok")] + lines[("redeem", "ok")] + lines[("redeem", "fail")]
    audit_expected = len(codes) + successes + refusals

    return {
        "users": n,
        "concurrency": concurrency,
        "seed_s": round(seed_s, 1),
        "issue": issued.summary() | {"statuses": issued.statuses()},
        "redeem": redeemed.summary() | {"statuses": redeemed.statuses()},
        "redeem_wall_s": round(redeemed.wall_seconds, 2),
        "raced_codes": (len(codes) + 1) // 2,
        "errors": issued.errors + odd_answers + unredeemed,
        "unredeemed_codes": unredeemed,
        "double_redemptions": double,
        "audit_lines": audit_lines,
        "audit_expected": audit_expected,
        "audit_by_kind": {f"{kind}:{outcome}": count for (kind, outcome), count in lines.items()},
    }
