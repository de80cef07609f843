"""The cleanup timer: deletes what expired (schedule from the CLEANUP_SCHEDULE setting),
then, behind Front Door (BAN_WAF_POLICY_ID set), publishes the active bans to its WAF.
Bans ride on this timer rather than one of their own: each timer is a scale group of its
own, and in a zone-redundant prod every group keeps two always-ready instances billed
around the clock (docs/deployment.md); a WAF change takes minutes to reach every edge
anyway."""

import logging

import azure.functions as func

from shared.services import services

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="%CLEANUP_SCHEDULE%", run_on_startup=False)
def cleanup(timer: func.TimerRequest) -> None:
    svc = services()
    run = svc.cleanup.run()
    log.info("cleanup %s: %s run=%s errors=%d", run.status, run.counts, run.run_id, len(run.errors))
    if svc.settings.ban_waf_policy_id:
        log.info("bans published: %s", svc.ban_publisher.publish(svc.bans.active()))
