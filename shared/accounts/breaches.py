"""Previously breached passwords: Have I Been Pwned's Pwned Passwords range API.

k-anonymity: only the first 5 hex characters of the password's SHA-1 leave the service.
The API answers every hash suffix it knows under that prefix, padded with zero-count
rows (`Add-Padding`) so that not even the answer's size tells which prefix was asked;
the match is made here. A password seen in a breach at least once is refused.

When the API does not answer within the timeout (the whole answer, not each read of it),
or answers with an error, the password is judged by the other rules alone: registration
and password change keep working through a third party's outage. A warning is logged,
without the password or its hash.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.request

logger = logging.getLogger(__name__)

PREFIX_LENGTH = 5
MAX_ANSWER_BYTES = 1024 * 1024  # an answer is some 1,000 rows of about 40 bytes (padded: up to 1,000 more)
USER_AGENT = "one-time-access-codes"  # the API refuses requests without one


class BreachedPasswords:
    def __init__(self, base_url: str, timeout_seconds: float):
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout_seconds

    def seen(self, password: str) -> bool:
        """Whether the password is in the breach corpus (False when that cannot be told now)."""
        digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
        prefix, suffix = digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]
        url = f"{self._base_url}/range/{prefix}"  # http(s) only: the setting's pattern
        request = urllib.request.Request(url, headers={"Add-Padding": "true", "User-Agent": USER_AGENT})  # noqa: S310
        deadline = time.monotonic() + self._timeout
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                answer = _read_before(response, deadline).decode("ascii", "replace")
        except (OSError, ValueError) as error:  # URLError, HTTPError and timeouts are OSErrors
            logger.warning("Breached-password check skipped: the range API did not answer (%s)", type(error).__name__)
            return False
        return any(_counted(line, suffix) for line in answer.splitlines())


def _read_before(response, deadline: float) -> bytes:
    """The answer's body, up to MAX_ANSWER_BYTES, as it arrives; TimeoutError once the
    deadline has passed. The socket's timeout bounds each read only, so a server sending
    a byte now and then would otherwise hold a registration for as long as it likes."""
    body = bytearray()
    while len(body) < MAX_ANSWER_BYTES and (chunk := response.read1(MAX_ANSWER_BYTES - len(body))):
        body += chunk
        if time.monotonic() > deadline:
            raise TimeoutError
    return bytes(body)


def _counted(line: str, suffix: str) -> bool:
    """`line` is "<suffix>:<count>"; padding rows have the count 0."""
    candidate, _, count = line.partition(":")
    return candidate.strip().upper() == suffix and count.strip().isdigit() and int(count) > 0
