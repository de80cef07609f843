"""Timer and queue triggers, run the way the Functions host runs them.

Timers: 6-field NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`, UTC) or a
TimeSpan (`hh:mm:ss`); `%SETTING%` is resolved from the environment; runOnStartup fires once
at start. A timer never overlaps itself (a run that is still going delays the next one).

Queues: polled with back-off up to host.json's maxPollingInterval; bodies are Base64 (the
host's default encoding); a message is leased while its function runs, deleted on success,
made visible again after host.json's visibilityTimeout on failure, and moved to
`<queue>-poison` once it has been delivered maxDequeueCount times.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import anyio.to_thread
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage  # the worker's: with dequeue_count and times
from azure.functions.timer import TimerRequest
from azure.storage.queue import QueueClient
from croniter import croniter

from devhost.index import Function, FunctionIndex, QueueFunction, TimerFunction
from devhost.settings import TIMESPAN, QueueOptions, parse_timespan
from shared.storage import expand_connection_string

log = logging.getLogger("devhost")

SETTING = re.compile(r"%([^%]+)%")
MESSAGE_LEASE = timedelta(minutes=10)  # how long a message stays invisible while its function runs
MIN_POLLING_INTERVAL = 0.1
MESSAGE_TIME_TO_LIVE = timedelta(days=7)


def resolve_settings(text: str, environ: Mapping[str, str]) -> str:
    """Replace each `%NAME%` with that app setting, as binding expressions do."""

    def value(match: re.Match) -> str:
        if match.group(1) not in environ:
            raise ValueError(f"app setting {match.group(1)} is not set")
        return environ[match.group(1)]

    return SETTING.sub(value, text)


@dataclass(frozen=True)
class Schedule:
    """A timer schedule: an NCRONTAB expression (seconds first) or a fixed interval."""

    expression: str
    interval: timedelta | None = None

    @classmethod
    def parse(cls, text: str, environ: Mapping[str, str] | None = None) -> Schedule:
        expression = resolve_settings(text, os.environ if environ is None else environ).strip()
        if TIMESPAN.match(expression):
            interval = parse_timespan(expression)
            if interval <= timedelta(0):
                raise ValueError(f"timer interval must be positive: {expression!r}")
            return cls(expression, interval)
        if len(expression.split()) != 6:
            raise ValueError(f"NCRONTAB needs 6 fields (second minute hour day month day-of-week): {expression!r}")
        if not croniter.is_valid(expression, second_at_beginning=True):
            raise ValueError(f"not a valid NCRONTAB expression: {expression!r}")
        return cls(expression)

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        return croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)


class FunctionFailed(Exception):
    """The user function raised (already logged with its traceback)."""


async def run_logged(function: Function, argument: object, pool: Executor) -> None:
    """Run a trigger function and log one line about it; its failure becomes FunctionFailed."""
    started = time.perf_counter()
    try:
        await function.invoke(argument, pool)
    except Exception as error:
        log.exception("Executed %s (Failed, %.0fms)", function.name, (time.perf_counter() - started) * 1000)
        raise FunctionFailed(function.name) from error
    log.info("Executed %s (Succeeded, %.0fms)", function.name, (time.perf_counter() - started) * 1000)


class TimerRunner:
    def __init__(self, function: TimerFunction, environ: Mapping[str, str]):
        self.function = function
        try:
            self.schedule = Schedule.parse(function.schedule, environ)
        except ValueError as error:
            raise ValueError(f"timer {function.name}: {error}") from None
        self.lock = anyio.Lock()
        self.last: datetime | None = None

    async def fire(self, pool: Executor, *, due: datetime | None = None) -> None:
        async with self.lock:
            now = datetime.now(UTC)
            past_due = due is not None and now - due > timedelta(seconds=1)
            request = TimerRequest(
                past_due=past_due,
                schedule_status={
                    "Last": self.last.isoformat() if self.last else None,
                    "Next": self.schedule.next_after(now).isoformat(),
                    "LastUpdated": now.isoformat(),
                },
                schedule={"AdjustForDST": True},
            )
            self.last = now
            await run_logged(self.function, request, pool)

    async def run(self, pool: Executor) -> None:
        if self.function.run_on_startup:
            await self._fire_quietly(pool)
        while True:
            due = self.schedule.next_after(datetime.now(UTC))
            await anyio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
            await self._fire_quietly(pool, due=due)

    async def _fire_quietly(self, pool: Executor, due: datetime | None = None) -> None:
        try:
            await self.fire(pool, due=due)
        except FunctionFailed:
            pass  # logged; the schedule goes on
        except Exception:  # the schedule goes on
            log.exception("timer %s could not run", self.function.name)


class QueuePoller:
    def __init__(self, function: QueueFunction, options: QueueOptions, environ: Mapping[str, str]):
        self.function = function
        self.options = options
        try:
            self.queue_name = resolve_settings(function.queue_name, environ).lower()
            connection = environ.get(function.connection)
            if not connection:
                raise ValueError(f"connection setting {function.connection} is not set")
        except ValueError as error:
            raise ValueError(f"queue function {function.name}: {error}") from None
        self.connection_string = expand_connection_string(connection)

    def _client(self, queue_name: str) -> QueueClient:
        # no encode/decode policy: bodies are handled as the Base64 text they are stored as
        return QueueClient.from_connection_string(
            self.connection_string, queue_name, connection_timeout=5, read_timeout=20, retry_total=0
        )

    async def run(self, pool: Executor) -> None:
        queue, poison = self._client(self.queue_name), self._client(f"{self.queue_name}-poison")
        delay, failing = MIN_POLLING_INTERVAL, False
        while True:
            try:
                messages = await anyio.to_thread.run_sync(lambda: self._receive(queue))
                if failing:
                    log.info("queue %s: storage answers again", self.queue_name)
                failing = False
            except Exception as error:  # noqa: BLE001 - an outage must not stop the poller
                if not failing:
                    log.warning("queue %s: cannot poll (%s); retrying", self.queue_name, type(error).__name__)
                failing, messages = True, []
            if messages:
                delay = MIN_POLLING_INTERVAL
                async with anyio.create_task_group() as group:
                    for message in messages:
                        group.start_soon(self._process, queue, poison, message, pool)
                continue
            await anyio.sleep(delay)
            delay = min(delay * 2, max(MIN_POLLING_INTERVAL, self.options.max_polling_interval.total_seconds()))

    def _receive(self, queue: QueueClient) -> list:
        lease = int(MESSAGE_LEASE.total_seconds())
        batch = self.options.batch_size
        try:
            return list(queue.receive_messages(messages_per_page=batch, max_messages=batch, visibility_timeout=lease))
        except ResourceNotFoundError:
            return []  # the queue does not exist (yet): nothing to do

    async def _process(self, queue: QueueClient, poison: QueueClient, message, pool) -> None:
        try:
            if message.dequeue_count > self.options.max_dequeue_count:
                await self._to_thread(self._poison, queue, poison, message)
                return
            try:
                body = base64.b64decode(message.content or "", validate=True)
            except (binascii.Error, ValueError):
                log.warning("queue %s: message %s is not Base64; moved to poison", self.queue_name, message.id)
                await self._to_thread(self._poison, queue, poison, message)
                return
            try:
                await run_logged(self.function, as_queue_message(message, body), pool)
            except FunctionFailed:
                if message.dequeue_count >= self.options.max_dequeue_count:
                    await self._to_thread(self._poison, queue, poison, message)
                else:
                    timeout = int(self.options.visibility_timeout.total_seconds())
                    await self._to_thread(lambda: queue.update_message(message, visibility_timeout=timeout))
                return
            await self._to_thread(lambda: queue.delete_message(message))
        except Exception as error:  # noqa: BLE001 - storage failed; the lease runs out and it comes back
            log.warning("queue %s: message %s not settled (%s)", self.queue_name, message.id, type(error).__name__)

    @staticmethod
    async def _to_thread(call, *args) -> None:
        await anyio.to_thread.run_sync(lambda: call(*args))

    def _poison(self, queue: QueueClient, poison: QueueClient, message) -> None:
        with suppress(ResourceExistsError):
            poison.create_queue()
        poison.send_message(message.content)
        queue.delete_message(message)
        log.warning(
            "queue %s: message %s moved to %s after %s deliveries",
            self.queue_name, message.id, poison.queue_name, message.dequeue_count,
        )  # fmt: skip


def as_queue_message(message, body: bytes) -> QueueMessage:
    """The worker's QueueMessage, with dequeue count and times."""
    return QueueMessage(
        id=message.id,
        body=body,
        pop_receipt=message.pop_receipt,
        dequeue_count=message.dequeue_count,
        insertion_time=message.inserted_on,
        expiration_time=message.expires_on,
        time_next_visible=message.next_visible_on,
    )


