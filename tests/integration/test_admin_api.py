"""The admin read-outs through the HTTP functions: role admin only, audit filtered and
paged, cleanup runs listed newest first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest

from functions.admin_api import admin_audit, admin_jobs
from shared.audit import AuditEvent
from shared.services import services


def call(handler, token: str, params: dict[str, str]):
    request = func.HttpRequest(
        "GET", "http://localhost/api/admin/x", params=params, headers={"authorization": f"Bearer {token}"}, body=b""
    )
    response = handler(request)
    return response.status_code, json.loads(response.get_body())


@pytest.fixture
def admin_token(settings) -> str:
    return services().sessions.create("admin-for-tests", "admin")[0]


def test_the_audit_read_out_is_for_admins_only(settings):
    token = services().sessions.create("someone", "user")[0]
    status, body = call(admin_audit, token, {})
    assert status == 403 and body["error"] == "forbidden"


def test_the_audit_read_out_filters_by_time_type_outcome_and_user_and_pages(admin_token):
    start = datetime(2033, 3, 3, 10, 0, tzinfo=UTC)
    audit = services().audit
    for minute in range(5):
        audit.write(AuditEvent(time=start + timedelta(minutes=minute), type="redeem", outcome="fail", actor="ip:x"))
    audit.write(AuditEvent(time=start, type="issue", outcome="ok", actor="u-1"))
    window = {"from": start.isoformat(), "to": (start + timedelta(hours=1)).isoformat()}

    status, body = call(admin_audit, admin_token, {**window, "type": "redeem", "outcome": "fail", "limit": "3"})
    assert status == 200, body
    assert len(body["data"]["events"]) == 3 and body["data"]["nextCursor"] == 3
    status, body = call(admin_audit, admin_token, {**window, "type": "redeem", "limit": "3", "cursor": "3"})
    assert len(body["data"]["events"]) == 2 and body["data"]["nextCursor"] is None
    status, body = call(admin_audit, admin_token, {**window, "user": "u-1"})
    assert [event["type"] for event in body["data"]["events"]] == ["issue"]
    status, body = call(admin_audit, admin_token, {**window, "bogus": "1"})
    assert status == 400


def test_the_jobs_read_out_lists_cleanup_runs_newest_first(admin_token):
    jobs = services().jobs
    older = jobs.finish(jobs.start("cleanup"))
    newer = jobs.finish(jobs.start("cleanup"))
    # other tests' runs share the table, some dated later: look at the whole read-out
    status, body = call(admin_jobs, admin_token, {"limit": "500"})
    assert status == 200, body
    runs = body["data"]["runs"]
    started = [run["startedAt"] for run in runs]
    assert started == sorted(started, reverse=True)
    ids = [run["runId"] for run in runs]
    assert ids.index(newer.run_id) < ids.index(older.run_id)
    assert len(call(admin_jobs, admin_token, {"limit": "2"})[1]["data"]["runs"]) == 2


@pytest.mark.parametrize("bound", ["to", "from"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_an_audit_time_at_the_ends_of_the_calendar_is_a_400_not_a_server_error(admin_token, bound, moment):
    status, body = call(admin_audit, admin_token, {bound: moment})
    assert status == 400 and body["error"] == "invalid_input"
