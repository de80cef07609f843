"""Every operation in /api/openapi.json, fuzzed through the local host: whatever is sent,
the answer is never a server error and always matches the document (the success or the
error envelope, with the declared content type), and data the document rules out is
refused with a 4xx. Authenticated operations get a live session (an admin's under
/api/admin), Basic operations a pending account's credentials, function-level ones the
function key, so the fuzz cases reach the handlers and not only the auth check.

Statuses are not checked against the document: it declares "2XX" and "default", so
status_code_conformance could not fail.
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
)

from .conftest import CASES, MAX_EXAMPLES, PASSWORD, FuzzTarget

pytestmark = pytest.mark.e2e

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, negative_data_rejection]

schema = schemathesis.pytest.from_fixture("fuzz_schema")


def credentials(target: FuzzTarget, case) -> dict[str, str]:
    """Headers for the schemes the operation declares."""
    schemes = {name for requirement in case.operation.definition.raw.get("security", []) for name in requirement}
    headers: dict[str, str] = {}
    if "bearer" in schemes:
        if case.operation.path.startswith("/api/admin/"):
            token = target.admin_token
        elif case.method.upper() == "DELETE" and case.operation.path == "/api/sessions/current":
            token = target.fresh_token()  # logging out ends the session it uses
        else:
            token = target.user_token
        headers["authorization"] = f"Bearer {token}"
    if "basic" in schemes:
        pair = f"{target.pending_email}:{PASSWORD}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode()
    if "functionKey" in schemes:
        headers["x-functions-key"] = target.host.function_key
    return headers


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_within_its_document(case, fuzz_target):
    CASES[case.operation.label] += 1
    case.call_and_validate(
        base_url=fuzz_target.host.url, headers=credentials(fuzz_target, case), checks=CHECKS, timeout=30
    )
