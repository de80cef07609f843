"""Bans at the edge: the operator's list and lift (role admin). The cleanup timer
publishes them to the Front Door WAF (functions/cleanup.py)."""

import azure.functions as func

from functions.http import Reply, api
from functions.schemas.admin import BanList, LiftBan

bp = func.Blueprint()


@bp.route(route="api/admin/bans", methods=["GET"])
@api(role="admin", response=BanList)
def admin_bans(ctx) -> Reply:
    """Sources banned now, the worst offenders first."""
    bans = [ban.view() for ban in ctx.services.bans.active()]
    return Reply(f"{len(bans)} active ban(s).", {"bans": bans})


@bp.route(route="api/admin/bans/lift", methods=["POST"])
@api(LiftBan, role="admin")
def admin_lift_ban(ctx, body: LiftBan) -> Reply:
    """End a source's ban now (the edge follows at its next refresh)."""
    lifted = ctx.services.bans.lift(body.source, actor=ctx.session.user_id, request_id=ctx.request_id)
    return Reply("The ban is lifted.", lifted)
