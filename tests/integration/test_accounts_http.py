"""The accounts endpoints at the HTTP edge: statuses, the envelope, redaction."""

from __future__ import annotations

import base64
import json
import secrets

import azure.functions as func

from functions.accounts import activate, register
from functions.sessions import introspect, login

STRONG = "violet-Harbor-engine-42"


def call(handler, body: dict | None = None, headers: dict | None = None, method: str = "POST"):
    ip = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    request = func.HttpRequest(
        method,
        "http://localhost/api/x",
        body=json.dumps(body).encode() if body is not None else b"",
        headers={"content-type": "application/json", "x-forwarded-for": ip, **(headers or {})},
    )
    response = handler(request)
    return response.status_code, json.loads(response.get_body())


def test_registering_a_taken_address_answers_exactly_like_a_new_one(settings):
    address = f"http.{secrets.token_hex(4)}@example.com"
    first = call(register, {"email": address, "password": STRONG})
    again = call(register, {"email": address.upper(), "password": STRONG})
    assert first[0] == again[0] == 202
    assert first[1]["message"] == again[1]["message"]
    assert set(first[1]["data"]) == set(again[1]["data"])


def test_password_fields_are_redacted_in_the_request_object(settings):
    status, body = call(register, {"email": f"r.{secrets.token_hex(4)}@example.com", "password": STRONG})
    assert status == 202
    assert body["requestObject"]["password"] == "***"
    assert STRONG not in json.dumps(body)


def test_a_refused_password_answers_400_with_the_reasons(settings):
    status, body = call(register, {"email": f"w.{secrets.token_hex(4)}@example.com", "password": "password1"})
    assert status == 400
    assert body["error"] == "password_rejected"
    assert "too_common" in body["details"]["problems"]
    assert body["requestObject"]["password"] == "***"


def test_an_unknown_field_is_a_clear_400(settings):
    status, body = call(register, {"email": "a@example.com", "password": STRONG, "role": "admin"})
    assert status == 400
    assert body["error"] == "invalid_input"
    assert body["details"][0]["field"] == "role"


def test_unknown_email_and_wrong_password_get_the_same_status_and_body(settings):
    address = f"l.{secrets.token_hex(4)}@example.com"
    call(register, {"email": address, "password": STRONG})
    unknown = call(login, {"email": f"nobody.{secrets.token_hex(4)}@example.com", "password": STRONG})
    wrong = call(login, {"email": address, "password": STRONG + "x"})
    assert unknown[0] == wrong[0] == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "requestObject"}  # noqa: E731
    assert strip(unknown[1]) == strip(wrong[1])


def test_activation_without_basic_credentials_is_401(settings):
    status, body = call(activate, {"code": "1234"})
    assert status == 401
    assert body["requestObject"]["code"] == "***"


def test_activation_with_wrong_basic_credentials_is_401(settings):
    basic = base64.b64encode(f"nobody.{secrets.token_hex(4)}@example.com:{STRONG}".encode()).decode()
    status, body = call(activate, {"code": "1234"}, headers={"authorization": f"Basic {basic}"})
    assert status == 401
    assert body["error"] == "invalid_credentials"


def test_introspecting_an_unknown_token_says_inactive_and_redacts_it(settings):
    status, body = call(introspect, {"token": secrets.token_urlsafe(32)})
    assert status == 200
    assert body["data"] == {"active": False}
    assert body["requestObject"]["token"] == "***"
