"""Every operation in /api/openapi.json, fuzzed through the local host: whatever is sent,
the answer is never a server error and always matches the document (the success or the
error envelope, with the declared content type), and data the document rules out is
refused with a 4xx. Every case carries valid credentials for the schemes its operation
declares (conftest.py), so it reaches the handler and not only the auth check.

Statuses are not checked against the document: it declares "2XX" and "default", so
status_code_conformance could not fail.
"""

from __future__ import annotations

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

from .conftest import CASES, MAX_EXAMPLES

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
