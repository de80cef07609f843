"""The cleanup timer: deletes what expired (schedule from the CLEANUP_SCHEDULE setting)."""

import logging

import azure.functions as func

from shared.services import services

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="%CLEANUP_SCHEDULE%", run_on_startup=False)
def cleanup(timer: func.TimerRequest) -> None:
    run = services().cleanup.run()
    log.info("cleanup %s: %s run=%s errors=%d", run.status, run.counts, run.run_id, len(run.errors))
