"""The local Functions host serves a FunctionApp the way the Functions host does: routes,
keys, body limits, what the host answers itself, query strings, headers, cookies, the
worker's thread pool, timers and queues (against the test app in tests/devhost_app/)."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from itertools import pairwise
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

pytestmark = pytest.mark.e2e

BODY_LIMIT = 4096


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("records")


@pytest.fixture(scope="module")
def test_host(launch_devhost, settings, app_settings_values, records):
    app_settings = {
        **app_settings_values,
        "DEVHOST_TEST_RECORDS": str(records),
        "DEVHOST_TEST_TICK_SCHEDULE": "*/1 * * * * *",
        "DEVHOST_TEST_WORK_QUEUE": "devhost-work",
    }
    with launch_devhost(
        app_settings,
        app="tests.devhost_app.function_app:app",
        args=("--host-json", "tests/devhost_app/host.json", "--max-request-body-bytes", str(BODY_LIMIT)),
    ) as running:
        yield running


def runs(records: Path, name: str) -> list[dict]:
    path = records / f"{name}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_for(condition, timeout: float = 20.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(interval)


def queue(azurite, name: str) -> QueueClient:
    client = QueueClient.from_connection_string(
        azurite.connection_string, name, message_encode_policy=TextBase64EncodePolicy()
    )
    with suppress(ResourceExistsError):
        client.create_queue()
    return client


# --- routes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "route_params"),
    [
        ("/items/new", {}),
        ("/ITEMS/NEW", {}),
        ("/items/42", {"id": "42"}),
        ("/items/abc", {"name": "abc"}),
        ("/things/1b4e28ba-2fa1-11d2-883f-0016d3cca427", {"id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}),
        ("/codes/123456", {"code": "123456"}),
        ("/hello", {}),
        ("/hello/", {}),
        ("/hello/ada", {"name": "ada"}),
        ("/files/report.pdf", {"name": "report", "ext": "pdf"}),
        ("/echo/a/b/c", {"rest": "a/b/c"}),
    ],
)
def test_route_templates_pass_route_params(test_host, path, route_params):
    response = test_host.client.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["route_params"] == route_params


@pytest.mark.parametrize("path", ["/items/4x2", "/things/not-a-guid", "/codes/12345", "/hello/a/b", "/nowhere"])
def test_paths_no_route_accepts_get_an_empty_404(test_host, path):
    """The Functions host answers a path no function takes itself: 404, no body."""
    response = test_host.client.get(path)
    assert response.status_code == 404
    assert response.content == b""


def test_a_method_the_route_does_not_take_gets_an_empty_404(test_host):
    """The host routes on path and method together, so a known path with another method is
    a 404 with no body and no Allow, not a 405 (Azure/azure-functions-host#10098)."""
    response = test_host.client.post("/items/42")
    assert response.status_code == 404
    assert response.content == b""
    assert "allow" not in response.headers
    assert test_host.client.delete("/items/42").status_code == 200


def test_repeated_query_parameters_are_joined_and_empty_ones_dropped(test_host):
    """The host builds the worker's `params` from ASP.NET Core's query collection
    (`GrpcMessageConversionExtensions.ToRpcHttp`): a repeated name's values joined with
    `,`, a parameter whose value is empty left out, names case-insensitive."""
    seen = test_host.client.get("/echo/q?a=1&a=2&b=&c&D=x&d=y&e=%2C").json()
    assert seen["params"] == {"a": "1,2", "D": "x,y", "e": ","}
    assert seen["url"].endswith("/echo/q?a=1&a=2&b=&c&D=x&d=y&e=%2C")  # the URL itself untouched


def test_repeated_headers_reach_the_function_joined_with_a_comma(test_host):
    """ASP.NET Core keeps a repeated header as one StringValues; the host hands the worker
    its `ToString()`, the values joined with `,`."""
    response = test_host.client.get("/echo/h", headers=[("X-Repeated", "one"), ("x-repeated", "two")])
    assert response.json()["x_repeated"] == "one,two"


def test_the_request_reaches_the_function_whole(test_host):
    response = test_host.client.post("/echo/x?a=1&b=two", content=b"12345", headers={"X-Forwarded-For": "203.0.113.7"})
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["url"] == f"{test_host.url}/echo/x?a=1&b=two"
    assert seen["params"] == {"a": "1", "b": "two"}
    assert seen["body_length"] == 5
    assert seen["forwarded_for"] == "203.0.113.7, 127.0.0.1"  # the caller's address appended
    assert response.headers["x-echo"] == "yes"
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "value"),
    [("/hello/a%23b", "a#b"), ("/hello/a%3Fb", "a?b"), ("/hello/a%5Cb", "a\\b"), ("/hello/a%00b", "a\x00b"),
     ("/hello/a%0Ab", "a\nb"), ("/hello/a%2Fb", "a%2Fb"), ("/hello/a%2fb", "a%2fb"),
     ("/hello/%C3%A9t%C3%A9", "\u00e9t\u00e9")],
)  # fmt: skip
def test_route_values_are_decoded_as_the_functions_host_decodes_them_but_for_slashes(test_host, path, value):
    """ASP.NET Core decodes every escape in the path but %2F: `#` and `?` sent encoded
    are part of the value, an encoded slash never splits a segment."""
    response = test_host.client.get(path)
    assert response.status_code == 200, response.text
    assert response.json()["route_params"] == {"name": value}
    assert response.json()["url"] == f"{test_host.url}{path}"


