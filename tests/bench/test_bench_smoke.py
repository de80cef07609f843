"""The benchmarks at small N: every scenario still runs and produces its figures, and the
correctness invariants hold. Timing targets are judged only by `make bench` (shared,
noisy machines make timings meaningless here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench import aio_floor, cleanup, code_uniqueness, coldstart, faults, latency, login, mail, users
from bench.__main__ import SMALL
from bench.harness import Stack
from bench.targets import targets_for
from devhost.azurite import ROOT

pytestmark = [pytest.mark.bench, pytest.mark.timeout(600)]
SIZES = {1: 5, latency.WORKER_THREADS: 50, 200: 200}  # requests per concurrency level


def test_issue_and_redeem_are_measured_against_the_storage_floor_at_every_concurrency():
    with Stack.start() as stack:
        figures = latency.run(stack, stack.host(PYTHON_THREADPOOL_THREAD_COUNT=str(latency.WORKER_THREADS)), SIZES)
    for level in latency.LEVELS:
        issued, redeemed = (figures["service"][op][f"c{level}"] for op in ("issue", "redeem"))
        # every code issued, and every guest's redemption of it let in, at every concurrency
        assert issued["statuses"] == {"201": SIZES[level]}, issued["statuses"]
        assert redeemed["statuses"] == {"200": SIZES[level]}, redeemed["statuses"]
        for op in ("issue", "redeem"):  # the floor did the same work without a failure
            floor = figures["floor"][op][f"c{level}"]
            assert (floor["n"], floor["errors"]) == (SIZES[level], 0)
    assert {t.name for t in targets_for({"latency": figures})} >= {"redeem p50 at c1 / floor"}


def test_the_floor_is_measured_on_the_aio_sdk_beside_the_sync_one():
    with Stack.start() as stack:
        figures = aio_floor.run(stack, SMALL["aio_floor"])
    for level in aio_floor.LEVELS:
        for kind in ("aio", "sync"):
            for op in ("redeem", "issue"):
                measured = figures[kind][f"c{level}"][op]
                assert (measured["n"], measured["errors"]) == (SMALL["aio_floor"], 0), (kind, level, op)


def test_codes_issued_beside_many_active_codes_all_succeed_and_redeem():
    with Stack.start() as stack:
        figures = code_uniqueness.run(stack, **SMALL["uniqueness"])
    assert figures["issue_errors"] == 0
    assert figures["issued"] == SMALL["uniqueness"]["issue"]
    assert figures["collision_retries"] <= 1  # p = 2 / 10^6 per issue: 0 expected
    assert figures["redeem_p50_ms_full"] > 0  # every redemption went through (each one raises otherwise)


def test_every_code_of_many_users_is_redeemed_exactly_once_even_when_raced():
    with Stack.start() as stack:
        figures = users.run(stack, stack.host(), SMALL["users"], concurrency=50)
    assert figures["errors"] == 0, figures
    assert figures["double_redemptions"] == 0
    assert figures["unredeemed_codes"] == 0
    assert figures["audit_lines"] == figures["audit_expected"] > 0


def test_login_is_measured_against_bcrypt_alone():
    with Stack.start() as stack:
        figures = login.run(stack, stack.host(), SMALL["login"])
    assert figures["statuses"] == {"201": SMALL["login"]}  # every sign-in with the right password got a session
    assert figures["bcrypt_cost"] >= 10  # compared with the work the product requires at least


def test_cleanup_removes_every_expired_code_and_never_touches_a_live_row():
    with Stack.start() as stack:
        figures = cleanup.run(stack, 200)
    assert figures["live_rows_touched"] == 0
    assert figures["expired_left"] == 0 and figures["live_kept"] == figures["live_checked"]
    assert figures["codes_purged"] == 200 and not figures["job"]["errors"]
    assert figures["expired_checked"] > 0 and figures["live_checked"] > 0  # the checks above looked at rows


def test_a_storage_outage_answers_503_never_500_and_keeps_every_acknowledged_redemption():
    with Stack.start(persistent=True) as stack:
        figures = faults.run(stack, **SMALL["faults"])
    assert figures["status_500"] == 0
    assert figures["gap_503"] > 0, figures["gap"]
    assert figures["failures_outside_gap"] == 0, figures
    assert figures["recovered"], figures["after"]
    assert figures["acknowledged_redemptions"] > 0
    assert figures["acknowledged_without_audit"] == 0
    assert figures["acknowledged_not_redeemed"] == 0


def test_mail_with_a_failing_provider_ends_in_the_poison_queue_and_none_is_lost():
    with Stack.start() as stack:
        figures = mail.run(stack, SMALL["mail"])
    assert figures["lost"] == 0 and figures["poisoned"] == SMALL["mail"]
    assert figures["lost_after_recovery"] == 0


def test_a_just_started_host_answers_its_first_requests_as_a_warm_one_does():
    with Stack.start() as stack:
        figures = coldstart.run(stack, runs=1)
    # a host just started answers its first requests as a warm one does: health, and a
    # guest's wrong code the generic refusal, never a 500
    first = figures["first_requests"]
    assert (first["health"]["status"], first["redeem"]["status"]) == (200, 400)


def test_the_command_prints_the_targets_and_writes_the_figures(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--small", "--only", "mail", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "targets PASS" in result.stdout, result.stdout + result.stderr
    (written,) = tmp_path.glob("*.json")
    document = json.loads(written.read_text())
    assert document["mode"] == "small" and document["machine"]["cpus"] >= 1
    assert {t["verdict"] for t in document["targets"]} <= {"PASS", "FAIL"}


def test_a_resumed_run_measures_again_what_it_is_told_and_says_so(tmp_path):
    def bench(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "bench", "--small", "--only", "mail", "--out", str(tmp_path), *args]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)

    first = bench()
    (written,) = tmp_path.glob("*.json")
    measured = json.loads(written.read_text())["scenarios"]["mail"]
    kept = bench("--resume", str(written))  # a finished scenario is kept
    assert json.loads(written.read_text())["scenarios"]["mail"] == measured, first.stdout + kept.stdout
    again = bench("--resume", str(written), "--again", "mail")
    document = json.loads(written.read_text())
    assert "targets PASS" in again.stdout, again.stdout + again.stderr
    assert [resume.get("scenarios") for resume in document["resumed_at"]] == [None, ["mail"]]
    assert "load_average" in document["resumed_at"][1]["machine"]
    assert document["resumed_at"][1]["commit"] == document["commit"]  # the page names the commit of each part


def test_a_size_given_on_the_command_line_sets_the_latency_levels(tmp_path):
    levels = '{"1": 3, "16": 16, "200": 20}'  # JSON keys are strings; the levels are numbers
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--small", "--only", "latency", "--size", f"latency={levels}",
         "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    (written,) = tmp_path.glob("*.json")
    figures = json.loads(written.read_text())["scenarios"]["latency"]
    assert "error" not in figures, result.stdout + result.stderr
    assert figures["service"]["issue"]["c16"]["n"] == 16
