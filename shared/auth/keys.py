"""Keyed hashes (HMAC-SHA256) of codes, tokens and client IPs.

Only these hashes are stored, so a leaked table reveals no usable code or token.
Keys carry ids so they can rotate: new values are hashed with the active key, and a
lookup tries every configured key, so live codes and sessions survive a rotation.
Each purpose gets its own derived key, so a hash of one kind never matches another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass


class KeyConfigError(ValueError):
    """The key setting is malformed (the message never includes key material)."""


@dataclass(frozen=True)
class KeyedHash:
    key_id: str
    digest: str  # hex


class KeyRing:
    MIN_KEY_BYTES = 32

    def __init__(self, keys: dict[str, bytes], active_key_id: str):
        if active_key_id not in keys:
            raise KeyConfigError(f"HMAC_ACTIVE_KEY_ID {active_key_id!r} is not among HMAC_KEYS")
        for key_id, key in keys.items():
            if len(key) < self.MIN_KEY_BYTES:
                raise KeyConfigError(f"HMAC key {key_id!r} is shorter than {self.MIN_KEY_BYTES} bytes")
        self.active_key_id = active_key_id
        # active key first, so the common lookup hits on the first try
        ordered = [active_key_id, *sorted(k for k in keys if k != active_key_id)]
        self._keys = {key_id: keys[key_id] for key_id in ordered}
        self._derived: dict[tuple[str, str], bytes] = {}

    @classmethod
    def parse(cls, spec: str, active_key_id: str) -> KeyRing:
        """Parse "kid:base64key,kid:base64key"."""
        keys: dict[str, bytes] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key_id, sep, encoded = part.partition(":")
            if not sep or not key_id:
                raise KeyConfigError("HMAC_KEYS must look like 'kid:base64key,kid:base64key'")
            try:
                keys[key_id] = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise KeyConfigError(f"HMAC key {key_id!r} is not valid base64") from None
        if not keys:
            raise KeyConfigError("HMAC_KEYS holds no key")
        return cls(keys, active_key_id)

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    def _key(self, key_id: str, purpose: str) -> bytes:
        derived = self._derived.get((key_id, purpose))
        if derived is None:
            derived = hmac.new(self._keys[key_id], b"purpose:" + purpose.encode(), hashlib.sha256).digest()
            self._derived[(key_id, purpose)] = derived
        return derived

    def hash(self, purpose: str, value: str, key_id: str | None = None) -> KeyedHash:
        key_id = key_id or self.active_key_id
        digest = hmac.new(self._key(key_id, purpose), value.encode(), hashlib.sha256).hexdigest()
        return KeyedHash(key_id, digest)

    def candidates(self, purpose: str, value: str) -> list[KeyedHash]:
        """The hash under every key, active first: what a lookup tries."""
        return [self.hash(purpose, value, key_id) for key_id in self._keys]

    def matches(self, purpose: str, value: str, stored: KeyedHash) -> bool:
        if stored.key_id not in self._keys:
            return False
        return hmac.compare_digest(self.hash(purpose, value, stored.key_id).digest, stored.digest)
