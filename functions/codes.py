"""Access codes: issue, list and revoke (signed in), redeem (anonymous)."""

from datetime import timedelta

import azure.functions as func

from functions.http import Reply, api
from functions.schemas.codes import CodeList, CodeView, IssueCode, IssuedCodeView, RedeemCode, RedemptionView
from shared.verifiers.store import is_offline_code_id

bp = func.Blueprint()


@bp.route(route="api/codes", methods=["POST"])
@api(IssueCode, auth=True, response=IssuedCodeView)
def issue_code(ctx, body: IssueCode) -> Reply:
    """Issue a 6-digit code for one of the caller's resources. The code is shown only here."""
    svc = ctx.services
    if body.offline:
        offline = svc.verifiers.issue(
            ctx.session.user_id, body.resource_id, verifier_id=body.verifier_id, ttl_seconds=body.ttl_seconds,
            source=ctx.client_ip, request_id=ctx.request_id,
        )  # fmt: skip
        return Reply("The offline code is issued; it is shown only this once.", offline, status=201)
    ttl = None if body.ttl_seconds is None else timedelta(seconds=body.ttl_seconds)
    issued = svc.codes.issue(
        ctx.session.user_id, body.resource_id, ttl, source=ctx.client_ip, request_id=ctx.request_id
    )
    return Reply("The code is issued; it is shown only this once.", issued.public(), status=201)


@bp.route(route="api/codes", methods=["GET"])
@api(auth=True, response=CodeList)
def list_codes(ctx) -> Reply:
    """The caller's codes (online, then offline) and their state, never their values."""
    svc = ctx.services
    codes = svc.codes.list(ctx.session.user_id) + svc.verifiers.codes(ctx.session.user_id)
    return Reply(f"{len(codes)} code(s).", {"codes": codes})


@bp.route(route="api/codes/{codeId}", methods=["DELETE"])
@api(auth=True, response=CodeView)
def revoke_code(ctx) -> Reply:
    """Revoke one of the caller's codes."""
    code_id = ctx.request.route_params.get("codeId", "")
    svc = ctx.services
    revoking = svc.verifiers.revoke_code if is_offline_code_id(code_id) else svc.codes.revoke
    view = revoking(ctx.session.user_id, code_id, request_id=ctx.request_id)
    return Reply("The code is revoked.", view)


@bp.route(route="api/codes/redeem", methods=["POST"])
@api(RedeemCode, response=RedemptionView)
def redeem_code(ctx, body: RedeemCode) -> Reply:
    """Redeem a code for a resource (anonymous). Every failure gets the same answer."""
    svc = ctx.services
    redemption = svc.codes.redeem(body.resource_id, body.code, source=ctx.client_ip, request_id=ctx.request_id)
    return Reply("The code is accepted; download the file.", redemption.public())
