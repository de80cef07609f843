"""Optimistic concurrency on table rows: read a row, decide, and write on the ETag that was
read, so a concurrent writer makes the write fail instead of being overwritten; then read
again and decide again, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class LostRace(Exception):
    """An attempt's conditional write lost to a concurrent writer, where the write itself
    does not raise (it returned None, or its error is converted)."""


def retry_lost_races(
    attempt: Callable[[], T],
    *,
    tries: int,
    races: tuple[type[Exception], ...] = (LostRace,),
    exhausted: Exception | Callable[[], T],
) -> T:
    """`attempt()` (read, decide, write conditionally) until it finishes without one of
    `races`. After `tries` lost races: `exhausted` raised if it is an exception (usually
    a Conflict asking to try again), else what `exhausted()` gives up with."""
    for _ in range(tries):
        try:
            return attempt()
        except races:
            continue
    if isinstance(exhausted, Exception):
        raise exhausted
    return exhausted()