def test_the_caller_address_is_the_only_forwarded_hop_without_a_header(test_host):
    assert test_host.client.get("/echo/x").json()["forwarded_for"] == "127.0.0.1"


def test_async_functions_run_and_text_gets_a_charset(test_host):
    response = test_host.client.get("/async")
    assert response.text == "hello from a coroutine"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


def test_a_failing_function_is_an_empty_500_and_the_host_keeps_serving(test_host):
    """A function that raises gets the host's own 500, with no body (the traceback goes
    to the log, never to the caller)."""
    response = test_host.client.get("/fails")
    assert response.status_code == 500
    assert response.content == b""
    assert test_host.client.get("/items/1").status_code == 200


def test_the_request_log_has_method_path_status_and_no_query_string(test_host):
    test_host.client.get("/echo/logged-path?token=do-not-log-me", headers={"Authorization": "Bearer hidden"})
    log = wait_for(lambda: "/echo/logged-path" in test_host.logs() and test_host.logs())
    line = next(line for line in log.splitlines() if "/echo/logged-path" in line)
    assert "GET /echo/logged-path 200" in line
    assert line.endswith("ms")
    assert "do-not-log-me" not in log
    assert "hidden" not in log


# --- what the worker does to responses, and its thread pool -------------------------------------


def test_cookies_reach_the_browser_as_the_worker_and_host_rewrite_them(test_host):
    """The worker parses each Set-Cookie into a structured cookie and the host writes it
    back with ASP.NET Core: attributes in lower case, the value escaped as
    `Uri.EscapeDataString` does, and `domain=` empty where the app set no domain
    (Azure/azure-functions-python-worker#1902)."""
    response = test_host.client.get("/cookies")
    assert response.headers.get_list("set-cookie") == [
        "plain=a%2Fb%3Ac; domain=; path=/; samesite=lax; httponly",
        "__Host-pref=v2; max-age=60; domain=; path=/; secure; samesite=strict; httponly",
    ]


def concurrent_peak(host, batch: str, calls: int) -> int:
    with ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(lambda _: host.client.get("/slow", params={"batch": batch}), range(calls)))
    assert all(answer.status_code == 200 for answer in answers)
    return max(answer.json()["peak"] for answer in answers)


def test_sync_functions_run_on_the_workers_default_thread_count(test_host):
    """Without PYTHON_THREADPOOL_THREAD_COUNT the worker runs sync functions on
    ThreadPoolExecutor's default, min(32, cores + 4) threads: more calls than that wait."""
    threads = min(32, (os.cpu_count() or 1) + 4)
    assert f"sync functions run on {threads} threads" in test_host.logs()
    assert concurrent_peak(test_host, "default", threads + 4) == threads


def test_python_threadpool_thread_count_sizes_the_pool(launch_devhost, app_settings_values, tmp_path):
    """PYTHON_THREADPOOL_THREAD_COUNT sets the worker's thread count, as in Azure."""
    settings = {**app_settings_values, "PYTHON_THREADPOOL_THREAD_COUNT": "2", "DEVHOST_TEST_RECORDS": str(tmp_path)}
    with launch_devhost(settings, app="tests.devhost_app.function_app:app") as small:
        assert "sync functions run on 2 threads" in small.logs()
        assert concurrent_peak(small, "two", 6) == 2


# --- function keys --------------------------------------------------------------------------


def test_function_level_routes_need_a_key(test_host):
    """Without a valid key the host answers 401 itself, with no body."""
    response = test_host.client.get("/keys/function")
    assert response.status_code == 401
    assert response.content == b""
    assert test_host.client.get("/keys/function", headers={"x-functions-key": "wrong"}).status_code == 401
    assert test_host.client.get("/keys/function", params={"code": "wrong"}).status_code == 401


def test_the_function_key_opens_function_level_routes_by_header_or_code(test_host):
    key = test_host.function_key
    assert test_host.client.get("/keys/function", headers={"x-functions-key": key}).status_code == 200
    assert test_host.client.get("/keys/function", params={"code": key}).status_code == 200
    master = test_host.master_key
    assert test_host.client.get("/keys/function", headers={"x-functions-key": master}).status_code == 200


