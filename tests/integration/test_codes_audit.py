"""The audit of codes: one line per event, and no code value anywhere in the blobs."""

from __future__ import annotations

import re
from contextlib import suppress
from datetime import UTC, datetime, timedelta

import pytest

from shared.audit import guest_actor
from shared.clock import ManualClock
from shared.codes.models import CodeRejected
from shared.services import Services
from shared.storage import AUDIT_CONTAINER

from .codes_support import add_resource, add_user, all_audit_text, fresh_cursor  # noqa: F401 - a fixture


@pytest.mark.usefixtures("fresh_cursor")
def test_every_code_event_is_one_audit_line_and_no_blob_holds_a_code_value(settings):
    start = datetime(2032, 1, 1, 12, 0, tzinfo=UTC)
    # cleanup's first run looks back an hour (the unused code expired 19 minutes before it), not a day
    update = {"instance_id": "audit-codes", "cleanup_lookback_hours": 1}
    svc = Services(settings.model_copy(update=update), clock=ManualClock(start))
    owner = add_user(svc)
    resource = add_resource(svc, owner)
    other = add_resource(svc, owner, name="other.txt")
    redeemed = svc.codes.issue(owner, resource.resource_id)
    revoked = svc.codes.issue(owner, resource.resource_id)
    unused = svc.codes.issue(owner, resource.resource_id, timedelta(seconds=60))
    svc.codes.redeem(resource.resource_id, redeemed.code, source="203.0.113.1", request_id="req-1")
    for resource_id, code in ((resource.resource_id, redeemed.code), (other.resource_id, unused.code)):
        with suppress(CodeRejected):
            svc.codes.redeem(resource_id, code, source="203.0.113.2")
    svc.codes.revoke(owner, revoked.code_id)
    svc.clock.advance(minutes=20)
    svc.cleanup.run()

    prefix = start.strftime("%Y/%m/%d/%H/")
    container = svc.storage.container(AUDIT_CONTAINER)
    lines = [
        line
        for item in container.list_blobs(name_starts_with=prefix)
        if "/audit-codes-" in item.name
        for line in container.download_blob(item.name).readall().decode().splitlines()
    ]
    events = svc.audit.read(start, start + timedelta(hours=1))
    ours = {redeemed.code_id, revoked.code_id, unused.code_id}
    # a code typed at another resource names no code: it is that resource's unknown code
    mine = [event for event in events if event.code_id in ours or event.resource_id == other.resource_id]
    assert len(lines) == len(mine) == 8
    assert sorted((event.type, event.outcome, event.reason or "") for event in mine) == [
        ("expire", "ok", "unused"),
        ("issue", "ok", ""),
        ("issue", "ok", ""),
        ("issue", "ok", ""),
        ("redeem", "fail", "unknown"),
        ("redeem", "fail", "used"),
        ("redeem", "ok", ""),
        ("revoke", "ok", ""),
    ]
    ok = next(event for event in mine if event.type == "redeem" and event.outcome == "ok")
    # the guest appears as a keyed hash of their address, never the address
    assert ok.actor == guest_actor(svc.keys, "203.0.113.1") and "203.0.113.1" not in "\n".join(lines)
    assert (ok.user_id, ok.resource_id, ok.request_id) == (owner, resource.resource_id, "req-1")

    everything = all_audit_text(svc, prefix=start.strftime("%Y/%m/%d/"))  # every writer's blobs of that day
    for issued in (redeemed, revoked, unused):
        assert not re.search(rf"(?<![0-9A-Za-z]){issued.code}(?![0-9A-Za-z])", everything)
        assert issued.display not in everything
