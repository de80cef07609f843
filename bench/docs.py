"""docs/BENCHMARKS.md and its plots from one results file:
`python -m bench.docs [bench/results/<time>.json]` (default: the newest)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.report import RESULTS, Target, markdown_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def plot_latencies(results: dict, directory: Path = DOCS) -> list[Path]:
    """One PNG per operation: the latency distribution (CDF) of the service against the
    floor at each concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latency = results["scenarios"].get("latency") or {}
    written = []
    for op, samples in (latency.get("samples") or {}).items():
        levels = list(samples)
        figure, axes = plt.subplots(1, len(levels), figsize=(4.2 * len(levels), 3.6), squeeze=False)
        for axis, level in zip(axes[0], levels, strict=True):
            for name, style in (("floor", "--"), ("service", "-")):
                values = sorted(samples[level][name])
                if not values:
                    continue
                fractions = [(i + 1) / len(values) for i in range(len(values))]
                axis.plot(values, fractions, style, label=f"{name} (p50 {values[len(values) // 2]:.1f} ms)")
            axis.set_xscale("log")
            axis.set_title(f"{op}, concurrency {level.removeprefix('c')}")
            axis.set_xlabel("latency (ms, log scale)")
            axis.set_ylabel("fraction of requests")
            axis.grid(True, which="both", alpha=0.3)
            axis.legend(loc="lower right", fontsize=8)
        figure.tight_layout()
        path = directory / f"bench-{op}-latency.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def _row(figures: dict, op: str, level: str) -> str:
    floor, service = figures["floor"][op][level], figures["service"][op][level]
    return (
        f"| {op} | {level.removeprefix('c')} | {service['p50_ms']:.1f} / {service['p99_ms']:.1f} | "
        f"{floor['p50_ms']:.1f} / {floor['p99_ms']:.1f} | {service['throughput_per_s']:.0f} | "
        f"{floor['throughput_per_s']:.0f} | {service['n']} |"
    )


