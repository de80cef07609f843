"""The mail outbox's queue trigger: hands each mail to the provider (see shared.mail.delivery)."""

import azure.functions as func

from shared.services import services
from shared.storage import MAIL_QUEUE

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=MAIL_QUEUE, connection="AzureWebJobsStorage")
def send_mail(msg: func.QueueMessage) -> None:
    services().mail.deliver(msg.get_body().decode("utf-8"))
