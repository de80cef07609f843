"""Rules of the HTTP edge that hold for every endpoint: security headers per environment,
and one rule for fields nobody declared (refused, in bodies and query strings alike)."""

from __future__ import annotations

import base64
import secrets

import pytest

from functions import http
from functions.openapi import openapi_document
from shared.config import Settings
from shared.services import Services


def services_in(environment: str) -> Services:
    settings = Settings(
        AzureWebJobsStorage="UseDevelopmentStorage=true",
        hmac_keys="k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        hmac_active_key_id="k1",
        app_environment=environment,
        dev_mailbox_enabled=False,
        mail_provider="acs",
    )
    return Services(settings)


@pytest.mark.parametrize("environment", ["dev", "test", "prod"])
def test_hsts_is_sent_outside_the_local_environment(monkeypatch, environment):
    monkeypatch.setattr(http, "services", lambda: services_in(environment))
    for html in (False, True):
        headers = http.security_headers(html=html)
        assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_is_not_sent_locally_where_pages_are_plain_http(monkeypatch):
    monkeypatch.setattr(http, "services", lambda: services_in("local"))
    assert "Strict-Transport-Security" not in http.security_headers()
    assert "Strict-Transport-Security" not in http.security_headers(html=True)


def test_only_html_answers_carry_a_content_security_policy(monkeypatch):
    monkeypatch.setattr(http, "services", lambda: services_in("prod"))
    assert "Content-Security-Policy" not in http.security_headers()
    policy = http.security_headers(html=True)["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy


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
