"""`python -m bench [--small] [--only NAME,...] [--resume FILE [--again NAME,...]]`: start
Azurite and the local host, run the scenarios, print every target as PASS or FAIL, write the
figures to bench/results/.

Exit status 0 when every target passes (1 otherwise), so `make bench` fails visibly."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.harness import Stack, environment_facts
from bench.targets import targets_for

FULL = {
    "latency": {1: 300, 16: 2000, 200: 4000},
    "login": 30,
    "users": 10_000,
    "aio_floor": 2000,  # redemptions and issuances per level, each way
    "uniqueness": {"active": 1_000_000, "issue": 500, "redeem": 100},
    "races": 200,  # codes, each raced by 50 guests: 10,000 redemptions
    "cleanup": 100_000,
    "cleanup_states": 10_000,  # expired codes in every state, and as many live ones
    "faults": {"gap_s": 5.0, "before_s": 6.0, "after_s": 10.0, "concurrency": 32},
    "mail": 20,
    "import_runs": 7,
}
SMALL = {
    "latency": {1: 15, 16: 60, 200: 200},
    "login": 3,
    "users": 200,
    "aio_floor": 50,
    "uniqueness": {"active": 2000, "issue": 50, "redeem": 20},
    "races": 5,
    "cleanup": 500,
    "cleanup_states": 100,
    "faults": {"gap_s": 2.0, "before_s": 2.0, "after_s": 4.0, "concurrency": 8},
    "mail": 2,
    "import_runs": 2,
}
SCENARIOS = (
    "coldstart", "latency", "aio_floor", "uniqueness", "login", "users", "races", "cleanup", "cleanup_states",
    "faults", "mail",
)  # fmt: skip


def _scenario(name: str) -> Callable[[dict], dict]:
    """Each scenario in its own Stack (its own Azurite), so one's data never slows another."""

    def coldstart(sizes: dict) -> dict:
        from bench import coldstart

        with Stack.start() as stack:
            return coldstart.run(stack, runs=sizes["import_runs"])

    def latency(sizes: dict) -> dict:
        from bench import latency

        with Stack.start() as stack:
            host = stack.host(PYTHON_THREADPOOL_THREAD_COUNT=str(latency.WORKER_THREADS))
            return latency.run(stack, host, sizes["latency"])

    def aio_floor(sizes: dict) -> dict:
        from bench import aio_floor

        with Stack.start() as stack:
            return aio_floor.run(stack, sizes["aio_floor"])

    def uniqueness(sizes: dict) -> dict:
        from bench import code_uniqueness

        with Stack.start() as stack:
            return code_uniqueness.run(stack, **sizes["uniqueness"])

    def login(sizes: dict) -> dict:
        from bench import login

        with Stack.start() as stack:
            return login.run(stack, stack.host(), sizes["login"])

    def users(sizes: dict) -> dict:
        from bench import users

        with Stack.start() as stack:
            return users.run(stack, stack.host(), sizes["users"])

    def races(sizes: dict) -> dict:
        from bench import races

        with Stack.start() as stack:
            return races.run(stack.services(), sizes["races"])

    def cleanup(sizes: dict) -> dict:
        from bench import cleanup

        with Stack.start() as stack:
            return cleanup.run(stack, sizes["cleanup"])

    def cleanup_states(sizes: dict) -> dict:
        from bench import cleanup_states
        from bench.seed import Seeder

        with Stack.start() as stack:
            owner = Seeder(stack.services()).user(with_session=False)
            return cleanup_states.run(
                stack.settings(), sizes["cleanup_states"], now=datetime.now(UTC), owner=owner.user_id,
                resource_id=owner.resource_id,
            )  # fmt: skip

    def faults(sizes: dict) -> dict:
        from bench import faults

        with Stack.start(persistent=True) as stack:
            return faults.run(stack, **sizes["faults"])

    def mail(sizes: dict) -> dict:
        from bench import mail

        with Stack.start() as stack:
            return mail.run(stack, sizes["mail"])

    return locals()[name]


