"""Latency records and their summaries: percentiles, throughput, status counts."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass
class Call:
    """One request or storage call: when it started and ended (perf_counter seconds),
    the HTTP status (0 when no answer came) and, for failures, what went wrong."""

    start: float
    end: float
    status: int = 200
    error: str | None = None
    data: object = None

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return self.error is None and 200 <= self.status < 300


@dataclass
class Run:
    """The calls of one load run at one concurrency."""

    calls: list[Call] = field(default_factory=list)
    concurrency: int = 1

    @property
    def wall_seconds(self) -> float:
        if not self.calls:
            return 0.0
        return max(c.end for c in self.calls) - min(c.start for c in self.calls)

    def latencies_ms(self, ok_only: bool = True) -> list[float]:
        return [c.seconds * 1000 for c in self.calls if c.ok or not ok_only]

    def statuses(self) -> dict[str, int]:
        return dict(Counter(str(c.status) if c.error is None else f"{c.status}:{c.error}" for c in self.calls))

    @property
    def errors(self) -> int:
        return sum(1 for c in self.calls if not c.ok)

    def summary(self) -> dict:
        latencies = self.latencies_ms()
        wall = self.wall_seconds
        return {
            "n": len(self.calls),
            "concurrency": self.concurrency,
            "errors": self.errors,
            "p50_ms": round(percentile(latencies, 50), 3),
            "p90_ms": round(percentile(latencies, 90), 3),
            "p99_ms": round(percentile(latencies, 99), 3),
            "max_ms": round(max(latencies), 3) if latencies else math.nan,
            "mean_ms": round(sum(latencies) / len(latencies), 3) if latencies else math.nan,
            "throughput_per_s": round(sum(1 for c in self.calls if c.ok) / wall, 1) if wall else math.nan,
            "wall_s": round(wall, 3),
        }
