"""Offline codes as a verifier at a keypad judges them (verifier/), with its clock given:
when a code is accepted, for how long, how often, and the odds of a guesser."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from shared.codes.models import LONGEST_TTL_SECONDS, SHORTEST_TTL_SECONDS
from verifier.check import Reason, check
from verifier.scheme import (
    CLOCK_SKEW_SECONDS,
    FREE_TRIES,
    LONGEST_WAIT_SECONDS,
    ODDS_TARGET,
    Scheme,
    guesses_within,
    hotp,
    secret_bytes,
    secret_text,
)
from verifier.state import State, StateFile

# RFC 6238, appendix B, SHA-256 rows (8 digits; the seed is 32 ASCII bytes)
RFC_6238_SEED = b"12345678901234567890123456789012"


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [(59, "46119246"), (1111111109, "68084774"), (1234567890, "91819424"), (20000000000, "77737706")],
)
def test_codes_are_hotp_with_sha256_as_rfc_6238_computes_them(unix_time, expected):
    assert hotp(RFC_6238_SEED, unix_time // 30, digits=8) == expected


SCHEME = Scheme(lifetime_seconds=600)
START = 1_800_000_000.0  # a slot boundary for 6, 60, 180 and 360 s slots


def enrolled(scheme: Scheme = SCHEME) -> State:
    state = State(service_url="http://service", verifier_id="v" * 16, secret=secret_text(secrets.token_bytes(32)))
    state.scheme = scheme.to_dict()
    state.lease_until = START + 24 * 3600
    return state


def code_at(state: State, moment: float, index: int = 0) -> str:
    scheme = Scheme.from_dict(state.scheme)
    return scheme.code(secret_bytes(state.secret), scheme.slot_at(moment), index)


def test_a_code_is_accepted_once_from_its_issue_until_it_expires():
    state = enrolled()
    issued = START + 42
    code = code_at(state, issued)
    assert check(state, code, issued).accepted
    assert check(state, code, issued + 1).reason == Reason.USED

    later = enrolled()
    later.secret = state.secret
    expires = SCHEME.expires_at(SCHEME.slot_at(issued))
    assert expires - issued <= SCHEME.lifetime_seconds
    assert check(later, code, expires + CLOCK_SKEW_SECONDS - 1).accepted
    too_late = enrolled()
    too_late.secret = state.secret
    verdict = check(too_late, code, expires + CLOCK_SKEW_SECONDS + SCHEME.slot_seconds)
    assert (verdict.accepted, verdict.reason, verdict.message) == (False, Reason.EXPIRED, "The code is not valid.")


def test_codes_of_one_slot_differ_and_a_slot_holds_only_the_enrolled_number():
    state = enrolled(Scheme(lifetime_seconds=600, codes_per_slot=3))
    codes = {code_at(state, START, index) for index in range(3)}
    assert len(codes) == 3
    assert all(check(state, code, START + 5).accepted for code in codes)
    fourth = code_at(state, START, 3)
    assert check(state, fourth, START + 6).reason == Reason.UNKNOWN


def test_wrong_codes_bring_growing_waits_that_a_right_code_does_not_skip_and_a_restart_keeps(tmp_path):
    state_file = StateFile(tmp_path / "state.json")
    state_file.create(enrolled())
    now = START
    with state_file.changing() as state:
        wrong = "000000" if code_at(state, now) != "000000" else "111111"
        for _ in range(FREE_TRIES):
            assert check(state, wrong, now).reason == Reason.UNKNOWN
        right = code_at(state, now)
        waiting = check(state, right, now + 1)
    assert (waiting.accepted, waiting.reason, waiting.wait_seconds) == (False, Reason.WAIT, 59)
    with state_file.changing() as restarted:
        assert check(restarted, right, now + 30).reason == Reason.WAIT
        assert check(restarted, right, now + 61).accepted
        # the failures are still remembered: the next wrong code waits longer
        assert check(restarted, wrong, now + 62).wait_seconds == 120


def test_past_the_lease_every_code_is_refused_and_the_verifier_says_why():
    state = enrolled()
    now = state.lease_until + 1
    verdict = check(state, code_at(state, now), now)
    assert (verdict.accepted, verdict.reason) == (False, Reason.LEASE)
    assert "sync" in verdict.message
    assert not state.log  # not judged, not logged


def test_a_revoked_code_is_refused_and_the_log_names_the_code_without_holding_it():
    state = enrolled()
    code = code_at(state, START)
    state.revoked[f"{SCHEME.slot_at(START)}:0"] = SCHEME.forget_after(SCHEME.slot_at(START))
    assert check(state, code, START + 3).reason == Reason.REVOKED
    [entry] = state.log
    assert entry["slot"] == SCHEME.slot_at(START) and code not in str(entry)


def test_a_guesser_at_the_keypad_within_one_lifetime_stays_under_the_target_at_every_allowed_lifetime():
    for lifetime in range(SHORTEST_TTL_SECONDS, LONGEST_TTL_SECONDS + 1):
        assert Scheme(lifetime_seconds=lifetime).chance_within_lifetime() <= ODDS_TARGET, lifetime


@pytest.mark.parametrize("lifetime", [60, 65, 600, 1800, 3600])
def test_the_bound_counts_every_code_a_verifier_accepts_at_one_moment(lifetime):
    scheme = Scheme(lifetime_seconds=lifetime)
    alive = max(len(scheme.live_slots(START + offset / 4)) for offset in range(4 * scheme.slot_seconds))
    assert alive * scheme.codes_per_slot == scheme.accepted_at_once()


def test_the_readme_states_the_offline_odds_the_scheme_computes():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for lifetime in (60, 600, 1800, 3600):
        scheme = Scheme(lifetime_seconds=lifetime)
        row = re.search(rf"^\| {lifetime:,} s[^|]*\| (\d+) s \| (\d+) \| (\d+) \| ([0-9.e-]+) \|$", readme, re.M)
        assert row, f"no README row for {lifetime} s"
        assert row.groups() == (
            str(scheme.slot_seconds), str(scheme.accepted_at_once()), str(guesses_within(lifetime)),
            f"{scheme.chance_within_lifetime():.1e}",
        )  # fmt: skip


def test_a_guesser_gets_a_handful_of_tries_per_lifetime_and_about_one_an_hour_after():
    assert guesses_within(600) == 6
    assert guesses_within(24 * 3600) - guesses_within(23 * 3600) == 3600 // LONGEST_WAIT_SECONDS