def _commit() -> str:
    """The measured code: the commit, marked when the tree had changes."""
    git = ["git", "-C", str(Path(__file__).resolve().parent.parent)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True, check=False).stdout
    return head.stdout.strip() + (" (with changes)" if dirty.strip() else "")


def _level(key: str) -> int | str:
    return int(key) if key.isdigit() else key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="small N: the smoke version (seconds, not minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=report.RESULTS, help="where the JSON goes (default bench/results)")
    parser.add_argument("--users", type=int, help="users in the many-users scenario (default 10,000; small 200)")
    parser.add_argument("--cleanup", type=int, help="expired (and as many live) codes for cleanup (default 100,000)")
    parser.add_argument(
        "--size", action="append", default=[], metavar="NAME=JSON",
        help="override a scenario's size (JSON), e.g. --size races=100",
    )  # fmt: skip
    parser.add_argument(
        "--resume", type=Path, metavar="FILE",
        help="go on with a stopped run: keep its finished scenarios, run the others into the same file",
    )  # fmt: skip
    parser.add_argument(
        "--again", default="", metavar="NAME,...",
        help="with --resume: measure these finished scenarios again (say, ones a busy machine disturbed)",
    )  # fmt: skip
    parser.add_argument("--docs", action="store_true", help="then write docs/BENCHMARKS.md and its plots from this run")
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    sizes = dict(SMALL if args.small else FULL)
    for name in ("users", "cleanup"):
        if getattr(args, name):
            sizes[name] = getattr(args, name)
    for override in args.size:
        name, _, value = override.partition("=")
        if name not in sizes:
            parser.error(f"unknown size: {name}")
        # JSON keys are strings; the latency levels are concurrencies, so numbers
        sizes[name] = json.loads(value, object_pairs_hook=lambda pairs: {_level(k): v for k, v in pairs})

    again = {name for name in args.again.split(",") if name}
    if again and not args.resume:
        parser.error("--again goes with --resume")
    if args.resume:
        path = args.resume
        results = {key: value for key, value in json.loads(path.read_text()).items() if key != "targets"}
        if results["sizes"] != json.loads(json.dumps(sizes)):
            parser.error(f"give the sizes of the stopped run: {json.dumps(results['sizes'])}")
        results.setdefault("resumed_at", []).append(
            {"at": datetime.now(UTC).isoformat(timespec="seconds"), "commit": _commit(), "machine": environment_facts()}
        )
    else:
        path = report.new_path(args.out)
        results = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "mode": "small" if args.small else "full",
            "commit": _commit(),
            "machine": environment_facts(),
            "sizes": {name: sizes[name] for name in sizes},
            "scenarios": {},
            "durations_s": {},
        }
    for name in chosen:
        finished = "error" not in results["scenarios"].get(name, {"error": "not run"})
        if finished and name not in again:
            continue
        if args.resume:  # which scenarios ran in this part of the run
            results["resumed_at"][-1].setdefault("scenarios", []).append(name)
        print(f"== {name} ...", flush=True)
        started = time.perf_counter()
        try:
            results["scenarios"][name] = _scenario(name)(sizes)
        except Exception as error:  # noqa: BLE001 - a failed scenario fails its targets, the rest still run
            traceback.print_exc()
            results["scenarios"][name] = {"error": f"{type(error).__name__}: {error}"}
        results["durations_s"][name] = round(time.perf_counter() - started, 1)
        print(f"   {name}: {results['durations_s'][name]} s", flush=True)
        report.write(results, targets_for(results["scenarios"]), path)

    targets = targets_for(results["scenarios"])
    report.write(results, targets, path)
    print()
    print(report.table(targets))
    print(f"\nfigures: {path}")
    if args.docs:
        from bench import docs

        docs.main([str(path)])
    return 0 if all(t.passed for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
