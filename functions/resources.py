"""Resources: PUT /api/resources/{name} uploads a file (raw body), GET /api/resources lists
the caller's files."""

import azure.functions as func

from functions.http import Reply, api
from shared.codes.requests import ResourceList, ResourceView
from shared.services import services

bp = func.Blueprint()


@bp.route(route="api/resources/{name}", methods=["PUT"])
@api(auth=True, raw_body=True, response=ResourceView)
def put_resource(ctx) -> Reply:
    """Upload a file under a name (the body is the file; its Content-Type is kept).
    Uploading the same name again replaces the bytes and keeps the resource id."""
    req = ctx.request
    ctx.request_object = {"name": req.route_params.get("name"), "contentType": req.headers.get("content-type")}
    resource, created = services().resources.put(
        ctx.session.user_id, req.route_params.get("name", ""), req.get_body(), req.headers.get("content-type")
    )
    if created:
        return Reply("The file is stored.", resource.public(), status=201)
    return Reply("The file is replaced.", resource.public())


@bp.route(route="api/resources", methods=["GET"])
@api(auth=True, response=ResourceList)
def list_resources(ctx) -> Reply:
    """The caller's files, by name."""
    resources = services().resources.list(ctx.session.user_id)
    return Reply(f"{len(resources)} file(s).", {"resources": [r.public() for r in resources]})
