"""A leaked guest link, rotated against Azurite: the resource moves to a new id, the old id
redeems nothing and its codes are revoked, the file stays where it is."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from functions import console
from shared import errors
from shared.codes.models import CodeRejected, RejectReason
from shared.resources.store import RESOURCE_ID_PATTERN
from shared.services import services
from tests.browser.support import add_account

from .codes_support import add_resource, add_user, services_at_real_time
from .test_pages import request

GUEST = "198.51.100.7"


def rejection(svc, resource_id: str, code: str) -> RejectReason:
    """The guest's answer must be the generic one; the reason is for the audit."""
    with pytest.raises(CodeRejected) as caught:
        svc.codes.redeem(resource_id, code, source=GUEST)
    assert caught.value.code == "invalid_code" and caught.value.message == CodeRejected.message
    return caught.value.reason


def events(svc, *types: str) -> list:
    now = svc.clock.now()
    return svc.audit.read(now - timedelta(hours=1), now + timedelta(hours=1), types=set(types))


def download(svc, resource_id: str, code: str) -> httpx.Response:
    redemption = svc.codes.redeem(resource_id, code, source=GUEST)
    assert redemption.resource_id == resource_id
    return httpx.get(redemption.download_url)


def test_after_rotation_the_old_id_with_a_live_code_gets_the_generic_answer_and_its_codes_are_revoked(svc):
    owner = add_user(svc)
    old = add_resource(svc, owner).resource_id
    first = svc.codes.issue(owner, old)
    second = svc.codes.issue(owner, old)

    rotated = svc.codes.rotate_link(owner, old, request_id="rotate-1")

    assert rotated.resource_id != old and RESOURCE_ID_PATTERN.match(rotated.resource_id)
    assert rotated.public() == {"resourceId": rotated.resource_id, "redeemUrl": f"/r/{rotated.resource_id}"}
    assert rotated.revoked == 2
    assert rejection(svc, old, first.code) is RejectReason.REVOKED
    assert rejection(svc, old, second.display) is RejectReason.REVOKED
    states = {view["codeId"]: view["state"] for view in svc.codes.list(owner)}
    assert states == {first.code_id: "revoked", second.code_id: "revoked"}
    revokes = [event for event in events(svc, "revoke") if event.resource_id == old]
    assert sorted(event.code_id for event in revokes) == sorted([first.code_id, second.code_id])
    assert {event.request_id for event in revokes} == {"rotate-1"}
    [rotation] = [event for event in events(svc, "link_rotate") if event.resource_id == old]
    assert (rotation.outcome, rotation.actor) == ("ok", owner)
    assert rotation.details == {"newResourceId": rotated.resource_id, "revokedCodes": 2}


def test_the_old_id_is_gone_like_an_unknown_id_for_issuing_the_guest_page_and_a_second_rotation(svc):
    owner = add_user(svc)
    old = add_resource(svc, owner).resource_id
    svc.codes.rotate_link(owner, old)
    assert svc.resources.get(old) is None
    assert svc.guest.shared_resource(old) is None
    with pytest.raises(errors.NotFound) as issuing:
        svc.codes.issue(owner, old)
    with pytest.raises(errors.NotFound) as rotating:
        svc.codes.rotate_link(owner, old)
    with pytest.raises(errors.NotFound) as unknown:
        svc.codes.rotate_link(owner, "A" * 22)
    assert issuing.value.code == rotating.value.code == unknown.value.code == "resource_not_found"


def test_the_new_id_works_with_a_newly_issued_code_and_downloads_the_same_bytes(settings):
    svc = services_at_real_time(settings)
    owner = add_user(svc)
    resource, _ = svc.resources.put(owner, "plan.pdf", b"%PDF the same bytes", "application/pdf")
    old_code = svc.codes.issue(owner, resource.resource_id)

    new_id = svc.codes.rotate_link(owner, resource.resource_id).resource_id

    assert rejection(svc, new_id, old_code.code) is RejectReason.UNKNOWN  # the old id's code stays dead
    fresh = svc.codes.issue(owner, new_id)
    assert fresh.redeem_url == f"/r/{new_id}"
    response = download(svc, new_id, fresh.code)
    assert response.status_code == 200 and response.content == b"%PDF the same bytes"
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="plan.pdf"' in response.headers["content-disposition"]
    [listed] = svc.resources.list(owner)
    assert (listed.resource_id, listed.name, listed.size, listed.content_type) == (
        new_id,
        "plan.pdf",
        len(b"%PDF the same bytes"),
        "application/pdf",
    )
    assert listed.created_at == resource.created_at
    assert svc.guest.shared_resource(new_id).name == "plan.pdf"


def test_another_user_cannot_rotate_a_resource_and_it_stays_as_it_was(svc):
    owner, stranger = add_user(svc), add_user(svc)
    resource_id = add_resource(svc, owner).resource_id
    issued = svc.codes.issue(owner, resource_id)
    with pytest.raises(errors.NotFound) as refused:
        svc.codes.rotate_link(stranger, resource_id)
    assert refused.value.code == "resource_not_found"
    assert svc.resources.owned(owner, resource_id).resource_id == resource_id
    assert svc.codes.redeem(resource_id, issued.code, source=GUEST).resource_id == resource_id
    assert not [event for event in events(svc, "link_rotate") if event.resource_id == resource_id]


