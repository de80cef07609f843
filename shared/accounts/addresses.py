"""Email addresses as user names.

An address is accepted when email-validator (syntax only, no DNS) accepts it and it
also passes the house rules: exactly one "@", no quotes, backticks, NUL or control
characters, a domain of ASCII letters, digits, hyphens and dots, a local part of at
most 63 characters and at most 254 characters in all. The display form is kept as
typed; the key that makes addresses unique is the normalised, lower-cased form, so
Smith@x.com and smith@x.com are one user.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 63
DANGEROUS = frozenset("\"'`\\")
DOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9.-]+$")


class InvalidEmail(ValueError):
    """The address is refused; the message says why (and never repeats the address)."""


@dataclass(frozen=True)
class EmailAddress:
    display: str  # as typed (trimmed)
    key: str  # normalised: unique per user

    @property
    def key_hash(self) -> str:
        """The key as a table-key-safe string (addresses may hold "/", "#" or "?")."""
        return hashlib.sha256(self.key.encode()).hexdigest()


def _has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn") for char in value)


def parse_email(value: str) -> EmailAddress:
    """The address, validated and normalised, or InvalidEmail."""
    display = value.strip()
    if not display:
        raise InvalidEmail("The email address is empty.")
    if len(display) > MAX_LENGTH:
        raise InvalidEmail(f"The email address is longer than {MAX_LENGTH} characters.")
    if any(char in DANGEROUS for char in display) or _has_control_characters(display):
        raise InvalidEmail("The email address holds characters that are not allowed (quotes, backticks, controls).")
    parts = display.split("@")
    if len(parts) != 2 or not all(parts):
        raise InvalidEmail("The email address must be two parts joined by one @.")
    local, domain = parts
    if len(local) > MAX_LOCAL_LENGTH:
        raise InvalidEmail(f"The part before the @ is longer than {MAX_LOCAL_LENGTH} characters.")
    if not DOMAIN_PATTERN.match(domain):
        raise InvalidEmail("The domain may hold only letters, digits, hyphens and dots.")
    # imported on first use: it is a tenth of the app's import time, and only accounts need it
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(display, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(str(error)) from None
    return EmailAddress(display=display, key=checked.normalized.lower())
