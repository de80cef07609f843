"""GET /api/health: is storage answering?"""

import azure.functions as func

from functions.http import Reply, api
from shared import errors

bp = func.Blueprint()


@bp.route(route="api/health", methods=["GET"])
@api()
def health(ctx) -> Reply:
    checks = ctx.services.storage.check()
    if not all(checks.values()):
        raise errors.StorageUnavailable(details={"storage": checks})
    return Reply("Storage is reachable.", data={"status": "ok", "storage": checks})
