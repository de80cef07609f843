"""CSRF tokens for the HTML forms.

- A signed-in form (the admin console): the token is an HMAC of the session's token hash
  under the purpose "csrf", so it lives exactly as long as the session, needs no storage,
  and a page of one session is useless to another.
- An anonymous form (the guest's redeem form, the login form): signed double submit. The
  browser holds a random nonce in a SameSite=Strict, HttpOnly cookie; the form carries
  the HMAC of that nonce. Another site can neither read the cookie nor make the browser
  send it, so it cannot post the form from a visitor's browser (which would let it spread
  guesses over its visitors' addresses).

Tokens are compared in constant time, against every key in the ring, so a key rotation
does not break a page that is already open.
"""

from __future__ import annotations

import hmac
import re
import secrets

from shared.auth.keys import KeyRing
from shared.auth.sessions import Session

SESSION_PURPOSE = "csrf"
FORM_PURPOSE = "csrf-form"
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


class CsrfTokens:
    def __init__(self, keys: KeyRing):
        self._keys = keys

    # --- signed-in forms -----------------------------------------------------------------

    def for_session(self, session: Session) -> str:
        return self._keys.hash(SESSION_PURPOSE, session.token_hash).digest

    def session_token_valid(self, session: Session, token: str | None) -> bool:
        return self._valid(SESSION_PURPOSE, session.token_hash, token)

    # --- anonymous forms -------------------------------------------------------------------

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def usable_nonce(nonce: str | None) -> bool:
        return bool(nonce) and NONCE_PATTERN.match(nonce) is not None

    def for_nonce(self, nonce: str) -> str:
        return self._keys.hash(FORM_PURPOSE, nonce).digest

    def nonce_token_valid(self, nonce: str | None, token: str | None) -> bool:
        return self.usable_nonce(nonce) and self._valid(FORM_PURPOSE, nonce, token)

    def _valid(self, purpose: str, bound_to: str, token: str | None) -> bool:
        if not token or len(token) != 64:
            return False
        given = token.encode()
        # no early exit: every key is tried, each in constant time
        results = [hmac.compare_digest(c.digest.encode(), given) for c in self._keys.candidates(purpose, bound_to)]
        return any(results)
