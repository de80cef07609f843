"""The issue's targets, read off the scenarios' figures."""

from __future__ import annotations

from bench.latency import WORKER_THREADS
from bench.report import Target, at_least, at_most, equal, ratio

# The limits, as the issue states them.
P50_VS_FLOOR = 1.5
# at the worker's concurrency (bench/latency.py WORKER_THREADS)
THROUGHPUT_VS_FLOOR = {"redeem": 0.6, "issue": 0.5}
LOGIN_VS_BCRYPT = 1.2
CLEANUP_VS_FLOOR = 1.5
IMPORT_VS_MINIMUM = 1.5


def _failed(name: str, figures: dict) -> list[Target]:
    return [Target(name, None, "runs", False, figures["error"][:100])]


def latency(f: dict) -> list[Target]:
    out = []
    host_only = f["host_only_c1"]["p50_ms"]
    for op in ("redeem", "issue"):
        floor, service = f["floor"][op], f["service"][op]
        p50 = ratio(service["c1"]["p50_ms"], floor["c1"]["p50_ms"])
        out.append(
            at_most(
                f"{op} p50 at c1 / floor",
                p50,
                P50_VS_FLOOR,
                "x",
                f"{service['c1']['p50_ms']:.1f} ms vs {floor['c1']['p50_ms']:.1f} ms "
                f"(the local host's own answer: {host_only:.1f} ms)",
            )
        )
    level = f"c{WORKER_THREADS}"
    for op in ("redeem", "issue"):
        floor, service = f["floor"][op], f["service"][op]
        throughput = ratio(service[level]["throughput_per_s"], floor[level]["throughput_per_s"])
        out.append(
            at_least(
                f"{op} throughput at {level} (the worker's threads) / floor",
                throughput,
                THROUGHPUT_VS_FLOOR[op],
                "x",
                f"{service[level]['throughput_per_s']:.0f}/s vs {floor[level]['throughput_per_s']:.0f}/s",
            )
        )
    errors = sum(f["service"][op][level]["errors"] for op in ("redeem", "issue") for level in f["service"][op])
    out.append(equal("latency runs: failed requests", errors, 0))
    return out


# The handlers stay sync (the worker's thread pool) unless the aio floor is faster than this.
AIO_KEPT_SYNC_BELOW = 1.1


def aio_floor(f: dict) -> list[Target]:
    level = f"c{WORKER_THREADS}"
    return [
        at_most(
            f"{op} floor at {level}: aio / sync throughput (sync kept)",
            f["aio_vs_sync_throughput"][level][op],
            AIO_KEPT_SYNC_BELOW,
            "x",
            f"aio {f['aio'][level][op]['throughput_per_s']:.0f}/s, "
            f"sync {f['sync'][level][op]['throughput_per_s']:.0f}/s",
        )
        for op in ("redeem", "issue")
    ]


# Redemption beside a full table against an empty one (the same process, one at a time).
REDEEM_FULL_VS_EMPTY = 1.2


def uniqueness(f: dict) -> list[Target]:
    beside = f"{f['issued']} issued beside {f['active']:,} active codes"
    return [
        equal("uniqueness: failed issues", f["issue_errors"], 0, beside),
        equal("uniqueness: collision retries", f["collision_retries"], 0, f"{f['collisions_expected']} expected"),
        at_most(
            "uniqueness: redeem p50 beside the full table / empty",
            f["redeem_ratio"],
            REDEEM_FULL_VS_EMPTY,
            "x",
            f"{f['redeem_p50_ms_full']:.1f} ms vs {f['redeem_p50_ms_empty']:.1f} ms; Azurite's partition query "
            f"{f['reads_ms_full']['partition_query']:.1f} vs {f['reads_ms_empty']['partition_query']:.1f} ms, "
            f"point read {f['reads_ms_full']['point_read']:.1f} vs {f['reads_ms_empty']['point_read']:.1f} ms",
        ),
    ]


def coldstart(f: dict) -> list[Target]:
    return [
        at_most(
            "import function_app / minimum",
            f["import_ratio"],
            IMPORT_VS_MINIMUM,
            "x",
            f"{f['import_function_app_ms']:.0f} ms vs {f['import_minimum_ms']:.0f} ms",
        )
    ]


