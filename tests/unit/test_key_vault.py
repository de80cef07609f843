"""Key Vault at run time, tested at its HTTP edge: a small HTTPS server answers like Key
Vault (the 401 challenge first, then secrets as JSON), and the real SecretClient talks to
it with a static token. Also: a missing or unresolved secret stops start-up by name."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import logging
import secrets as random_bytes
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.auth.key_vault import (
    HMAC_ACTIVE_KEY_ID_SECRET,
    HMAC_KEYS_SECRET,
    KeyRingSource,
    KeyVaultSecrets,
    MissingSecretError,
    RefreshingKeyRing,
    SecretUnavailableError,
)
from shared.clock import ManualClock
from shared.config import Settings, SettingsError, get_settings

TOKEN = "static-test-token"


def new_key() -> str:
    return base64.b64encode(random_bytes.token_bytes(32)).decode()


@dataclass
class FakeKeyVault:
    """The part of Key Vault's REST API the app uses: GET /secrets/{name}[/{version}]."""

    url: str
    secrets: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Authorization)
    down: bool = False


def _handler(vault: FakeKeyVault):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # the http.server API
            auth = self.headers.get("Authorization")
            parts = urlsplit(self.path)
            vault.requests.append((parts.path, auth))
            if "api-version" not in parse_qs(parts.query):
                return self._json(400, {"error": {"code": "MissingApiVersionParameter", "message": "api-version"}})
            if auth != f"Bearer {TOKEN}":
                # Key Vault's challenge: where to get a token, and for which resource
                challenge = (
                    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", '
                    'resource="https://vault.azure.net"'
                )
                return self._json(401, {"error": {"code": "Unauthorized"}}, {"WWW-Authenticate": challenge})
            if vault.down:
                return self._json(503, {"error": {"code": "ServiceUnavailable", "message": "try later"}})
            segments = [s for s in parts.path.split("/") if s]
            if len(segments) < 2 or segments[0] != "secrets":
                return self._json(404, {"error": {"code": "NotFound", "message": "no such path"}})
            name = segments[1]
            if name not in vault.secrets:
                message = f"A secret with (name/id) {name} was not found in this key vault."
                return self._json(404, {"error": {"code": "SecretNotFound", "message": message}})
            self._json(
                200,
                {
                    "value": vault.secrets[name],
                    "id": f"{vault.url}/secrets/{name}/0123456789abcdef0123456789abcdef",
                    "attributes": {
                        "enabled": True,
                        "created": 1_700_000_000,
                        "updated": 1_700_000_000,
                        "recoveryLevel": "Recoverable+Purgeable",
                    },
                    "tags": {},
                },
            )

    return Handler


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-key-vault")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "vault.crt", directory / "vault.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def key_vault(tmp_path) -> Iterator[FakeKeyVault]:
    cert_path, key_path = _self_signed_certificate(tmp_path)
    vault = FakeKeyVault(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(vault))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    vault.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    vault.ca_path = str(cert_path)  # type: ignore[attr-defined]
    try:
        yield vault
    finally:
        server.shutdown()
        server.server_close()


class StaticCredential:
    def __init__(self):
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(dt.datetime.now(dt.UTC).timestamp()) + 3600)


def reader_for(vault: FakeKeyVault, credential=None) -> KeyVaultSecrets:
    return KeyVaultSecrets(
        vault.url,
        credential=credential or StaticCredential(),
        connection_verify=vault.ca_path,  # type: ignore[attr-defined]  # trust the test's own certificate
        verify_challenge_resource=False,  # the vault is 127.0.0.1, not *.vault.azure.net
        retry_total=0,
    )


def test_secret_client_answers_the_challenge_and_reads_a_secret(key_vault):
    key_vault.secrets["hmac-keys"] = "k1:" + new_key()
    credential = StaticCredential()
    reader = reader_for(key_vault, credential)

    assert reader.get("hmac-keys") == key_vault.secrets["hmac-keys"]

    paths_and_auth = key_vault.requests
    assert paths_and_auth[0][1] is None  # first the challenge request, without a token
    assert paths_and_auth[-1] == (paths_and_auth[-1][0], f"Bearer {TOKEN}")
    assert credential.scopes == [("https://vault.azure.net/.default",)]


def test_secret_client_is_created_once_and_reused(key_vault):
    key_vault.secrets["a"] = "1"
    reader = reader_for(key_vault)
    reader.get("a")
    client = reader.client
    reader.get("a")
    assert reader.client is client
    # one challenge only: later requests carry the cached token
    assert sum(1 for _, auth in key_vault.requests if auth is None) == 1


def test_a_missing_secret_is_named_and_its_vault_given(key_vault):
    with pytest.raises(MissingSecretError) as raised:
        reader_for(key_vault).get("hmac-keys")
    assert "'hmac-keys'" in str(raised.value)
    assert key_vault.url in str(raised.value)
    assert isinstance(raised.value, SettingsError)  # stops start-up like any missing setting