def render(results: dict, plots: list[Path], source: Path) -> str:
    targets = [Target(**{k: v for k, v in t.items() if k != "verdict"}) for t in results["targets"]]
    machine = results["machine"]
    s = results["scenarios"]
    lines = [
        "# Benchmarks",
        "",
        "What the service costs against the storage it cannot avoid (the *floor*: the same",
        "storage calls made directly with the SDK, same Azurite, same concurrency, same run),",
        "and how it behaves under races and outages. Produced by `make bench`; this page is",
        f"written from `{source.relative_to(ROOT)}` (a copy of that run's results file) by",
        "`python -m bench.docs`.",
        "",
        f"Latest run: {results['started_at']} at commit {results.get('commit', 'not recorded')},",
        f"sizes {results['sizes']} (`FULL` in bench/__main__.py",
        "is the full size; smaller sizes say what this run left out).",
        f"Load average when it started: {machine.get('load_average', 'not recorded')} (the machine is shared).",
        *[
            f"Resumed {resume['at']} at commit {resume.get('commit', 'not recorded')} "
            f"(load average {resume['machine'].get('load_average', 'not recorded')}): "
            f"{', '.join(resume.get('scenarios', [])) or 'the scenarios it had not finished'} ran then."
            for resume in results.get("resumed_at", [])
        ],
        "",
        "## Targets",
        "",
        markdown_table(targets),
        "",
        "## Machine",
        "",
        f"- {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB memory",
        f"- Python {machine['python']}, Node {machine['node']}, Azurite {machine['azurite']} (in memory)",
        f"- {machine['platform']}",
        "- Azurite, the local host and the load generator share these cores, so the absolute",
        "  figures are far below Azure's; the ratios to the floor are what the targets judge.",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "make bench                  # full run: over an hour; exit status 1 if a target fails",
        "make bench-small            # every scenario at small N (seconds per scenario)",
        "make bench BENCH_ARGS='--only latency,login'",
        "python -m bench.docs        # this page and its plots from the newest results file",
        "```",
        "",
        "Figures land in `bench/results/<time>.json` (git-ignored). `make test` runs the",
        "scenarios at small N (`tests/bench/`), checking the invariants, never the timings.",
        "",
    ]
    if "latency" in s and "error" not in s["latency"]:
        lines += [
            "## Issue and redeem against the floor",
            "",
            "Floor of a redemption: point read of the code row, ETag-conditional merge, one audit",
            "append. Floor of an issuance: point read of the session, insert of the code row, one",
            "audit append.",
            "",
            "| op | concurrency | service p50 / p99 (ms) | floor p50 / p99 (ms) | service /s | floor /s | requests |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [_row(s["latency"], op, level) for op in ("redeem", "issue") for level in s["latency"]["floor"][op]]
        host_only = s["latency"].get("host_only_c1")
        if host_only:
            lines += [
                "",
                f"The local host answers a path no function serves in {host_only['p50_ms']:.1f} ms (p50, c1): its",
                "own HTTP work (uvicorn, routing), which in Azure the Functions host does outside the",
                "Python worker. It is part of every service figure above and of none of the floor's.",
            ]
        lines += [""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    if "aio_floor" in s and "error" not in s["aio_floor"]:
        a = s["aio_floor"]
        lines += [
            "## Async handlers? The floor on the aio SDK against the sync one",
            "",
            "The same three storage calls per operation, on the aio clients (tasks on one event loop,",
            "aiohttp) and on the sync clients (threads), at the same concurrency. An async handler",
            "could cost no less than its aio floor.",
            "",
            "| op | concurrency | aio /s | sync /s | aio / sync | aio p50 (ms) | sync p50 (ms) |",
            "|---|---|---|---|---|---|---|",
        ]
        for level, ops in a["aio"].items():
            for op, aio in ops.items():
                sync = a["sync"][level][op]
                lines.append(
                    f"| {op} | {level.removeprefix('c')} | {aio['throughput_per_s']:.0f} | "
                    f"{sync['throughput_per_s']:.0f} | {a['aio_vs_sync_throughput'][level][op]:.2f} | "
                    f"{aio['p50_ms']:.1f} | {sync['p50_ms']:.1f} |"
                )
        lines.append("")
    if "uniqueness" in s and "error" not in s["uniqueness"]:
        q = s["uniqueness"]
        lines += [
            "## No ceiling on active codes",
            "",
            f"{q['active']:,} active codes seeded in {q['seed_s']} s; "
            f"{q['issued']:,} more issued through the service at {q['issue_per_s']}/s with "
            f"{q['collision_retries']} collision retries ({q['collisions_expected']} expected) and "
            f"{q['issue_errors']} failures. Redemption p50, one at a time in process: "
            f"{q['redeem_p50_ms_empty']} ms on the empty table, {q['redeem_p50_ms_full']} ms beside the "
            f"full one (ratio {q['redeem_ratio']}). Alone, on the empty and the full table: a point read "
            f"{q['reads_ms_empty']['point_read']} and {q['reads_ms_full']['point_read']} ms, the two-row "
            f"partition query a redemption makes {q['reads_ms_empty']['partition_query']} and "
            f"{q['reads_ms_full']['partition_query']} ms: Azurite answers a query by scanning the whole table; "
            "Azure serves it from the partition.",
            "",
        ]
    if "races" in s and "error" not in s["races"]:
        r = s["races"]
        lines += [
            "## Races",
            "",
            f"{r['codes']} codes, each redeemed by {r['racers']} guests at once: {r['redemptions']} redemptions "
            f"in {r['wall_s']} s; codes redeemed twice {r['codes_won_more_than_once']}, by nobody "
            f"{r['codes_won_by_none']}; refusals {r['refusals']}.",
            "",
        ]
    if "cleanup_states" in s and "error" not in s["cleanup_states"]:
        c = s["cleanup_states"]
        lines += [
            "## Cleanup among codes in every state",
            "",
            f"{c['expired']:,} expired codes (redeemed, revoked, unused) and {c['live']:,} live ones of one "
            f"issuer: cleanup {c['cleanup_s']} s, {c['requests']:,} requests ({c['requests_by_kind']}), "
            f"none naming live data ({c['requests_outside_expired']}); code rows read {c['code_reads']} "
            f"({c['code_reads_expected']} changed since issuing); {c['buckets_queried']} buckets queried.",
            "",
        ]
    if "users" in s and "error" not in s["users"]:
        u = s["users"]
        lines += [
            f"## {u['users']:,} users",
            "",
            f"Seeded in {u['seed_s']} s. Issuing: {u['issue']['n']} codes in {u['issue']['wall_s']} s. "
            f"Redeeming at concurrency {u['concurrency']}: {u['redeem']['n']} requests "
            f"({u['raced_codes']} codes raced by a second guest) in {u['redeem_wall_s']} s; "
            f"errors {u['errors']}, double redemptions {u['double_redemptions']}, audit lines "
            f"{u['audit_lines']} of {u['audit_expected']} expected.",
            "",
        ]
    if "login" in s and "error" not in s["login"]:
        g = s["login"]
        lines += [
            "## Login",
            "",
            f"p50 {g['login']['p50_ms']:.0f} ms against {g['bcrypt_p50_ms']:.0f} ms for `bcrypt.checkpw` alone "
            f"at cost {g['bcrypt_cost']} (ratio {g['ratio']}).",
            "",
        ]
    if "cleanup" in s and "error" not in s["cleanup"]:
        c = s["cleanup"]
        lines += [
            "## Cleanup",
            "",
            f"{c['expired']:,} expired and {c['live']:,} live codes (seeded in {c['seed_s']} s). Cleanup "
            f"{c['cleanup_s']} s with {c['requests']:,} storage requests ({c['requests_per_expired_code']} per "
            f"expired code: {c['requests_by_kind']}); live rows touched {c['live_rows_touched']}. Floor (the "
            f"same rows deleted directly, batched where one partition allows): {c['floor_s']} s.",
            "",
        ]
    if "faults" in s and "error" not in s["faults"]:
        f = s["faults"]
        lines += [
            "## Outage",
            "",
            f"Azurite stopped for {f['planned_gap_s']} s ({f['gap_s']} s until it answered again) under "
            f"{f['concurrency']} looping clients. In the gap: {f['gap']}. After: {f['after']}. "
            f"500s: {f['status_500']}. Acknowledged redemptions: {f['acknowledged_redemptions']}, without "
            f"audit {f['acknowledged_without_audit']}, no longer redeemed {f['acknowledged_not_redeemed']}. "
            f"Answered 503 although the code was used up: {f['unacknowledged_but_redeemed']}.",
            "",
        ]
    if "mail" in s and "error" not in s["mail"]:
        m = s["mail"]
        lines += [
            "## Mail with a failing provider",
            "",
            f"{m['sent']} mails, provider refusing every connection: {m['poisoned']} parked in the poison "
            f"queue after {m['max_deliveries']} tries, {m['lost']} lost. Control with a working provider: "
            f"{m['delivered_after_recovery']} of {m['sent']} delivered.",
            "",
        ]
    if "coldstart" in s and "error" not in s["coldstart"]:
        c = s["coldstart"]
        lines += [
            "## Cold start",
            "",
            f"`import function_app`: {c['import_function_app_ms']} ms against {c['import_minimum_ms']} ms for "
            f"azure.functions + azure.data.tables + azure.storage.blob (`python -X importtime`, median of "
            f"{c['runs']}, beyond the interpreter's own start). Heaviest packages: "
            f"{c['heaviest_function_app']}. Host ready in {c['host_ready_s']} s; first requests: "
            f"{c['first_requests']}.",
            "",
        ]
    profiles = sorted((DOCS / "profiles").glob("*.txt"))
    if profiles:
        lines += [
            "## Where the time goes",
            "",
            "Targets that fail are explained, with what would close them, in",
            "[profiles/README.md](profiles/README.md), from the call trees of `python -m bench.profile`: "
            + ", ".join(f"[{p.stem}](profiles/{p.name})" for p in profiles)
            + ".",
            "",
        ]
    lines += ["## Durations", "", f"Seconds per scenario: {results['durations_s']}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    source = Path(args[0]) if args else max(RESULTS.glob("*.json"))
    results = json.loads(source.read_text())
    kept = DOCS / "benchmarks.json"  # the figures behind the page, kept in git
    if source.resolve() != kept.resolve():
        kept.write_text(source.read_text(), encoding="utf-8")
    plots = plot_latencies(results)
    (DOCS / "BENCHMARKS.md").write_text(render(results, plots, kept), encoding="utf-8")
    print(f"wrote {DOCS / 'BENCHMARKS.md'} and {len(plots)} plot(s)")


if __name__ == "__main__":
    main()
