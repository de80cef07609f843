"""The password policy and bcrypt.

Policy (NIST SP 800-63B flavoured): 8 to 64 characters, at most 72 UTF-8 bytes
(bcrypt's input limit: longer is refused, never truncated), a zxcvbn score of at least
3 with the user's email as context, not a common password, and (where the breach check
is on, shared/accounts/breaches.py) not one seen in a known breach. Passwords are NFKC
normalised first, so the same password typed on different systems hashes the same.

bcrypt runs at the configured cost (never below 10). For an unknown user the check
runs against a dummy hash made once per process at the same cost, so a login costs the
same whether or not the account exists.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass, field, replace
from functools import lru_cache

import bcrypt
import zxcvbn_rs_py as zxcvbn

MIN_LENGTH = 8
MAX_LENGTH = 64
MAX_BYTES = 72  # bcrypt's limit
MIN_SCORE = 3
MIN_BCRYPT_COST = 10
# zxcvbn's own verdicts that the password is one of the commonly used ones.
# (compared by value: the binding's enum members are not hashable)
COMMON_WARNINGS = (
    zxcvbn.Warning.ThisIsATop10Password,
    zxcvbn.Warning.ThisIsATop100Password,
    zxcvbn.Warning.ThisIsACommonPassword,
    zxcvbn.Warning.ThisIsSimilarToACommonlyUsedPassword,
)


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True)
class Verdict:
    """What the policy says of a password: acceptable when there are no problems."""

    score: int
    # too_short, too_long, too_many_bytes, too_weak, too_common, breached
    problems: list[str] = field(default_factory=list)
    warning: str | None = None
    suggestions: list[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {
            "score": self.score,
            "acceptable": self.acceptable,
            "problems": self.problems,
            "warning": self.warning,
            "suggestions": self.suggestions,
        }


def _user_inputs(email: str | None) -> list[str]:
    if not email:
        return []
    local, _, domain = email.lower().partition("@")
    words = re.split(r"[^0-9a-z]+", local) + domain.split(".")
    return [value for value in (email.lower(), local, domain, *words) if len(value) >= 3]


def check(password: str, email: str | None = None) -> Verdict:
    """Judge a password (already normalised or not: it is normalised here)."""
    password = normalise(password)
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append("too_short")
    if len(password) > MAX_LENGTH:
        problems.append("too_long")
    if len(password.encode()) > MAX_BYTES:
        problems.append("too_many_bytes")
    if len(password) > MAX_LENGTH * 2:
        # refused anyway; not worth estimating
        return Verdict(score=0, problems=problems)
    result = zxcvbn.zxcvbn(password, user_inputs=_user_inputs(email))
    score = int(result.score)
    feedback = result.feedback
    warning = feedback.warning if feedback else None
    if score < MIN_SCORE:
        problems.append("too_weak")
    if warning is not None and any(warning == common for common in COMMON_WARNINGS):
        problems.append("too_common")
    return Verdict(
        score=score,
        problems=problems,
        warning=str(warning) if warning is not None else None,
        suggestions=[str(s) for s in feedback.suggestions] if feedback else [],
    )


def describe(problem: str) -> str:
    """A problem in words: "too_short" -> "too short"."""
    return "found in a data breach" if problem == "breached" else problem.replace("_", " ")


def breached(verdict: Verdict) -> Verdict:
    """The verdict on a password otherwise acceptable but seen in a known breach
    (shared/accounts/breaches.py): attackers try those first, whatever their score."""
    return replace(
        verdict,
        problems=[*verdict.problems, "breached"],
        warning="This password has appeared in a data breach.",
        suggestions=["Choose a password you have not used anywhere else."],
    )


def fits_bcrypt(password: str) -> bool:
    return len(normalise(password).encode()) <= MAX_BYTES


@lru_cache(maxsize=4)
def _dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(secrets.token_urlsafe(16).encode(), bcrypt.gensalt(cost))


class PasswordHasher:
    def __init__(self, cost: int):
        if cost < MIN_BCRYPT_COST:
            raise ValueError(f"bcrypt cost must be at least {MIN_BCRYPT_COST}")
        self.cost = cost

    def hash(self, password: str) -> str:
        """The bcrypt hash; the caller has checked the policy (bcrypt refuses > 72 bytes)."""
        return bcrypt.hashpw(normalise(password).encode(), bcrypt.gensalt(self.cost)).decode()

    def verify(self, password: str, stored_hash: str | None) -> bool:
        """Check a password against a stored hash, or against the dummy when there is none:
        the same bcrypt work either way. A password bcrypt cannot take is checked as an
        arbitrary in-range value, so it costs the same and fails."""
        candidate = normalise(password).encode()
        fits = len(candidate) <= MAX_BYTES
        if not fits:
            candidate = b"\x00" * MAX_BYTES
        target = stored_hash.encode() if stored_hash else _dummy_hash(self.cost)
        matched = bcrypt.checkpw(candidate, target)
        return matched and fits and stored_hash is not None

    def warm_up(self) -> None:
        """Make the dummy hash now, so the first unknown-user login is not the slow one."""
        _dummy_hash(self.cost)
