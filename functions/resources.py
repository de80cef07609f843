"""Resources: PUT /api/resources/{name} uploads a file (raw body), GET /api/resources lists
the caller's files, POST /api/resources/{resourceId}/link gives one a new guest link."""

import azure.functions as func

from functions.http import Reply, api
from functions.schemas.codes import ResourceList, ResourceView, RotatedLinkView

bp = func.Blueprint()


@bp.route(route="api/resources/{name}", methods=["PUT"])
@api(auth=True, raw_body=True, response=ResourceView)
def put_resource(ctx) -> Reply:
    """Upload a file under a name (the body is the file; its Content-Type is kept).
    Uploading the same name again replaces the bytes and keeps the resource id."""
    req = ctx.request
    ctx.request_object = {"name": req.route_params.get("name"), "contentType": req.headers.get("content-type")}
    resource, created = ctx.services.resources.put(
        ctx.session.user_id, req.route_params.get("name", ""), req.get_body(), req.headers.get("content-type")
    )
    if created:
        return Reply("The file is stored.", resource.public(), status=201)
    return Reply("The file is replaced.", resource.public())


@bp.route(route="api/resources", methods=["GET"])
@api(auth=True, response=ResourceList)
def list_resources(ctx) -> Reply:
    """The caller's files, by name, each with the guessing its guest link is under."""
    svc = ctx.services
    resources = svc.resources.list_with_pressure(ctx.session.user_id, svc.codes, svc.pool)
    return Reply(f"{len(resources)} file(s).", {"resources": resources})


@bp.route(route="api/resources/{resourceId}/link", methods=["POST"])
@api(auth=True, response=RotatedLinkView)
def rotate_link(ctx) -> Reply:
    """Give a resource a new guest link (when the old one leaked): a new resource id; the
    old id redeems nothing any more and its codes are revoked; the file stays."""
    resource_id = ctx.request.route_params.get("resourceId", "")
    ctx.request_object = {"resourceId": resource_id}
    rotated = ctx.services.codes.rotate_link(ctx.session.user_id, resource_id, request_id=ctx.request_id)
    return Reply("The guest link is new; the old one no longer works.", rotated.public())
