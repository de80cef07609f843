"""Cold start: what importing `function_app` costs against the bare minimum a Table-backed
function app imports (azure.functions, azure.data.tables, azure.storage.blob), both with
`python -X importtime` in this run, and how long the host takes to answer its first
requests after start."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.stats import median
from devhost.azurite import ROOT

APP = "import function_app"
MINIMUM = "import azure.functions, azure.data.tables, azure.storage.blob"


def _imported(statement: str, env: dict[str, str]) -> dict[str, int]:
    """Module -> its own import time (microseconds) for one fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    modules: dict[str, int] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        modules[name] = modules.get(name, 0) + int(self_us)
    return modules


def import_ms(statement: str, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """One fresh interpreter: the import time of `statement` beyond what the interpreter
    imports at start (`-c pass`), and its heaviest top-level packages."""
    baseline = _imported("pass", env)
    extra = {name: us for name, us in _imported(statement, env).items() if name not in baseline}
    by_package: dict[str, float] = {}
    for name, us in extra.items():
        top = name.split(".")[0]
        by_package[top] = by_package.get(top, 0) + us / 1000
    heaviest = dict(sorted(by_package.items(), key=lambda item: -item[1])[:8])
    return sum(extra.values()) / 1000, {name: round(ms, 1) for name, ms in heaviest.items()}


def run(stack, runs: int = 5) -> dict:
    env = {**os.environ, **stack.values}
    app_runs, minimum_runs = [], []
    for _ in range(runs):  # alternately, so a change in the machine's load hits both alike
        app_runs.append(import_ms(APP, env))
        minimum_runs.append(import_ms(MINIMUM, env))
    app_ms, app_heaviest = median([ms for ms, _ in app_runs]), app_runs[-1][1]
    minimum_ms, minimum_heaviest = median([ms for ms, _ in minimum_runs]), minimum_runs[-1][1]

    started = time.perf_counter()
    host = stack.host()
    ready_s = time.perf_counter() - started
    firsts = {}
    for name, method, path, body in (
        ("health", "GET", "/api/health", None),
        ("redeem", "POST", "/api/codes/redeem", {"resourceId": "A" * 22, "code": "123456"}),
    ):
        timings = []
        for _ in range(2):  # the first, then a warm one for comparison
            t0 = time.perf_counter()
            response = host.client.request(method, path, json=body)
            timings.append((time.perf_counter() - t0) * 1000)
        firsts[name] = {
            "status": response.status_code,
            "first_ms": round(timings[0], 1),
            "second_ms": round(timings[1], 1),
        }
    host.stop()
    stack.hosts.remove(host)
    return {
        "runs": runs,
        "import_function_app_ms": round(app_ms, 1),
        "import_minimum_ms": round(minimum_ms, 1),
        "import_ratio": round(app_ms / minimum_ms, 3),
        "heaviest_function_app": app_heaviest,
        "heaviest_minimum": minimum_heaviest,
        "host_ready_s": round(ready_s, 2),
        "first_requests": firsts,
    }
