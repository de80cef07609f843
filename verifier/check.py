"""Deciding on a typed code without the network.

In order: a verifier past its lease (or refused by the service) refuses everything and
says why; a person still waiting is told how long, and the try is not judged; then the
code is looked up among the live slots. A code matching no live slot, a used or a revoked
one is a failure: remembered for the waits and logged for the service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from verifier.scheme import DIGITS, FAILURE_MEMORY_SECONDS, Scheme, secret_bytes, wait_after
from verifier.state import State


class Reason:
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # no code this verifier would give now
    EXPIRED = "expired"  # the code of a slot that died within the last lifetime
    USED = "used"
    REVOKED = "revoked"
    # not judged: the verifier refuses without looking at the code
    WAIT = "wait"
    LEASE = "lease_expired"
    NOT_ENROLLED = "not_enrolled"


# What a guest sees: every failure reads the same, as online.
GENERIC_REFUSAL = "The code is not valid."


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str
    message: str
    wait_seconds: int = 0


def normalise(typed: str) -> str | None:
    digits = typed.replace(" ", "").replace("-", "")
    return digits if len(digits) == DIGITS and digits.isascii() and digits.isdigit() else None


def check(state: State, typed: str, now: float) -> Verdict:
    """Judge `typed` at `now` (the verifier's own clock), updating `state`."""
    if state.revoked_verifier or state.scheme is None:
        return Verdict(False, Reason.NOT_ENROLLED, "This verifier is not enrolled (or was revoked): enrol it again.")
    if now >= state.lease_until:
        return Verdict(False, Reason.LEASE, "The offline lease has run out: sync with the service to go on.")
    state.failures = [moment for moment in state.failures if moment > now - FAILURE_MEMORY_SECONDS]
    waiting = _wait_left(state, now)
    if waiting > 0:
        return Verdict(False, Reason.WAIT, f"Too many wrong codes: try again in {waiting} s.", waiting)

    scheme = Scheme.from_dict(state.scheme)
    service_now = now + state.clock_offset
    _forget_dead_codes(state, service_now)
    secret = secret_bytes(state.secret)
    code = normalise(typed)
    found = scheme.find(secret, code, scheme.live_slots(service_now)) if code else None
    if found is None:
        expired = code is not None and scheme.find(secret, code, scheme.recent_slots(service_now)) is not None
        return _failure(state, Reason.EXPIRED if expired else Reason.UNKNOWN, None, now, service_now)
    key = f"{found[0]}:{found[1]}"
    if key in state.revoked:
        return _failure(state, Reason.REVOKED, found, now, service_now)
    if key in state.used:
        return _failure(state, Reason.USED, found, now, service_now)
    state.used[key] = scheme.forget_after(found[0])
    _log(state, "ok", Reason.ACCEPTED, found, service_now)
    return Verdict(True, Reason.ACCEPTED, "The code is accepted.")


def _wait_left(state: State, now: float) -> int:
    if not state.failures:
        return 0
    return max(0, round(max(state.failures) + wait_after(len(state.failures)) - now))


def _forget_dead_codes(state: State, service_now: float) -> None:
    for remembered in (state.used, state.revoked):
        for key in [key for key, until in remembered.items() if until < service_now]:
            del remembered[key]


def _failure(state: State, reason: str, found: tuple[int, int] | None, now: float, service_now: float) -> Verdict:
    state.failures.append(now)
    _log(state, "fail", reason, found, service_now)
    return Verdict(False, reason, GENERIC_REFUSAL, _wait_left(state, now))


def _log(state: State, outcome: str, reason: str, found: tuple[int, int] | None, service_now: float) -> None:
    entry = {
        "entryId": uuid.uuid4().hex,
        "checkedAt": datetime.fromtimestamp(service_now, UTC).isoformat(timespec="seconds"),
        "outcome": outcome,
        "reason": reason,
    }
    if found is not None:
        entry["slot"], entry["index"] = found
    state.log.append(entry)
