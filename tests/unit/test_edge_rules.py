"""Rules of the HTTP edge that hold for every endpoint: one rule for fields nobody declared
(refused, in bodies and query strings alike), and what junk input may never do (nest
without bound, become a table key, flood the audit). The security headers per environment
are checked on running hosts: tests/e2e/test_edge_hardening_e2e.py."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from functions import http
from functions.openapi import openapi_document
from shared import audit
from shared.audit import AuditEvent
from shared.config import Settings


def test_every_json_body_in_the_api_refuses_fields_it_does_not_declare():
    document = openapi_document()
    schemas = document["components"]["schemas"]
    bodies = [
        (f"{method.upper()} {path}", operation["requestBody"]["content"]["application/json"]["schema"]["$ref"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]
    assert bodies
    for operation, ref in bodies:
        assert schemas[ref.rsplit("/", 1)[1]].get("additionalProperties") is False, operation


# --- junk input: nesting, keys, request ids, the audit's caps, the environment's default -------


@pytest.mark.parametrize(("depth", "deeper"), [(1, False), (32, False), (33, True), (10_000, True)])
def test_nesting_is_measured_without_parsing(depth, deeper):
    assert http.nested_deeper_than(b'{"a": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}", 32) is deeper


def test_brackets_in_strings_and_escaped_quotes_are_not_nesting():
    text = json.dumps({"a": '[[[[{{{{"\\' * 100, "b": ["]]]", "[[["]}).encode()
    assert http.nested_deeper_than(text, 3) is False


def test_redaction_of_data_nested_past_the_cap_neither_recurses_far_nor_leaks_a_secret():
    deep: list = [{"password": "hunter2"}]
    for _ in range(100_000):
        deep = [deep]
    redacted = http.redact({"token": "t", "data": deep})
    assert redacted["token"] == http.REDACTED and "hunter2" not in json.dumps(redacted)
    depth, node = 0, redacted["data"]
    while isinstance(node, list):
        node, depth = node[0], depth + 1
    assert node == http.REDACTED and depth < http.MAX_JSON_DEPTH


@pytest.mark.parametrize("char", ["#", "/", "\\", "?", *map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0))])
def test_no_value_with_a_character_table_keys_refuse_is_usable_in_a_key(char):
    assert not http.usable_in_key(f"abc{char}def")


@pytest.mark.parametrize("value", ["Zk3_-Q9xVb2nM4pR7tY1wA", "a%2Fb", "ip:abc", "\u00e9t\u00e9", "x" * 512])
def test_ids_and_other_plain_values_are_usable_in_a_key(value):
    assert http.usable_in_key(value)


@pytest.mark.parametrize("value", ["", "x" * 513])
def test_empty_and_over_long_values_are_not_usable_in_a_key(value):
    assert not http.usable_in_key(value)


def test_every_text_in_an_audit_event_is_capped_and_free_of_control_characters():
    event = AuditEvent(
        time=datetime(2026, 11, 21, tzinfo=UTC),
        type="logout",
        outcome="ok",
        request_id="r" * 16_000,
        actor="a\r\nforged line",
        resource_id="x" * 5000,
        details={"note": "n" * 5000, "n" * 100: 1, **{f"k{i}": i for i in range(100)}},
    )
    line = event.model_dump_json()
    assert "\n" not in line and "\\n" not in line and "\\r" not in line
    assert len(event.request_id) == len(event.resource_id) == audit.MAX_TEXT
    assert len(event.details) == audit.MAX_DETAILS and len(event.details["note"]) == audit.MAX_TEXT
    assert max(len(name) for name in event.details) <= audit.MAX_DETAIL_NAME


def minimal_settings(**values) -> Settings:
    return Settings(
        _env_file=None,
        AzureWebJobsStorage="UseDevelopmentStorage=true",
        hmac_keys="k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        hmac_active_key_id="k1",
        **values,
    )


def test_without_app_environment_the_app_is_production(monkeypatch):
    monkeypatch.delenv("APP_ENVIRONMENT", raising=False)
    for name in ("DEV_MAILBOX_ENABLED", "MAIL_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    settings = minimal_settings()
    assert settings.app_environment == "prod" and not settings.is_local
    with pytest.raises(ValidationError):
        minimal_settings(dev_mailbox_enabled=True)


@pytest.mark.parametrize(
    "values",
    [{"app_environment": "local"}, {"app_environment": "local", "dev_mailbox_enabled": True},
     {"app_environment": "local", "mail_provider": "devmailbox"}],
)  # fmt: skip
def test_in_azure_neither_local_nor_the_dev_mailbox_is_accepted_whatever_the_settings_say(monkeypatch, values):
    monkeypatch.setenv("WEBSITE_SITE_NAME", "codes-prod-app")
    with pytest.raises(ValidationError) as refused:
        minimal_settings(**values)
    assert "WEBSITE_SITE_NAME" in str(refused.value)


def test_in_azure_a_deployed_environment_is_accepted(monkeypatch):
    monkeypatch.setenv("WEBSITE_SITE_NAME", "codes-prod-app")
    monkeypatch.delenv("DEV_MAILBOX_ENABLED", raising=False)  # the suite's own local settings
    assert minimal_settings(app_environment="test", mail_provider="acs").app_environment == "test"
