"""CSRF tokens: bound to a session or to a browser's nonce, keyed, rotation-proof."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime

from shared.auth.csrf import CsrfTokens
from shared.auth.keys import KeyRing
from shared.auth.sessions import Session

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def ring(*key_ids: str, active: str) -> KeyRing:
    return KeyRing({k: KEYS[k] for k in key_ids}, active)


KEYS = {"k1": secrets.token_bytes(32), "k2": secrets.token_bytes(32)}


def session(token_hash: str = "ab" * 32) -> Session:
    return Session(token_hash, "k1", "u1", "admin", NOW, NOW, NOW, NOW, False)


def test_a_session_token_is_valid_for_its_session_only():
    csrf = CsrfTokens(ring("k1", active="k1"))
    mine, other = session(), session("cd" * 32)
    token = csrf.for_session(mine)
    assert csrf.session_token_valid(mine, token)
    assert not csrf.session_token_valid(other, token)
    assert not csrf.session_token_valid(mine, None)
    assert not csrf.session_token_valid(mine, "")
    assert not csrf.session_token_valid(mine, token[:-1])
    assert not csrf.session_token_valid(mine, "0" * 64)


def test_the_token_does_not_change_while_the_session_slides():
    csrf = CsrfTokens(ring("k1", active="k1"))
    assert csrf.for_session(session()) == csrf.for_session(replace(session(), last_seen_at=NOW.replace(hour=13)))


def test_a_page_rendered_before_a_key_rotation_still_posts():
    before = CsrfTokens(ring("k1", active="k1")).for_session(session())
    assert CsrfTokens(ring("k1", "k2", active="k2")).session_token_valid(session(), before)


def test_a_form_token_matches_its_nonce_only():
    csrf = CsrfTokens(ring("k1", active="k1"))
    nonce, other = csrf.new_nonce(), csrf.new_nonce()
    assert csrf.usable_nonce(nonce) and nonce != other
    token = csrf.for_nonce(nonce)
    assert csrf.nonce_token_valid(nonce, token)
    assert not csrf.nonce_token_valid(other, token)
    assert not csrf.nonce_token_valid(None, token)
    assert not csrf.nonce_token_valid("short", csrf.for_nonce("short"))


def test_session_and_form_tokens_are_different_purposes():
    csrf = CsrfTokens(ring("k1", active="k1"))
    value = "ab" * 32
    assert csrf.for_nonce(value) != csrf.for_session(session(value))