def test_admin_level_routes_need_the_master_key(test_host):
    assert test_host.client.get("/keys/admin").status_code == 401
    assert test_host.client.get("/keys/admin", headers={"x-functions-key": test_host.function_key}).status_code == 401
    assert test_host.client.get("/keys/admin", params={"code": test_host.master_key}).status_code == 200


# --- request body limit ------------------------------------------------------------------------


def test_a_body_at_the_limit_is_accepted(test_host):
    response = test_host.client.post("/upload", content=b"x" * BODY_LIMIT)
    assert response.status_code == 200
    assert response.json()["body_length"] == BODY_LIMIT


def test_a_body_over_the_limit_gets_413(test_host):
    response = test_host.client.post("/upload", content=b"x" * (BODY_LIMIT + 1))
    assert response.status_code == 413
    assert response.content == b""


def test_an_oversized_content_length_gets_413_without_the_body_being_sent(test_host):
    port = int(test_host.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # announce a terabyte, send none of it: the answer comes anyway
        sock.sendall(b"PUT /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000000\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"content-length: 0\r\n" in answer.lower()


def test_a_chunked_body_is_cut_off_past_the_limit(test_host):
    def chunks(total: int):
        for _ in range(total // 512):
            yield b"y" * 512

    assert test_host.client.post("/upload", content=chunks(BODY_LIMIT * 4)).status_code == 413
    small = test_host.client.post("/upload", content=chunks(1024))
    assert small.status_code == 200
    assert small.json()["body_length"] == 1024


# --- timers ------------------------------------------------------------------------------------


def test_a_timer_fires_on_its_per_second_schedule(test_host, records):
    before = len(runs(records, "tick"))
    wait_for(lambda: len(runs(records, "tick")) >= before + 3, timeout=10)
    times = [run["at"] for run in runs(records, "tick")][-3:]
    gaps = [later - earlier for earlier, later in pairwise(times)]
    assert all(0.5 < gap < 2.5 for gap in gaps), gaps


def test_a_timer_with_run_on_startup_ran_at_start(test_host, records):
    wait_for(lambda: runs(records, "on_startup"), timeout=10)


def test_a_timer_fires_on_demand(test_host, records):
    assert runs(records, "yearly") == []
    response = test_host.fire("yearly")
    assert response.status_code == 202
    assert len(runs(records, "yearly")) == 1  # it has run when fire() returns
    assert runs(records, "yearly")[0]["past_due"] is False


def test_firing_needs_the_master_key_and_a_known_function(test_host):
    client = test_host.client
    assert client.post("/admin/functions/yearly", json={"input": ""}).status_code == 401
    with_function_key = {"x-functions-key": test_host.function_key}
    assert client.post("/admin/functions/yearly", json={"input": ""}, headers=with_function_key).status_code == 401
    assert test_host.fire("no_such_function", expect=404).content == b""


def test_a_timer_whose_setting_is_missing_is_not_loaded_and_the_rest_runs(test_host, records):
    response = test_host.fire("unresolved", expect=500)
    assert response.json()["error"] == "function_not_loaded"
    assert "DEVHOST_TEST_NEVER_SET" in response.json()["message"]
    assert "unresolved is not loaded" in test_host.logs()
    assert runs(records, "unresolved") == []


# --- queues ------------------------------------------------------------------------------------


def test_a_queue_function_receives_a_base64_message(test_host, azurite, records):
    body = f"hello {uuid.uuid4()}"
    work = queue(azurite, "devhost-work")
    work.send_message(body)
    run = wait_for(lambda: next((r for r in runs(records, "work") if r["body"] == body), None))
    assert run["dequeue_count"] == 1
    assert run["inserted"] not in ("", "None")
    wait_for(lambda: not list(work.peek_messages()))  # deleted after success


def test_a_queue_function_fires_on_demand_with_the_input_as_body(test_host, records):
    body = f"by hand {uuid.uuid4()}"
    test_host.fire("work", input=body)
    assert [r["dequeue_count"] for r in runs(records, "work") if r["body"] == body] == [1]


def test_a_failing_queue_function_is_reported_when_fired(test_host):
    response = test_host.fire("always_fails", input="fired", expect=500)
    assert response.json()["error"] == "function_failed"


def test_a_message_that_keeps_failing_moves_to_poison_after_five_deliveries(test_host, azurite, records):
    body = f"poison {uuid.uuid4()}"
    queue(azurite, "devhost-fails").send_message(body)
    poison = queue(azurite, "devhost-fails-poison")

    def poisoned() -> bool:
        return any(base64.b64decode(m.content).decode() == body for m in poison.peek_messages(max_messages=32))

    wait_for(poisoned, timeout=60, interval=0.5)
    deliveries = [r["dequeue_count"] for r in runs(records, "always_fails") if r["body"] == body]
    assert deliveries == [1, 2, 3, 4, 5]
