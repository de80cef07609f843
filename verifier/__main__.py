"""`python -m verifier enroll|check CODE|sync|status`: the offline verifier.

    python -m verifier enroll --service https://codes.example.com --verifier-id ID
        (the secret from the enrolment is read from VERIFIER_SECRET or standard input,
        never from the command line, where other users of the machine could see it)
    python -m verifier check 482913     exit 0 accepted, 1 refused, 2 not judged (wait, lease)
    python -m verifier sync             exit 0 synced, 3 the service could not be reached
    python -m verifier status

The state file is VERIFIER_STATE, or --state, or ./verifier-state.json.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path

from verifier.check import Reason, check
from verifier.state import State, StateFile
from verifier.sync import SyncFailed, sync

ACCEPTED, REFUSED, NOT_JUDGED, UNREACHABLE = 0, 1, 2, 3


def _secret() -> str:
    secret = os.environ.get("VERIFIER_SECRET")
    if secret:
        return secret.strip()
    if sys.stdin.isatty():
        return getpass.getpass("Verifier secret: ").strip()
    return sys.stdin.readline().strip()


def _say(**fields) -> None:
    print(json.dumps(fields))


def enroll(state_file: StateFile, args: argparse.Namespace) -> int:
    if urllib.parse.urlsplit(args.service).scheme not in ("http", "https"):
        _say(enrolled=False, message="The service URL must be http(s)://...")
        return NOT_JUDGED
    state = State(service_url=args.service, verifier_id=args.verifier_id, secret=_secret())
    try:
        sync(state)
    except SyncFailed as error:
        _say(enrolled=False, message=f"Not enrolled: {error}")
        return UNREACHABLE
    state_file.create(state)
    _say(enrolled=True, message="Enrolled; codes are checked offline from now on.")
    return 0


def check_code(state_file: StateFile, args: argparse.Namespace) -> int:
    with state_file.changing() as state:
        verdict = check(state, args.code, time.time())
    _say(accepted=verdict.accepted, reason=verdict.reason, message=verdict.message, waitSeconds=verdict.wait_seconds)
    if verdict.accepted:
        return ACCEPTED
    return NOT_JUDGED if verdict.reason in (Reason.WAIT, Reason.LEASE, Reason.NOT_ENROLLED) else REFUSED


def sync_now(state_file: StateFile, _args: argparse.Namespace) -> int:
    with state_file.changing() as state:
        try:
            sync(state)
        except SyncFailed as error:
            _say(synced=False, message=str(error), unsent=len(state.log), leaseSeconds=_lease_left(state))
            return UNREACHABLE
        _say(synced=True, message="Synced.", unsent=0, leaseSeconds=_lease_left(state), revoked=len(state.revoked))
    return 0


def status(state_file: StateFile, _args: argparse.Namespace) -> int:
    with state_file.changing() as state:
        _say(
            verifierId=state.verifier_id, leaseSeconds=_lease_left(state), unsent=len(state.log),
            revokedVerifier=state.revoked_verifier, clockOffsetSeconds=round(state.clock_offset, 1),
        )  # fmt: skip
    return 0


def _lease_left(state: State) -> int:
    return max(0, round(state.lease_until - time.time()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verifier", description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, default=Path(os.environ.get("VERIFIER_STATE", "verifier-state.json")))
    commands = parser.add_subparsers(dest="command", required=True)
    enrolling = commands.add_parser("enroll", help="enrol with the service (needs the network once)")
    enrolling.add_argument("--service", required=True, help="the service's base URL")
    enrolling.add_argument("--verifier-id", required=True)
    commands.add_parser("check", help="judge a typed code, offline").add_argument("code")
    commands.add_parser("sync", help="upload the log, fetch revocations, renew the lease")
    commands.add_parser("status", help="the lease left and the log not yet uploaded")
    args = parser.parse_args(argv)
    state_file = StateFile(args.state)
    if args.command != "enroll" and not state_file.exists():
        _say(message=f"No verifier state at {args.state}: enrol first.")
        return NOT_JUDGED
    commands_run = {"enroll": enroll, "check": check_code, "sync": sync_now, "status": status}
    return commands_run[args.command](state_file, args)


if __name__ == "__main__":
    sys.exit(main())
