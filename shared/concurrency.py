"""Independent storage calls made at the same time, so a request waits for the slowest
one rather than for their sum."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any


def run_parallel(pool: Executor, *calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on `pool`; return their results in order, or raise the first error.
    The calls must not wait on the same pool themselves (that could exhaust it)."""
    futures = [pool.submit(call) for call in calls]
    return [future.result() for future in futures]
