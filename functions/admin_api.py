"""Admin read-outs (role admin): the audit trail and the cleanup job's runs, and running
cleanup now. The admin console reads these."""

import azure.functions as func

from functions.http import Reply, api
from functions.schemas.admin import AuditQuery, JobsQuery
from shared.housekeeping.cleanup import JOB as CLEANUP_JOB

bp = func.Blueprint()


@bp.route(route="api/admin/audit", methods=["GET"])
@api(query=AuditQuery, role="admin")
def admin_audit(ctx) -> Reply:
    """Audit events by time range, type, outcome and user, oldest first, paged."""
    page = ctx.services.admin.audit_page(ctx.query)
    return Reply(f"{len(page['events'])} event(s).", page)


@bp.route(route="api/admin/jobs", methods=["GET"])
@api(query=JobsQuery, role="admin")
def admin_jobs(ctx) -> Reply:
    """The cleanup job's runs, newest first: start, end, counts, errors."""
    runs = ctx.services.admin.job_runs(CLEANUP_JOB, ctx.query)
    return Reply(f"{len(runs['runs'])} run(s).", runs)


@bp.route(route="api/admin/jobs/cleanup", methods=["POST"])
@api(role="admin")
def admin_run_cleanup(ctx) -> Reply:
    """Run cleanup now (it is safe to run while the timer runs it too)."""
    run = ctx.services.cleanup.run()
    return Reply("Cleanup ran.", run.public())
