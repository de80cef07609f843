"""Job-run records and job cursors, in the `jobs` table, for the admin console.

- A run: PartitionKey "run:<job>", RowKey = inverted start time + run id, so a query of
  the partition returns the newest runs first. Written when the run starts (status
  "running") and merged when it ends (end, status, counts, errors).
- A cursor: PartitionKey "cursor", RowKey = the job, holding how far the job got. It only
  ever moves forward (ETag-conditional), so two instances running at once never move it
  back.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.clock import Clock
from shared.optimistic import retry_lost_races

_INVERT_FROM = 10**14  # milliseconds: good past the year 5000
MAX_ERRORS_KEPT = 20
CURSOR_WRITE_TRIES = 10


@dataclass
class JobRun:
    job: str
    run_id: str
    row_key: str
    started_at: datetime
    instance: str
    ended_at: datetime | None = None
    status: str = "running"  # running, ok, failed
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    details: dict[str, str | int | None] = field(default_factory=dict)

    def public(self) -> dict:
        return {
            "job": self.job,
            "runId": self.run_id,
            "instance": self.instance,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "status": self.status,
            "counts": self.counts,
            "errors": self.errors,
            **self.details,
        }


def _run_from(entity) -> JobRun:
    return JobRun(
        job=entity["job"],
        run_id=entity["runId"],
        row_key=entity["RowKey"],
        started_at=entity["startedAt"],
        instance=entity.get("instance", ""),
        ended_at=entity.get("endedAt"),
        status=entity.get("status", "running"),
        counts=json.loads(entity.get("counts") or "{}"),
        errors=json.loads(entity.get("errors") or "[]"),
        details=json.loads(entity.get("details") or "{}"),
    )


class JobStore:
    def __init__(self, table: TableClient, clock: Clock, instance_id: str):
        self._table = table
        self._clock = clock
        self._instance_id = instance_id

    def start(self, job: str) -> JobRun:
        now = self._clock.now()
        run_id = secrets.token_hex(6)
        inverted = _INVERT_FROM - int(now.timestamp() * 1000)
        run = JobRun(job, run_id, f"{inverted:015d}-{run_id}", now, self._instance_id)
        self._table.create_entity(self._entity(run))
        return run

    def finish(self, run: JobRun) -> JobRun:
        run.ended_at = self._clock.now()
        run.errors = run.errors[:MAX_ERRORS_KEPT]
        if run.status == "running":
            run.status = "failed" if run.errors else "ok"
        self._table.upsert_entity(self._entity(run), mode=UpdateMode.REPLACE)
        return run

    def _entity(self, run: JobRun) -> dict:
        entity = {
            "PartitionKey": f"run:{run.job}",
            "RowKey": run.row_key,
            "job": run.job,
            "runId": run.run_id,
            "instance": run.instance,
            "startedAt": run.started_at,
            "status": run.status,
            "counts": json.dumps(run.counts),
            "errors": json.dumps(run.errors),
            "details": json.dumps(run.details, default=str),
        }
        if run.ended_at is not None:
            entity["endedAt"] = run.ended_at
        return entity

    def recent(self, job: str, limit: int = 50) -> list[JobRun]:
        """The newest runs first: the first rows of the job's partition."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk", parameters={"pk": f"run:{job}"}, results_per_page=min(limit, 1000)
        )
        runs: list[JobRun] = []
        for row in rows:
            runs.append(_run_from(row))
            if len(runs) >= limit:
                break
        return runs

    # --- cursors -----------------------------------------------------------------------

    def cursor(self, job: str) -> str | None:
        try:
            return self._table.get_entity("cursor", job)["position"]
        except ResourceNotFoundError:
            return None

    def advance_cursor(self, job: str, position: str) -> None:
        """Move the cursor forward to `position` (sortable strings); never backwards."""

        def attempt() -> None:
            try:
                current = self._table.get_entity("cursor", job)
            except ResourceNotFoundError:
                self._table.create_entity({"PartitionKey": "cursor", "RowKey": job, "position": position})
                return
            if current["position"] < position:
                self._table.update_entity(
                    {"PartitionKey": "cursor", "RowKey": job, "position": position},
                    mode=UpdateMode.MERGE,
                    etag=current.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )

        # a cursor that other runs keep moving is left to them
        races = (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError)
        retry_lost_races(attempt, tries=CURSOR_WRITE_TRIES, races=races, exhausted=lambda: None)
