"""What the app writes to the log when it runs as in Azure, where the Python worker sets
the root logger to INFO and everything at that level goes to Application Insights."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# What azure-core's HTTP logging policy writes for every request and response it sends.
SDK_REQUEST_LINES = ("Request URL:", "Request method:", "Response status:", "http_logging_policy")


def test_functions_that_use_storage_log_no_sdk_request_lines(host):
    """Health reads tables, blobs and the queue; registration writes a row and queues a
    mail. At INFO the Azure SDKs would log every one of those calls with its URL; the app
    keeps them at WARNING, so only the request lines remain."""
    start = len(host.logs())
    assert host.client.get("/api/health").status_code == 200
    registration = {"email": "logging-check@example.com", "password": "violet-Harbor-engine-42"}
    assert host.client.post("/api/users", json=registration).status_code in (201, 202)
    written = host.logs()[start:]
    assert "GET /api/health 200" in written
    for line in SDK_REQUEST_LINES:
        assert line not in written