class FunctionNotLoaded(Exception):
    """The function's binding could not be resolved (e.g. a missing app setting)."""


class Triggers:
    """Every timer and queue function of the app; `fire` runs one now.

    Like the Functions host, a function whose binding does not resolve (a `%SETTING%` that
    is not set, a bad schedule) is logged as an error and not run; the rest of the app is.
    """

    def __init__(self, index: FunctionIndex, queue_options: QueueOptions, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.timers: dict[str, TimerRunner] = {}
        self.queues: dict[str, QueuePoller] = {}
        self.broken: dict[str, str] = {}
        for function in index.timers:
            self._load(self.timers, function, lambda f=function: TimerRunner(f, environ))
        for function in index.queues:
            self._load(self.queues, function, lambda f=function: QueuePoller(f, queue_options, environ))

    def _load(self, runners: dict, function: Function, make) -> None:
        try:
            runners[function.name.lower()] = make()
        except ValueError as error:
            self.broken[function.name.lower()] = str(error)
            log.error("%s is not loaded and will not run: %s", function.name, error)

    async def run(self, pool: Executor) -> None:
        async with anyio.create_task_group() as group:
            for runner in (*self.timers.values(), *self.queues.values()):
                group.start_soon(runner.run, pool)

    def knows(self, name: str) -> bool:
        return any(name.lower() in runners for runners in (self.timers, self.queues, self.broken))

    async def fire(self, name: str, input: str, pool: Executor) -> None:
        """Run a timer or queue function once now (the queue function gets `input` as the
        message body); raises FunctionFailed if it failed, FunctionNotLoaded if it cannot run."""
        if name.lower() in self.broken:
            raise FunctionNotLoaded(self.broken[name.lower()])
        if name.lower() in self.timers:
            await self.timers[name.lower()].fire(pool)
            return
        now = datetime.now(UTC)
        message = QueueMessage(
            id=str(uuid.uuid4()),
            body=input.encode(),
            dequeue_count=1,
            insertion_time=now,
            expiration_time=now + MESSAGE_TIME_TO_LIVE,
            time_next_visible=now,
        )
        await run_logged(self.queues[name.lower()].function, message, pool)
