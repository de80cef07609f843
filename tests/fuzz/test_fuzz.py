"""Every operation in /api/openapi.json, fuzzed through the local host: whatever is sent,
the answer is never a server error and always matches the document (the success or the
error envelope, with the declared content type), and data the document rules out is
refused with a 4xx. Every case carries valid credentials for the schemes its operation
declares (conftest.py), so it reaches the handler and not only the auth check.

Statuses are not checked against the document: it declares "2XX" and "default", so
status_code_conformance could not fail.

Three more passes send what the generators rarely reach: JSON nested 10,000 deep to every
operation that takes JSON (400 invalid_json), oversized and malformed X-Request-Id on
every operation, and every character Table Storage refuses in keys in every path
parameter (400 or 404): never a 5xx.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)

from .conftest import CASES, MAX_EXAMPLES, operation_credentials

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, negative_data_rejection]
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))

schema = schemathesis.pytest.from_fixture("fuzz_schema")

# Headers every endpoint reads though the document cannot declare them: the client's
# address (rate-limit keys, the audit's guest actor) and the request id (logs, audit).
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120).map(str.strip)


@schema.parametrize()
@SETTINGS
def test_the_api_answers_every_generated_request_within_its_document(case, fuzz_target):
    """The examples, coverage (boundaries, wrong types, missing and extra fields, other
    methods) and fuzzing phases."""
    CASES[case.operation.label] += 1
    case.call_and_validate(base_url=fuzz_target.host.url, checks=CHECKS, timeout=30)


@schema.parametrize()
@schema.given(forwarded_for=HEADER_TEXT, request_id=HEADER_TEXT)
@SETTINGS
def test_any_client_address_and_request_id_are_handled_on_every_operation(case, forwarded_for, request_id, fuzz_target):
    """The fuzzing phase again, with arbitrary X-Forwarded-For and X-Request-Id (the host
    takes the fuzzed address as the client's, see conftest.py)."""
    CASES[case.operation.label] += 1
    headers = {"x-forwarded-for": forwarded_for, "x-request-id": request_id}
    case.call_and_validate(base_url=fuzz_target.host.url, headers=headers, checks=CHECKS, timeout=30)


# --- junk the generators rarely reach: deep nesting, request ids, characters keys refuse -------

# Every character Table Storage refuses in keys under `make fuzz`; a sample of them in the
# small pass `make test` runs.
NOT_IN_KEYS = ["#", "/", "\\", "?", *map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0))]
if MAX_EXAMPLES < 100:
    NOT_IN_KEYS = ["#", "/", "\\", "?", "\x00", "\n", "\x1f", "\x7f", "\x9f"]
REQUEST_IDS = [
    "a" * 65,
    "a" * 15_000,  # near the header limit: answered, never a 5xx
    "a" * 20_000,  # past it: 431
    "spaces in it",
    "<script>alert(1)</script>",
    "semi;colon",
    "tab\there",
    "\u00e9t\u00e9",  # sent as Latin-1 bytes
    "-",
]
DEEP = ("[" * 10_000 + "]" * 10_000).encode()


def operations(target) -> list[tuple[str, str, dict]]:
    """(method, path template, operation) of every operation in the document but the document."""
    document = target.host.client.get("/api/openapi.json").json()
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if method in ("get", "post", "put", "patch", "delete") and path != "/api/openapi.json"
    ]


def send(target, method: str, template: str, operation: dict, *, values=None, headers=None, body=None):
    """One request to the operation, with valid credentials, path parameters filled in
    (`values` first, "x" for the rest) and a JSON (or raw) body."""
    path = template
    for name in re.findall(r"{(\w+)}", template):
        path = path.replace(f"{{{name}}}", (values or {}).get(name, "x"))
    content = operation.get("requestBody", {}).get("content", {})
    all_headers = {**operation_credentials(target, f"{method} {template}", operation), **(headers or {})}
    if body is None and "application/json" in content:
        body = b"{}"
    if "application/json" in content:
        all_headers["content-type"] = "application/json"
    elif content:
        all_headers["content-type"] = "application/octet-stream"
        body = body if body is not None else b"data"
    CASES[f"{method} {template}"] += 1
    return target.host.client.request(method, path, content=body, headers=all_headers, timeout=30)


def no_server_error(response, label: str) -> None:
    assert response.status_code < 500, (label, response.status_code, response.text[:300])
    if response.request.url.path.startswith("/api/"):
        assert response.headers["content-type"].startswith("application/json"), label
        assert "message" in response.json(), label


def test_json_nested_10000_deep_gets_a_4xx_from_every_operation_that_takes_json(fuzz_target):
    taking_json = [op for op in operations(fuzz_target) if "application/json" in op[2].get("requestBody", {}).get(
        "content", {})]  # fmt: skip
    assert taking_json
    for method, template, operation in taking_json:
        response = send(fuzz_target, method, template, operation, body=DEEP)
        no_server_error(response, f"{method} {template}")
        assert response.status_code == 400 and response.json()["error"] == "invalid_json", f"{method} {template}"


def test_oversized_and_malformed_request_ids_never_give_a_server_error(fuzz_target):
    for method, template, operation in operations(fuzz_target):
        for request_id in REQUEST_IDS:
            headers = {"x-request-id": request_id.encode("latin-1")}
            no_server_error(send(fuzz_target, method, template, operation, headers=headers), f"{method} {template}")


def test_every_character_table_keys_refuse_in_every_path_parameter_never_gives_a_server_error(fuzz_target):
    with_parameters = [op for op in operations(fuzz_target) if "{" in op[1]]
    assert with_parameters
    for method, template, operation in with_parameters:
        for name in re.findall(r"{(\w+)}", template):
            for char in NOT_IN_KEYS:
                value = quote(f"a{char}b", safe="")
                response = send(fuzz_target, method, template, operation, values={name: value})
                no_server_error(response, f"{method} {template} {name}=U+{ord(char):04X}")
                assert response.status_code in (400, 404), (method, template, name, hex(ord(char)))
