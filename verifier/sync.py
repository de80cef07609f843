"""Talking to the service, when it can be reached: `POST /api/verifiers/{id}/sync`.

One sync uploads the log of checks (in chunks; the service records each entry once, by
its id, so a chunk sent twice after a lost answer adds nothing), and takes back the
scheme, the revoked offline codes still alive, the service's time (the clock correction)
and a new lease, counted on the verifier's own clock from the moment of the answer.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from datetime import datetime

from verifier.state import State

CHUNK = 100  # log entries per request
TIMEOUT_SECONDS = 10


class SyncFailed(Exception):
    """The service could not be reached or refused the sync; the message says which."""


class VerifierRefused(SyncFailed):
    """The service no longer knows this verifier (revoked, or its key was rotated)."""


def sync(state: State) -> dict:
    """Upload the log and refresh what the service decides; returns the last answer's data."""
    data = _post(state, [])
    while state.log:
        chunk = state.log[:CHUNK]
        data = _post(state, chunk)
        recorded = set(data["recorded"])
        state.log = [entry for entry in state.log if entry["entryId"] not in recorded]
        if not recorded.intersection(entry["entryId"] for entry in chunk):
            raise SyncFailed("The service recorded none of the log entries sent.")
    return data


def _post(state: State, entries: list[dict]) -> dict:
    credentials = base64.b64encode(f"{state.verifier_id}:{state.secret}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 - the enrolled URL, http(s) only (checked at enrolment)
        f"{state.service_url.rstrip('/')}/api/verifiers/{state.verifier_id}/sync",
        data=json.dumps({"entries": entries}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {credentials}"},
        method="POST",
    )
    sent = time.time()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - as above
            body = json.load(response)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            state.revoked_verifier = True
            raise VerifierRefused(f"The service refused this verifier ({error.code}): enrol it again.") from None
        raise SyncFailed(f"The service answered {error.code}.") from None
    except (OSError, ValueError) as error:
        raise SyncFailed(f"The service could not be reached: {type(error).__name__}.") from None
    received = time.time()
    data = body["data"]
    # the service's time is taken half-way through the round trip
    state.clock_offset = datetime.fromisoformat(data["serverTime"]).timestamp() - (sent + received) / 2
    state.lease_until = received + data["leaseSeconds"]
    state.scheme = data["scheme"]
    state.revoked_verifier = False
    for revoked in data["revoked"]:
        state.revoked[f"{revoked['slot']}:{revoked['index']}"] = revoked["forgetAfter"]
    return data