def test_a_second_put_of_the_same_name_after_rotation_keeps_the_new_id_and_serves_the_new_bytes(settings):
    svc = services_at_real_time(settings)
    owner = add_user(svc)
    old = add_resource(svc, owner, data=b"version one", name="notes.txt").resource_id
    new_id = svc.codes.rotate_link(owner, old).resource_id

    replaced, created = svc.resources.put(owner, "notes.txt", b"version two, longer", "text/markdown")

    assert (replaced.resource_id, created) == (new_id, False)
    assert svc.resources.get(old) is None  # the old id's row stays retired
    [listed] = svc.resources.list(owner)
    assert (listed.resource_id, listed.size, listed.content_type) == (new_id, 19, "text/markdown")
    response = download(svc, new_id, svc.codes.issue(owner, new_id).code)
    assert response.status_code == 200 and response.content == b"version two, longer"
    assert response.headers["content-type"] == "text/markdown"


def test_puts_of_one_name_racing_a_rotation_leave_one_live_id_serving_one_of_the_versions(settings):
    svc = services_at_real_time(settings)
    owner = add_user(svc)
    old = add_resource(svc, owner, data=b"first", name="race.txt").resource_id
    versions = [f"version {n}".encode() * (n + 1) for n in range(4)]

    def attempt(work):
        """What the caller gets: the result, or the 409 that asks to try again after
        losing every conditional write to the racers."""
        try:
            return work()
        except errors.Conflict as busy:
            assert busy.code == "resource_busy"
            return busy

    with ThreadPoolExecutor(5) as pool:
        rotation = pool.submit(attempt, lambda: svc.codes.rotate_link(owner, old))
        puts = list(pool.map(lambda data: attempt(lambda: svc.resources.put(owner, "race.txt", data, "text/plain")),
                             versions))  # fmt: skip

    stored = [put for put in puts if not isinstance(put, errors.Conflict)]
    assert stored and all(not created for _, created in stored)
    rotated = rotation.result()
    if isinstance(rotated, errors.Conflict):  # the owner tries again, and it finishes
        rotated = svc.codes.rotate_link(owner, old)
    assert svc.resources.get(old) is None
    [listed] = svc.resources.list(owner)
    assert listed.resource_id == rotated.resource_id
    response = download(svc, listed.resource_id, svc.codes.issue(owner, listed.resource_id).code)
    assert response.status_code == 200 and response.content in versions


def test_a_rotation_cut_short_after_the_old_row_was_retired_is_finished_by_a_retry(svc):
    owner = add_user(svc)
    old = add_resource(svc, owner).resource_id
    issued = svc.codes.issue(owner, old)
    retired = svc.resources._retire(owner, old)  # what a process that died right after this step left
    assert svc.resources.get(old) is None and svc.resources.list(owner)[0].resource_id == old

    rotated = svc.codes.rotate_link(owner, old)

    assert rotated.resource_id == retired["successor"]
    assert svc.resources.list(owner)[0].resource_id == rotated.resource_id
    assert rejection(svc, old, issued.code) is RejectReason.REVOKED


def test_the_owners_listing_shows_the_guessing_each_guest_link_is_under(svc):
    owner = add_user(svc)
    attacked = add_resource(svc, owner, name="attacked.txt").resource_id
    quiet = add_resource(svc, owner, name="quiet.txt").resource_id
    issued = svc.codes.issue(owner, attacked)
    wrong = f"{(int(issued.code) + 1) % 1_000_000:06d}"
    for _ in range(3):
        rejection(svc, attacked, wrong)

    listed = {item["resourceId"]: item for item in svc.resources.list_with_pressure(owner, svc.codes, svc.pool)}

    assert listed[attacked]["redemption"] == {"failedAttempts": 3, "paused": False, "pausedUntil": None}
    assert listed[quiet]["redemption"] == {"failedAttempts": 0, "paused": False, "pausedUntil": None}
    assert listed[attacked]["name"] == "attacked.txt"


def test_a_resource_whose_redemption_budget_is_spent_shows_as_paused_until_the_window_ends(make_services):
    svc = make_services(limit_redeem_attempts_per_resource="3/5m")
    owner = add_user(svc)
    attacked = add_resource(svc, owner).resource_id
    for address in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(attacked, "000000", source=address)

    [listed] = svc.resources.list_with_pressure(owner, svc.codes, svc.pool)

    pressure = listed["redemption"]
    assert (pressure["failedAttempts"], pressure["paused"]) == (3, True)
    assert svc.clock.now() < pressure["pausedUntil"] <= svc.clock.now() + timedelta(minutes=5)


def test_the_console_shows_a_users_resources_with_the_guessing_on_each(settings):
    svc = services()  # the console's own services
    admin, owner = add_account(svc, "admin"), add_account(svc, "user")
    attacked = add_resource(svc, owner.user_id, name="attacked.txt").resource_id
    for _ in range(2):
        with pytest.raises(CodeRejected):
            svc.codes.redeem(attacked, "000000", source=GUEST)
    cookies = {"console_session": svc.accounts.login(admin.email, admin.password).token}

    page = console.console_users(request("GET", f"/admin/users?q={owner.user_id}", cookies=cookies))

    assert page.status_code == 200
    html = page.get_body().decode()
    row = re.search(r"<tr>\s*<td>attacked.txt</td>.*?</tr>", html, re.S).group(0)
    assert attacked in row and "<td>2</td>" in row and "open" in row
