"""The mail budget: how many mails strangers can make the app send.

Registration mails whoever it is given, and a resend mails the address of an account, so
both draw on this budget before anything is written or sent:
- per recipient address (its normalised form, stored only as a keyed hash by the rate
  limiter): a few an hour and a few more a day, so no address can be flooded;
- for the whole app, per hour, so no crowd of addresses can run up the provider's bill
  or its sending quota.
Each window's slot is reserved strictly (the next numbered row), so racing requests never
overshoot. The recipient's windows are reserved first: an address past its own budget
spends nothing of the global one. A slot is spent even when no mail follows (a taken
address recently told): what is counted is the request to mail someone.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import errors
from shared.limits.guard import limit_from
from shared.limits.ratelimit import Limit, RateLimiter

GLOBAL_KEY = "all-recipients"


@dataclass(frozen=True)
class MailLimits:
    per_recipient: tuple[Limit, ...]
    overall: Limit

    @classmethod
    def from_specs(cls, per_recipient: list[str], overall: str) -> MailLimits:
        """Limits from "<count>/<window>" specs (settings)."""
        return cls(
            tuple(limit_from(f"mail-recipient-{n}", spec) for n, spec in enumerate(per_recipient)),
            limit_from("mail-global", overall),
        )


class MailBudget:
    def __init__(self, limiter: RateLimiter, limits: MailLimits):
        self._limiter = limiter
        self._limits = limits

    def reserve(self, recipient_key: str) -> None:
        """Take one mail from the budget of `recipient_key` (a normalised address) and the
        global one; TooManyRequests (code `mail_budget`) when one is spent."""
        try:
            for limit in self._limits.per_recipient:
                self._limiter.reserve(limit, recipient_key)
            self._limiter.reserve(self._limits.overall, GLOBAL_KEY)
        except errors.TooManyRequests as spent:
            raise errors.TooManyRequests(
                spent.retry_after_seconds, "Too many mails went to this address; try again later.", code="mail_budget"
            ) from None

    def allows(self, recipient_key: str) -> bool:
        """`reserve`, as a yes or no."""
        try:
            self.reserve(recipient_key)
        except errors.TooManyRequests:
            return False
        return True
