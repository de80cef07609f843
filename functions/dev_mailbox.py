"""GET /api/dev/mailbox?to=<email>: the mail the app "sent", newest last.

Registered only where DEV_MAILBOX_ENABLED is set, which the settings allow only for the
local environment and never in Azure (WEBSITE_SITE_NAME set); even if it were registered
there, it answers 404 in Azure."""

import os

import azure.functions as func

from functions.http import Reply, api
from functions.schemas.accounts import MailboxQuery, MailboxView
from shared import errors

bp = func.Blueprint()


@bp.route(route="api/dev/mailbox", methods=["GET"])
@api(query=MailboxQuery, response=MailboxView)
def dev_mailbox(ctx) -> Reply:
    """Local only: the mail sent to an address, newest last."""
    if os.environ.get("WEBSITE_SITE_NAME") or not ctx.services.settings.is_local:
        raise errors.NotFound("Nothing is served at this address.")
    messages = ctx.services.dev_mailbox.messages(ctx.query.to)
    return Reply(f"{len(messages)} message(s).", messages)
