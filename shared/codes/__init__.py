"""One-time access codes: models (values, no I/O), store (the `codes` table and the
expiry index) and service (issue, redeem, list, revoke, purge)."""

from shared.codes.models import AccessCode, CodeRejected, CodeState, IssuedCode, Redemption, RejectReason
from shared.codes.service import CodeLimits, CodeService, IssuerDirectory, NoLimits
from shared.codes.store import CodeStore

__all__ = [
    "AccessCode",
    "CodeLimits",
    "CodeRejected",
    "CodeService",
    "CodeState",
    "CodeStore",
    "IssuedCode",
    "IssuerDirectory",
    "NoLimits",
    "Redemption",
    "RejectReason",
]
