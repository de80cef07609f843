"""Offline verifiers: enrol, list and revoke (signed in, the resource's owner); a
verifier's sync (HTTP Basic with its id and secret)."""

import re

import azure.functions as func

from functions.http import Reply, api, basic_credentials
from functions.schemas.verifiers import (
    VERIFIER_ID_PATTERN,
    EnrolledVerifierView,
    EnrolVerifier,
    SyncLog,
    SyncView,
    VerifierList,
    VerifierView,
)
from shared import errors

bp = func.Blueprint()


@bp.route(route="api/resources/{resourceId}/verifiers", methods=["POST"])
@api(EnrolVerifier, auth=True, response=EnrolledVerifierView)
def enrol_verifier(ctx, body: EnrolVerifier) -> Reply:
    """Enrol an offline verifier for one of the caller's resources. The secret is shown only here."""
    enrolled = ctx.services.verifiers.enrol(
        ctx.session.user_id,
        ctx.request.route_params.get("resourceId", ""),
        label=body.label,
        lifetime_seconds=body.code_lifetime_seconds,
        codes_per_slot=body.codes_per_slot,
        lease_hours=body.lease_hours,
        request_id=ctx.request_id,
    )
    return Reply("The verifier is enrolled; its secret is shown only this once.", enrolled, status=201)


@bp.route(route="api/resources/{resourceId}/verifiers", methods=["GET"])
@api(auth=True, response=VerifierList)
def list_verifiers(ctx) -> Reply:
    """The verifiers of one of the caller's resources."""
    verifiers = ctx.services.verifiers.list(ctx.session.user_id, ctx.request.route_params.get("resourceId", ""))
    return Reply(f"{len(verifiers)} verifier(s).", {"verifiers": verifiers})


@bp.route(route="api/resources/{resourceId}/verifiers/{verifierId}", methods=["DELETE"])
@api(auth=True, response=VerifierView)
def revoke_verifier(ctx) -> Reply:
    """Revoke a verifier: its next sync is refused, and it refuses codes once its lease ends."""
    params = ctx.request.route_params
    revoked = ctx.services.verifiers.revoke(
        ctx.session.user_id, params.get("resourceId", ""), params.get("verifierId", ""), request_id=ctx.request_id
    )
    return Reply("The verifier is revoked.", revoked)


@bp.route(route="api/verifiers/{verifierId}/sync", methods=["POST"])
@api(SyncLog, basic_auth=True, response=SyncView)
def sync_verifier(ctx, body: SyncLog) -> Reply:
    """A verifier uploads its log of checks and takes back revocations, the time and a new lease."""
    verifier_id = ctx.request.route_params.get("verifierId", "")
    if not re.fullmatch(VERIFIER_ID_PATTERN, verifier_id):
        raise errors.NotFound("No verifier has this id.", code="verifier_not_found")
    entries = [entry.model_dump(by_alias=True, exclude_none=True) for entry in body.entries]
    synced = ctx.services.verifiers.sync(
        verifier_id,
        basic_credentials(ctx.request),
        entries,
        request_id=ctx.request_id,
    )
    return Reply(f"Synced; {len(entries)} log entries recorded.", synced)
