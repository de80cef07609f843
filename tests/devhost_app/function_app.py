"""A FunctionApp for the local host's own tests (served with DEVHOST_APP=tests.devhost_app.function_app:app).

Every non-HTTP function appends one JSON line per run to `<DEVHOST_TEST_RECORDS>/<name>.jsonl`,
so a test can see what ran, when, and with which input.
"""

import asyncio
import json
import os
import threading
import time
from pathlib import Path

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def record(name: str, **fields) -> None:
    path = Path(os.environ["DEVHOST_TEST_RECORDS"]) / f"{name}.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"at": time.time(), **fields}) + "\n")


def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "forwarded_for": req.headers.get("x-forwarded-for"),
        "x_repeated": req.headers.get("x-repeated"),
        "body_length": len(req.get_body()),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json", headers={"X-Echo": "yes"})


# --- HTTP: route templates, methods, keys --------------------------------------------------

for name, route, methods, auth in (
    ("echo_any", "echo/{*rest}", None, func.AuthLevel.ANONYMOUS),
    ("item_new", "items/new", ["GET"], func.AuthLevel.ANONYMOUS),
    ("item_by_id", "items/{id:int}", ["GET"], func.AuthLevel.ANONYMOUS),
    ("item_by_name", "items/{name:alpha}", ["GET"], func.AuthLevel.ANONYMOUS),
    ("item_delete", "items/{id:int}", ["DELETE"], func.AuthLevel.ANONYMOUS),
    ("thing_by_guid", "things/{id:guid}", ["GET"], func.AuthLevel.ANONYMOUS),
    ("code_by_regex", "codes/{code:regex(^\\d{{6}}$)}", ["GET"], func.AuthLevel.ANONYMOUS),
    ("optional_name", "hello/{name?}", ["GET"], func.AuthLevel.ANONYMOUS),
    ("file_parts", "files/{name}.{ext}", ["GET"], func.AuthLevel.ANONYMOUS),
    ("upload", "upload", ["POST", "PUT"], func.AuthLevel.ANONYMOUS),
    ("with_function_key", "keys/function", ["GET"], func.AuthLevel.FUNCTION),
    ("with_admin_key", "keys/admin", ["GET"], func.AuthLevel.ADMIN),
):
    app.function_name(name)(app.route(route=route, methods=methods, auth_level=auth)(echo))


@app.function_name("async_text")
@app.route(route="async", methods=["GET"])
async def async_text(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse("hello from a coroutine")


@app.function_name("fails")
@app.route(route="fails", methods=["GET"])
def fails(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


# Sync calls running at once, per batch (a query parameter), and the most seen together.
running: dict[str, int] = {}
peak: dict[str, int] = {}
running_lock = threading.Lock()


@app.function_name("slow")
@app.route(route="slow", methods=["GET"])
def slow(req: func.HttpRequest) -> func.HttpResponse:
    batch = req.params.get("batch", "")
    with running_lock:
        running[batch] = running.get(batch, 0) + 1
        peak[batch] = max(peak.get(batch, 0), running[batch])
    time.sleep(0.4)
    with running_lock:
        running[batch] -= 1
    return func.HttpResponse(json.dumps({"peak": peak[batch]}), mimetype="application/json")


@app.function_name("cookies")
@app.route(route="cookies", methods=["GET"])
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("cookies set")
    response.headers.add_header("Set-Cookie", "plain=a/b:c; Path=/; HttpOnly; SameSite=Lax")
    response.headers.add_header("Set-Cookie", "__Host-pref=v2; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=60")
    return response


# --- timers and queues -----------------------------------------------------------------------


@app.function_name("tick")
@app.timer_trigger(schedule="%DEVHOST_TEST_TICK_SCHEDULE%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due)


@app.function_name("yearly")
@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=False)
def yearly(timer: func.TimerRequest) -> None:
    record("yearly", past_due=timer.past_due)


@app.function_name("on_startup")
@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True)
def on_startup(timer: func.TimerRequest) -> None:
    record("on_startup")


@app.function_name("work")
@app.queue_trigger(arg_name="msg", queue_name="%DEVHOST_TEST_WORK_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage) -> None:
    record("work", id=msg.id, body=msg.get_body().decode(), dequeue_count=msg.dequeue_count,
           inserted=str(msg.insertion_time))  # fmt: skip


@app.function_name("always_fails")
@app.queue_trigger(arg_name="msg", queue_name="devhost-fails", connection="AzureWebJobsStorage")
def always_fails(msg: func.QueueMessage) -> None:
    record("always_fails", body=msg.get_body().decode(), dequeue_count=msg.dequeue_count)
    raise RuntimeError("this queue function always fails")


@app.function_name("unresolved")
@app.timer_trigger(schedule="%DEVHOST_TEST_NEVER_SET%", arg_name="timer")
def unresolved(timer: func.TimerRequest) -> None:
    record("unresolved")
