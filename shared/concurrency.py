"""Independent storage calls made at the same time, so a request waits for the slowest
one rather than for their sum. One pool per process."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

POOL_SIZE = 64


@cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="storage")


def run_parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls concurrently; return their results in order, or raise the first error."""
    futures = [_pool().submit(call) for call in calls]
    return [future.result() for future in futures]
