"""The verifier's local state: one JSON file, changed under a lock and replaced whole.

It holds the enrolment (service, verifier id, secret: so the file is readable by its
owner only), the scheme and lease from the last sync, the clock correction, the failures
that set the waits, the codes used or revoked (until no clock could accept them), and
the log of checks not yet uploaded. A crash mid-write leaves the previous file: the new
one is written beside it, flushed, then renamed over it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class State:
    service_url: str
    verifier_id: str
    secret: str  # base32, as the enrolment showed it
    scheme: dict | None = None  # verifier.scheme.Scheme.to_dict(), from the service
    lease_until: float = 0.0  # on the verifier's own clock: past it, every code is refused
    clock_offset: float = 0.0  # service time minus the verifier's, measured at the last sync
    revoked_verifier: bool = False  # the service refused this verifier: enrol again
    failures: list[float] = field(default_factory=list)  # when recent failed checks were (own clock)
    used: dict[str, float] = field(default_factory=dict)  # "slot:index" -> forget after (service time)
    revoked: dict[str, float] = field(default_factory=dict)  # same, codes revoked by their owner
    log: list[dict] = field(default_factory=list)  # checks the service has not acknowledged

    @classmethod
    def from_dict(cls, values: dict) -> State:
        return cls(**values)


class StateFile:
    def __init__(self, path: Path):
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, state: State) -> None:
        with self._lock():
            self._write(state)

    @contextmanager
    def changing(self) -> Iterator[State]:
        """The state under an exclusive lock (two checks at once are judged one after the
        other); what the block changed is written when it ends without an error."""
        with self._lock():
            state = State.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
            yield state
            self._write(state)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def _write(self, state: State) -> None:
        temporary = self.path.with_name(f".{self.path.name}.new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(asdict(state), file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
