"""Targets as PASS/FAIL lines, the results table, and the JSON file of a run."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Target:
    name: str
    value: float | int | None
    limit: str  # human form: "<= 1.5x floor", "== 0"
    passed: bool
    detail: str = ""

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"


def at_most(name: str, value, limit: float, unit: str = "", detail: str = "") -> Target:
    ok = value is not None and not (isinstance(value, float) and math.isnan(value)) and value <= limit
    return Target(name, value, f"<= {limit:g}{unit}", ok, detail)


def at_least(name: str, value, limit: float, unit: str = "", detail: str = "") -> Target:
    ok = value is not None and not (isinstance(value, float) and math.isnan(value)) and value >= limit
    return Target(name, value, f">= {limit:g}{unit}", ok, detail)


def equal(name: str, value, expected, detail: str = "") -> Target:
    return Target(name, value, f"== {expected}", value == expected, detail)


def ratio(value: float, floor: float) -> float:
    return round(value / floor, 3) if floor else math.nan


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(targets: list[Target]) -> str:
    rows = [("target", "value", "limit", "verdict", "detail")]
    rows += [(t.name, _format(t.value), t.limit, t.verdict, t.detail) for t in targets]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for position, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        lines.append("  ".join(cells).rstrip())
        if position == 0:
            lines.append("  ".join("-" * w for w in widths))
    passed = sum(t.passed for t in targets)
    lines.append(f"\n{passed} of {len(targets)} targets PASS")
    return "\n".join(lines)


def markdown_table(targets: list[Target]) -> str:
    lines = ["| target | value | limit | verdict | detail |", "|---|---|---|---|---|"]
    for t in targets:
        lines.append(f"| {t.name} | {_format(t.value)} | {t.limit} | **{t.verdict}** | {t.detail} |")
    return "\n".join(lines)


def new_path(directory: Path = RESULTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"


def write(results: dict, targets: list[Target], path: Path) -> Path:
    """Rewritten after every scenario, so a run stopped half-way keeps what it measured."""
    document = {**results, "targets": [asdict(t) | {"verdict": t.verdict} for t in targets]}
    path.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    return path