def test_an_unavailable_vault_is_named_without_a_value(key_vault):
    key_vault.secrets["hmac-keys"] = "k1:" + new_key()
    key_vault.down = True
    with pytest.raises(SecretUnavailableError) as raised:
        reader_for(key_vault).get("hmac-keys")
    assert "'hmac-keys'" in str(raised.value)
    assert "503" in str(raised.value)
    assert key_vault.secrets["hmac-keys"] not in str(raised.value)


def test_key_ring_follows_a_two_step_rotation_without_a_restart(key_vault, caplog):
    old, new = new_key(), new_key()
    key_vault.secrets.update({HMAC_KEYS_SECRET: f"k1:{old}", HMAC_ACTIVE_KEY_ID_SECRET: "k1"})
    clock = ManualClock(dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC))
    ring = RefreshingKeyRing(
        KeyRingSource(f"k1:{old}", "k1", clock=clock, reader=reader_for(key_vault), refresh=dt.timedelta(minutes=5))
    )
    before = ring.hash("code", "123456")
    assert before.key_id == "k1" and ring.key_ids == ["k1"]

    # step 1: add k2, still hashing with k1
    key_vault.secrets[HMAC_KEYS_SECRET] = f"k1:{old},k2:{new}"
    clock.advance(minutes=4)
    assert ring.key_ids == ["k1"]  # not yet: the ring is re-read every 5 minutes
    clock.advance(minutes=2)
    assert set(ring.key_ids) == {"k1", "k2"} and ring.active_key_id == "k1"

    # step 2: make k2 active; what was hashed with k1 still matches
    key_vault.secrets[HMAC_ACTIVE_KEY_ID_SECRET] = "k2"
    clock.advance(minutes=6)
    assert ring.active_key_id == "k2"
    assert ring.hash("code", "123456").key_id == "k2"
    assert ring.matches("code", "123456", before)

    for record in caplog.records:
        assert old not in record.getMessage() and new not in record.getMessage()


def test_a_bad_or_missing_secret_keeps_the_ring_in_use_and_logs_only_names(key_vault, caplog):
    key = new_key()
    key_vault.secrets.update({HMAC_KEYS_SECRET: f"k1:{key}", HMAC_ACTIVE_KEY_ID_SECRET: "k1"})
    clock = ManualClock(dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.UTC))
    source = KeyRingSource(f"k1:{key}", "k1", clock=clock, reader=reader_for(key_vault))
    caplog.set_level(logging.WARNING, logger="shared.auth.key_vault")

    key_vault.secrets[HMAC_ACTIVE_KEY_ID_SECRET] = "k9"  # not among the keys
    clock.advance(minutes=6)
    assert source.current().active_key_id == "k1"

    del key_vault.secrets[HMAC_KEYS_SECRET]
    clock.advance(minutes=6)
    assert source.current().active_key_id == "k1"

    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "k9" in messages and "'hmac-keys'" in messages
    assert key not in messages


def test_without_a_vault_the_ring_is_the_one_from_the_settings():
    key = new_key()
    settings = Settings(
        AzureWebJobsStorage="UseDevelopmentStorage=true", hmac_keys=f"k1:{key}", hmac_active_key_id="k1"
    )
    assert settings.key_vault_url is None
    source = KeyRingSource.from_settings(settings, ManualClock())
    assert source._reader is None
    assert source.current().key_ids == ["k1"]


def _start_up(monkeypatch, **values: str) -> Settings:
    for name in ("HMAC_KEYS", "HMAC_ACTIVE_KEY_ID", "KEY_VAULT_URL", "MAIL_CONNECTION_STRING"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AzureWebJobsStorage", "UseDevelopmentStorage=true")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return get_settings()
    finally:
        get_settings.cache_clear()


def test_a_missing_secret_setting_stops_start_up_with_its_name(monkeypatch):
    with pytest.raises(SettingsError) as raised:
        _start_up(monkeypatch, HMAC_ACTIVE_KEY_ID="k1")
    assert "HMAC_KEYS" in str(raised.value)


def test_an_unresolved_key_vault_reference_stops_start_up_with_its_name(monkeypatch):
    reference = "@Microsoft.KeyVault(VaultName=kv-x;SecretName=hmac-keys)"
    with pytest.raises(SettingsError) as raised:
        _start_up(monkeypatch, HMAC_KEYS=reference, HMAC_ACTIVE_KEY_ID="k1")
    assert "HMAC_KEYS" in str(raised.value)
    assert "Key Vault" in str(raised.value)


def test_a_bad_secret_value_is_never_in_the_start_up_message(monkeypatch):
    secret = "k1:" + "A" * 20 + "!!not-base64"
    settings = _start_up(monkeypatch, HMAC_KEYS=secret, HMAC_ACTIVE_KEY_ID="k1")
    with pytest.raises(SettingsError) as raised:
        KeyRingSource.from_settings(settings, ManualClock())
    assert secret not in str(raised.value) and "AAAAAAAAAAAAAAAAAAAA" not in str(raised.value)


def test_an_empty_app_setting_means_not_set(monkeypatch):
    settings = _start_up(monkeypatch, HMAC_KEYS="k1:" + new_key(), HMAC_ACTIVE_KEY_ID="k1", MAIL_CONNECTION_STRING="")
    assert settings.mail_connection_string is None
