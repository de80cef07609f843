"""GET /api/dev/mailbox?to=<email>: the mail the app "sent", newest last.

Registered only where DEV_MAILBOX_ENABLED is set, which the settings allow only for the
local environment; elsewhere the route does not exist."""

import azure.functions as func

from functions.http import Reply, api
from shared.accounts.models import MailboxQuery, MailboxView
from shared.services import services

bp = func.Blueprint()


@bp.route(route="api/dev/mailbox", methods=["GET"])
@api(query=MailboxQuery, response=MailboxView)
def dev_mailbox(ctx) -> Reply:
    """Local only: the mail sent to an address, newest last."""
    messages = services().dev_mailbox.messages(ctx.query.to)
    return Reply(f"{len(messages)} message(s).", messages)