def login(f: dict) -> list[Target]:
    return [
        at_most(
            "login p50 / bcrypt alone",
            f["ratio"],
            LOGIN_VS_BCRYPT,
            "x",
            f"{f['login']['p50_ms']:.0f} ms vs {f['bcrypt_p50_ms']:.0f} ms (cost {f['bcrypt_cost']})",
        ),
        equal("login: failed requests", f["login"]["errors"], 0),
    ]


def users(f: dict) -> list[Target]:
    return [
        equal(f"{f['users']} users: errors", f["errors"], 0, f"redeem wall {f['redeem_wall_s']:.1f} s"),
        equal(f"{f['users']} users: double redemptions", f["double_redemptions"], 0),
        equal(
            f"{f['users']} users: audit lines - expected",
            f["audit_lines"] - f["audit_expected"],
            0,
            f"{f['audit_lines']} written, {f['audit_expected']} expected",
        ),
    ]


def races(f: dict) -> list[Target]:
    raced = f"{f['codes']} codes x {f['racers']} racers"
    detail = f"{f['redemptions']} redemptions in {f['wall_s']:.1f} s"
    return [
        equal(f"{raced}: codes redeemed twice", f["codes_won_more_than_once"], 0, detail),
        equal(f"{raced}: codes nobody redeemed", f["codes_won_by_none"], 0),
        equal(f"{raced}: losers refused but not as used", f["refused_not_as_used"], 0, str(f["refusals"])),
    ]


def cleanup(f: dict) -> list[Target]:
    return [
        at_most(
            "cleanup time / floor",
            f["ratio"],
            CLEANUP_VS_FLOOR,
            "x",
            f"{f['cleanup_s']:.1f} s vs {f['floor_s']:.1f} s for {f['expired']} expired",
        ),
        equal("cleanup: live rows read", f["live_rows_touched"], 0, f"{f['requests']} storage requests"),
        equal("cleanup: expired codes left", f["expired_left"], 0),
        equal("cleanup: live codes lost", f["live_lost"], 0, f"of {f['live_checked']} checked"),
    ]


def cleanup_states(f: dict) -> list[Target]:
    scale = f"{f['expired']} expired in every state, {f['live']} live"
    return [
        equal("cleanup among states: run", f["status"], "ok", f"{scale}; {f['cleanup_s']:.1f} s; {f['errors'][:1]}"),
        equal("cleanup among states: expired codes left", f["expired_left"], 0),
        equal("cleanup among states: live codes lost", f["live_lost"], 0),
        equal("cleanup among states: owner rows other than the live codes'", f["owner_rows_not_live"], 0),
        equal(
            "cleanup among states: requests naming live data",
            f["requests_outside_expired"],
            0,
            f"{f['requests']} requests",
        ),
        equal(
            "cleanup among states: code rows read - changed since issuing",
            f["code_reads"] - f["code_reads_expected"],
            0,
        ),
        equal("cleanup among states: code row deletes - expected", f["code_deletes"] - f["code_deletes_expected"], 0),
        equal(
            "cleanup among states: expire events - codes expired unused",
            f["expire_events_missing"] + f["expire_events_not_unused"] + f["expire_events_repeated"],
            0,
        ),
    ]


def faults(f: dict) -> list[Target]:
    return [
        equal("outage: 500 answers", f["status_500"], 0, f"{f['in_gap']} requests in the gap, {f['gap_503']} got 503"),
        equal("outage: other failures outside the gap", f["failures_outside_gap"], 0),
        equal("outage: recovered by itself", f["recovered"], True, f"after {f['recovery_s']} s"),
        equal(
            "outage: acknowledged redemptions unaudited",
            f["acknowledged_without_audit"],
            0,
            f"{f['acknowledged_redemptions']} acknowledged",
        ),
        equal("outage: acknowledged redemptions not redeemed", f["acknowledged_not_redeemed"], 0),
    ]


def mail(f: dict) -> list[Target]:
    return [
        equal(
            "mail: lost with a failing provider",
            f["lost"],
            0,
            f"{f['sent']} sent, {f['poisoned']} in poison after {f['max_deliveries']} tries",
        ),
        equal("mail: delivered once the provider works", f["lost_after_recovery"], 0),
    ]


def targets_for(scenarios: dict) -> list[Target]:
    out: list[Target] = []
    for name, figures in scenarios.items():
        if "error" in figures:
            out += _failed(name, figures)
            continue
        out += globals()[name](figures)
    return out
