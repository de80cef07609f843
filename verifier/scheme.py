"""Offline codes: what the service and a verifier both compute, in one place.

A verifier (a door keypad, a kiosk) shares a secret with the service. An offline code is
the HOTP value (RFC 4226, with HMAC-SHA256 as RFC 6238 allows) of that secret and a
counter made of the code's issue slot and its index within the slot. The service hands
out each (slot, index) at most once; the verifier, which cannot ask the service, accepts
every code that some (slot, index) still alive on its clock would give, issued or not.
That set is what a guesser plays against, so it is kept small: a slot is a tenth of the
code lifetime, and a slot holds `codes_per_slot` codes (1 by default).

A code of slot n is valid from the slot's start until `lifetime` after it, with
CLOCK_SKEW_SECONDS of tolerance on both sides: it lives between 0.9 and 1.0 of the
lifetime (the service says when it expires), never longer.

The verifier's attempt limits live here too, because the odds depend on them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from dataclasses import asdict, dataclass

DIGITS = 6
CODE_SPACE = 10**DIGITS
SLOTS_PER_LIFETIME = 10
# indexes per slot the counter has room for (codes_per_slot is far smaller)
INDEX_RANGE = 256
# How far the verifier's clock may be off the service's: each sync measures the
# difference and the verifier corrects by it, so only the drift since the last sync (a few
# seconds a day for a quartz clock) remains.
CLOCK_SKEW_SECONDS = 30

# The verifier's attempt limits: FREE_TRIES wrong codes, then a wait before each next try
# that doubles from FIRST_WAIT_SECONDS up to LONGEST_WAIT_SECONDS. Failures are remembered
# for FAILURE_MEMORY_SECONDS whatever happens in between (a guest's success does not wipe
# a guesser's record).
FREE_TRIES = 3
FIRST_WAIT_SECONDS = 60
LONGEST_WAIT_SECONDS = 3600
FAILURE_MEMORY_SECONDS = 24 * 3600

# What an enrolment may choose.
DEFAULT_CODES_PER_SLOT = 1
MAX_CODES_PER_SLOT = 10
DEFAULT_LEASE_HOURS = 24
MAX_LEASE_HOURS = 7 * 24
# The chance the defaults must keep a guesser under, within one code lifetime.
ODDS_TARGET = 1e-4


def secret_bytes(secret: str) -> bytes:
    """The secret as the enrolment shows it (base32, unpadded) to the key HOTP uses."""
    return base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)


def secret_text(key: bytes) -> str:
    return base64.b32encode(key).decode().rstrip("=")


def hotp(secret: bytes, counter: int, digits: int = DIGITS) -> str:
    """RFC 4226 HOTP with HMAC-SHA256: dynamic truncation of the MAC of the counter."""
    mac = hmac.new(secret, counter.to_bytes(8, "big"), hashlib.sha256).digest()
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def wait_after(failures: int) -> int:
    """Seconds the verifier waits before the next try, after `failures` remembered failures."""
    if failures < FREE_TRIES:
        return 0
    return min(LONGEST_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2 ** (failures - FREE_TRIES))


def guesses_within(seconds: float) -> int:
    """The most codes one person can try within `seconds` from a fresh start (the worst
    case: remembered failures only make the waits longer)."""
    guesses, elapsed = 0, 0.0
    while True:
        elapsed += wait_after(guesses)
        if elapsed > seconds:
            return guesses
        guesses += 1


@dataclass(frozen=True)
class Scheme:
    """One verifier's offline codes: how long they live and how many a slot holds."""

    lifetime_seconds: int
    codes_per_slot: int = DEFAULT_CODES_PER_SLOT
    skew_seconds: int = CLOCK_SKEW_SECONDS

    @property
    def slot_seconds(self) -> int:
        return max(1, self.lifetime_seconds // SLOTS_PER_LIFETIME)

    def slot_at(self, moment: float) -> int:
        return int(moment // self.slot_seconds)

    def expires_at(self, slot: int) -> float:
        """When a code of this slot stops being valid (before the skew tolerance)."""
        return slot * self.slot_seconds + self.lifetime_seconds

    def forget_after(self, slot: int) -> float:
        """When no verifier accepts a code of this slot any more: what it must remember
        about the slot's codes (used, revoked) until then."""
        return self.expires_at(slot) + self.skew_seconds

    def live_slots(self, moment: float) -> range:
        """The slots whose codes a verifier accepts at `moment`."""
        first = math.ceil((moment - self.lifetime_seconds - self.skew_seconds) / self.slot_seconds)
        last = math.floor((moment + self.skew_seconds) / self.slot_seconds)
        return range(first, last + 1)

    def recent_slots(self, moment: float) -> range:
        """Slots that died within the last lifetime: a code of one reads as expired."""
        live = self.live_slots(moment)
        return range(live.start - SLOTS_PER_LIFETIME - 1, live.start)

    def code(self, secret: bytes, slot: int, index: int) -> str:
        return hotp(secret, slot * INDEX_RANGE + index)

    def find(self, secret: bytes, typed: str, slots: range) -> tuple[int, int] | None:
        """The (slot, index) among `slots` whose code is `typed`, compared in constant time."""
        found = None
        for slot in slots:
            for index in range(self.codes_per_slot):
                if hmac.compare_digest(self.code(secret, slot, index), typed) and found is None:
                    found = (slot, index)
        return found

    def accepted_at_once(self) -> int:
        """The most codes a verifier accepts at one moment, issued or not."""
        return (math.floor((self.lifetime_seconds + 2 * self.skew_seconds) / self.slot_seconds) + 1) * (
            self.codes_per_slot
        )

    def chance_within_lifetime(self) -> float:
        """A bound on the chance that a person at the keypad finds a valid code within one
        code lifetime: each try hits at most accepted_at_once() of the CODE_SPACE codes."""
        return min(1.0, guesses_within(self.lifetime_seconds) * self.accepted_at_once() / CODE_SPACE)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> Scheme:
        return cls(int(values["lifetime_seconds"]), int(values["codes_per_slot"]), int(values["skew_seconds"]))
