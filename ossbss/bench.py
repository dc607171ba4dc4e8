"""Benchmarks of the platform's hot paths, each next to what the bare Kafka client does on the
same machine in the same run: alarm handling (:func:`bench_alarms`) and usage rating
(:func:`bench_usage`, described in its own section below).

Alarm handling: how many probe alarms per second fault management turns into trouble tickets,
and how long each alarm waits for its ticket.

Two measurements, one process, one broker, one database:

* **baseline**: the probe alarms, already encoded, produced with a plain ``AIOKafkaProducer``
  to a throw-away topic and read back with a plain ``getmany`` loop (no database), then
  decoded in memory. This is the ceiling the platform's own plumbing sets.
* **system**: the same kind of alarms published to ``network.alarms`` while the whole system
  runs (``ossbss.app.system``). Every alarm is a service-affecting critical loss of signal on a
  synthetic link, so every new reduction key opens a trouble ticket; one alarm in ten repeats an
  earlier key (a repeat only counts an occurrence). The run ends when every expected
  ``TroubleTicketCreated`` has been read back from ``oss.trouble-tickets`` and ``oss-fault`` has
  committed every alarm's offset. Latency runs from the alarm's ``event_time`` (the moment it
  was handed to the producer) to the ticket's Kafka timestamp (the moment the outbox relay
  published it) and, separately, to the ticket's ``ce_time`` (the moment the handler decided it).

``rate=None`` publishes as fast as the producer goes (flood); ``rate=R`` publishes R alarms per
second in bursts of 10 ms.

Synthetic links are unknown to inventory and carry no service, so no outage and no customer
notification follows; the path measured is probe alarm -> alarm -> ticket.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from pydantic import AwareDatetime, TypeAdapter

from bss_consumers.rating import agents as rating
from events import Envelope, EventPayload, decode, encode
from events.network import UsageRecorded
from events.x733 import ResourceType
from oss_consumers.fault import agents as fault
from oss_consumers.inventory.seed import load_network
from ossbss.app import System, domain_databases, system
from producers import mediation, probes
from runtime import db
from runtime.consumer import EventConsumer
from runtime.infra import Endpoints, infrastructure
from runtime.settings import Settings

ALARMS_TOPIC = "network.alarms"
TICKETS_TOPIC = "oss.trouble-tickets"
BASELINE_PARTITIONS = 4
REPEAT_EVERY = 10
"""One alarm in ``REPEAT_EVERY`` repeats the reduction key of an earlier one."""
STALL_SECONDS = 30.0
"""Give up when nothing moves for this long."""
PROGRESS_SECONDS = 2.0
"""Seconds between progress lines."""
BURST_SECONDS = 0.01
"""Paced mode publishes one burst every this many seconds."""
FLOOD_CHUNK = 256
"""Flood mode stamps this many alarms with one publish moment."""
PROBE = "probe-bench"

Headers = list[tuple[str, bytes]]
Emit = Callable[[str], None]
T = TypeVar("T")


class BenchError(RuntimeError):
    """The benchmark could not complete; the message says what stopped moving, in one line."""


class Outgoing(Protocol):
    """One pre-encoded record of a workload, as the baseline and :class:`Publisher` send it."""

    @property
    def key(self) -> bytes: ...

    @property
    def track(self) -> str | None:
        """The id under which to note this record's publish moment (``None``: not noted)."""
        ...

    def stamped(self, value_time: bytes, header_time: bytes) -> tuple[bytes, Headers]:
        """Value and headers to send, given the publish moment as JSON time and ``ce_time``."""
        ...


# ---------------------------------------------------------------------------------------------
# workload


# Alarms are encoded once, ahead of time, with this placeholder event time; publishing swaps in
# the publish moment with a byte replace, so that encoding costs nothing during the measurement
# and event_time is still the moment the alarm was handed to the producer.
_PLACEHOLDER = datetime(2001, 2, 3, 4, 5, 6, 789012, tzinfo=UTC)
_PLACEHOLDER_JSON = TypeAdapter(AwareDatetime).dump_json(_PLACEHOLDER)[1:-1]
_PLACEHOLDER_HEADER = _PLACEHOLDER.isoformat().encode()


@dataclass(frozen=True, slots=True)
class Alarm:
    """One encoded probe alarm, its event time still the placeholder."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    event_id: str
    new: bool
    """Whether it is the first raise of its reduction key (and so opens a ticket)."""

    @property
    def track(self) -> str | None:
        """New alarms are tracked by event id: the ticket's correlation id."""
        return self.event_id if self.new else None

    def stamped(self, value_time: bytes, header_time: bytes) -> tuple[bytes, Headers]:
        """Value and headers with the publish moment as event time and ``ce_time``."""
        value = self.value.replace(_PLACEHOLDER_JSON, value_time, 1)
        headers = [(n, header_time if n == "ce_time" else v) for n, v in self.headers]
        return value, headers


def _stamps(now: datetime) -> tuple[bytes, bytes]:
    """``now`` as the payload's JSON time and as the ``ce_time`` header."""
    return (
        now.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode(),
        now.isoformat(timespec="microseconds").encode(),
    )


def workload(count: int, tag: str, seed: int = 7) -> list[Alarm]:
    """``count`` service-affecting critical link alarms: new synthetic links, except every
    ``REPEAT_EVERY``-th alarm, which repeats the reduction key of an earlier one."""
    condition = probes.CONDITIONS[ResourceType.LINK][0]
    rng = random.Random(seed)
    links: list[probes.Resource] = []
    alarms: list[Alarm] = []
    for i in range(count):
        repeat = bool(links) and i % REPEAT_EVERY == REPEAT_EVERY - 1
        if repeat:
            link = rng.choice(links)
        else:
            link = probes.Resource(f"LINK-BENCH-{tag}-{len(links):06d}", ResourceType.LINK)
            links.append(link)
        event = probes.raise_event(link, condition, _PLACEHOLDER, PROBE)
        key, value, headers = encode(event)
        if value.count(_PLACEHOLDER_JSON) != 1 or ("ce_time", _PLACEHOLDER_HEADER) not in headers:
            raise BenchError("unexpected encoding of ProbeAlarmRaised: cannot place the publish moment")
        alarms.append(Alarm(key, value, tuple(headers), event.id, new=not repeat))
    return alarms


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------------------
# figures


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Latencies:
    """Milliseconds from alarm publish to ticket, one entry per ticket."""

    published: list[float] = field(default_factory=list)
    """To the ticket's Kafka timestamp (the outbox relay published it)."""
    decided: list[float] = field(default_factory=list)
    """To the ticket's ``ce_time`` (the handler created it, before its transaction committed)."""

    @staticmethod
    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {
            "p50_ms": percentile(ordered, 50),
            "p95_ms": percentile(ordered, 95),
            "p99_ms": percentile(ordered, 99),
            "max_ms": ordered[-1] if ordered else math.nan,
        }


# ---------------------------------------------------------------------------------------------
# baseline: the bare client


def _producer(endpoints: Endpoints) -> Any:
    # The same producer settings as the system's Bus.
    return AIOKafkaProducer(
        bootstrap_servers=endpoints.bootstrap_servers,
        client_id="ossbss-bench",
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )


async def _bounded(what: str, work: Awaitable[Any], seconds: float) -> Any:
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        raise BenchError(f"{what} did not finish within {seconds:.0f}s") from None


async def baseline(
    endpoints: Endpoints,
    alarms: Sequence[Outgoing],
    settings: Settings,
    tag: str,
    emit: Emit,
    noun: str = "alarms",
) -> dict[str, float]:
    """Produce ``alarms`` (or any pre-encoded records, called ``noun`` in progress lines) to a
    throw-away topic, read them back and decode them; events/s of each step."""
    topic = f"bench.baseline.{tag}"
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.bootstrap_servers, client_id="ossbss-bench")
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=BASELINE_PARTITIONS, replication_factor=1)]
        )
        try:
            emit(f"baseline: producing {len(alarms):,} {noun} to {topic} ...")
            producer = _producer(endpoints)
            await producer.start()
            try:
                # Metadata of the new topic first, so that the timing is of producing only.
                await _bounded("baseline topic metadata", producer.partitions_for(topic), STALL_SECONDS)
                started = time.perf_counter()
                futures = []
                for chunk in _chunks(alarms, FLOOD_CHUNK):
                    value_time, header_time = _stamps(datetime.now(UTC))
                    for alarm in chunk:
                        value, headers = alarm.stamped(value_time, header_time)
                        futures.append(
                            await producer.send(topic, value=value, key=alarm.key, headers=headers)
                        )
                await _bounded(
                    "baseline produce", asyncio.gather(*futures), STALL_SECONDS + len(alarms) / 1000
                )
                produce_seconds = time.perf_counter() - started
            finally:
                await producer.stop()

            emit("baseline: reading them back ...")
            records, consume_seconds = await _read_back(endpoints, topic, len(alarms), settings)
            started = time.perf_counter()
            for headers, value in records:
                decode(headers, value)
            decode_seconds = time.perf_counter() - started
        finally:
            with contextlib.suppress(KafkaError, OSError):
                await admin.delete_topics([topic])
    finally:
        await admin.close()
    return {
        "baseline_produce_per_s": len(alarms) / produce_seconds,
        "baseline_consume_per_s": len(alarms) / consume_seconds,
        "baseline_decode_per_s": len(alarms) / decode_seconds,
    }


async def _read_back(
    endpoints: Endpoints, topic: str, count: int, settings: Settings
) -> tuple[list[tuple[Headers, bytes]], float]:
    """Every record of ``topic`` with a plain ``getmany`` loop, and the seconds it took."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=endpoints.bootstrap_servers,
        client_id="ossbss-bench",
        enable_auto_commit=False,
        max_poll_records=settings.consumer_max_batch,
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            raise BenchError(f"baseline topic {topic} has no partitions")
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[tuple[Headers, bytes]] = []
        started = last_progress = time.perf_counter()
        while len(out) < count:
            batch = await consumer.getmany(timeout_ms=100, max_records=settings.consumer_max_batch)
            now = time.perf_counter()
            if batch:
                last_progress = now
            elif now - last_progress > STALL_SECONDS:
                raise BenchError(
                    f"baseline consume stalled: {len(out):,} of {count:,} records read, "
                    f"nothing new for {STALL_SECONDS:.0f}s"
                )
            for records in batch.values():
                out.extend((list(r.headers), r.value) for r in records)
        return out, time.perf_counter() - started
    finally:
        await consumer.stop()


# ---------------------------------------------------------------------------------------------
# system: alarms through fault management


class TicketWatch:
    """Reads ``oss.trouble-tickets`` from its current end and matches each
    ``TroubleTicketCreated`` to the alarm that caused it (through the correlation id)."""

    def __init__(self, bootstrap_servers: str, sent_at: dict[str, float]):
        # A short fetch wait: the broker may hold a fetch for its whole max wait even when
        # records are there, which would add to the measured wall time.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id="ossbss-bench-tickets",
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
        )
        self._sent_at = sent_at
        """Publish moment (epoch seconds) of each new alarm, by event id."""
        self.latencies = Latencies()
        self.seen: set[str] = set()
        """Event ids of the alarms whose ticket has been read."""

    async def start(self) -> None:
        """Connect and position at the end of the topic (call before publishing)."""
        await self._consumer.start()
        await self._consumer.topics()
        parts = [
            TopicPartition(TICKETS_TOPIC, p)
            for p in sorted(self._consumer.partitions_for_topic(TICKETS_TOPIC) or ())
        ]
        if not parts:
            raise BenchError(f"topic {TICKETS_TOPIC} has no partitions")
        self._consumer.assign(parts)
        end = await self._consumer.end_offsets(parts)
        for tp in parts:
            self._consumer.seek(tp, end[tp])

    async def stop(self) -> None:
        await self._consumer.stop()

    async def run(self) -> None:
        """Read tickets until cancelled."""
        while True:
            batch = await self._consumer.getmany(timeout_ms=50, max_records=5000)
            for records in batch.values():
                for record in records:
                    self._take(record)

    def _take(self, record: Any) -> None:
        headers: dict[str, bytes] = dict(record.headers)
        if headers.get("ce_type") != b"TroubleTicketCreated":
            return
        cause = headers.get("ce_correlationid", b"").decode()
        sent = self._sent_at.get(cause)
        if sent is None or cause in self.seen:
            return  # not one of ours, or a redelivery
        self.seen.add(cause)
        self.latencies.published.append(record.timestamp - sent * 1000.0)
        created = headers.get("ce_time")
        if created is not None:
            decided = datetime.fromisoformat(created.decode()).timestamp()
            self.latencies.decided.append((decided - sent) * 1000.0)


class Publisher:
    """Publishes the alarms to ``network.alarms`` (or any pre-encoded records to ``topic``),
    flooding or at a set rate."""

    def __init__(
        self, producer: Any, alarms: Sequence[Outgoing], rate: float | None, topic: str = ALARMS_TOPIC
    ):
        self._producer = producer
        self._alarms = alarms
        self._rate = rate
        self._topic = topic
        self.sent_at: dict[str, float] = {}
        """Publish moment (epoch seconds) of each tracked record (each new alarm, by event id)."""
        self.published = 0
        self.ends: dict[TopicPartition, int] = {}
        """Offset after the last alarm, per partition, once every alarm is acknowledged."""
        self.started = 0.0
        self.finished = 0.0
        """``time.perf_counter()`` at the first send and once the last one is acknowledged."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        burst = FLOOD_CHUNK if self._rate is None else max(1, round(self._rate * BURST_SECONDS))
        interval = 0.0 if self._rate is None else burst / self._rate
        futures = []
        self.started = time.perf_counter()
        origin = loop.time()
        for i, chunk in enumerate(_chunks(self._alarms, burst)):
            if interval:
                delay = origin + i * interval - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            now = datetime.now(UTC)
            value_time, header_time = _stamps(now)
            moment = now.timestamp()
            for alarm in chunk:
                value, headers = alarm.stamped(value_time, header_time)
                track = alarm.track
                if track is not None:
                    self.sent_at.setdefault(track, moment)
                futures.append(
                    await self._producer.send(self._topic, value=value, key=alarm.key, headers=headers)
                )
                self.published += 1
        for metadata in await asyncio.gather(*futures):
            tp = TopicPartition(metadata.topic, metadata.partition)
            self.ends[tp] = max(self.ends.get(tp, 0), metadata.offset + 1)
        self.finished = time.perf_counter()


async def _committed(admin: Any, ends: dict[TopicPartition, int], group: str = fault.COMPONENT) -> bool:
    """Whether consumer ``group`` has committed every partition up to its end in ``ends``."""
    offsets = await admin.list_consumer_group_offsets(group, partitions=list(ends))
    return all(tp in offsets and offsets[tp].offset >= end for tp, end in ends.items())


def _consumer_of(running: System, component: str) -> EventConsumer:
    for consumer in running.consumers:
        if consumer.component == component:
            return consumer
    raise BenchError(f"the system runs no {component} consumer")


async def through_fault(
    running: System, alarms: Sequence[Alarm], rate: float | None, emit: Emit
) -> dict[str, float]:
    """Publish ``alarms`` and wait until fault management has opened every ticket and committed
    every alarm; throughput, latencies and CPU of this process."""
    endpoints = running.endpoints
    expected = sum(1 for a in alarms if a.new)
    handler = _consumer_of(running, fault.COMPONENT)
    consumed_before = handler.stats.consumed
    dead_before = handler.stats.dead_lettered

    producer = _producer(endpoints)
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.bootstrap_servers, client_id="ossbss-bench")
    publisher = Publisher(producer, alarms, rate)
    watch = TicketWatch(endpoints.bootstrap_servers, publisher.sent_at)
    await producer.start()
    await admin.start()
    await watch.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        await _bounded("alarm topic metadata", producer.partitions_for(ALARMS_TOPIC), STALL_SECONDS)
        mode = "flood" if rate is None else f"{rate:,g}/s"
        emit(f"system: publishing {len(alarms):,} alarms to {ALARMS_TOPIC} ({mode}) ...")
        cpu_before = _cpu_seconds()
        tasks.append(asyncio.create_task(watch.run()))
        tasks.append(asyncio.create_task(publisher.run()))
        publishing = tasks[1]

        last_state: tuple[int, ...] = ()
        last_move = last_line = time.perf_counter()
        committed = False
        next_commit_check = 0.0
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            for task in tasks:
                if task.done() and task.exception() is not None:
                    raise BenchError(f"benchmark task failed: {task.exception()!r}")
            handled = handler.stats.consumed - consumed_before
            if publishing.done() and len(watch.seen) >= expected and now >= next_commit_check:
                committed = await _committed(admin, publisher.ends)
                next_commit_check = now + 0.05
                if committed:
                    done = time.perf_counter()
                    break
            state = (publisher.published, handled, len(watch.seen), int(publishing.done()))
            if state != last_state:
                last_state, last_move = state, now
            elif now - last_move > STALL_SECONDS:
                dead = handler.stats.dead_lettered - dead_before
                raise BenchError(
                    f"the system stopped progressing for {STALL_SECONDS:.0f}s: published "
                    f"{publisher.published:,}/{len(alarms):,}, handled by {fault.COMPONENT} {handled:,}, "
                    f"tickets {len(watch.seen):,}/{expected:,}, dead-lettered {dead:,}, "
                    f"offsets committed: {'yes' if committed else 'no'}"
                )
            if now - last_line >= PROGRESS_SECONDS:
                last_line = now
                emit(
                    f"  {now - publisher.started:6.1f}s  published {publisher.published:,}/{len(alarms):,}"
                    f"  handled {handled:,}  tickets {len(watch.seen):,}/{expected:,}"
                )
        cpu = _cpu_seconds() - cpu_before
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await watch.stop()
        await admin.close()
        await producer.stop()

    elapsed = done - publisher.started
    published_seconds = max(publisher.finished - publisher.started, 1e-9)
    figures: dict[str, float] = {
        "publish_per_s": len(alarms) / published_seconds,
        "e2e_seconds": elapsed,
        "e2e_per_s": len(alarms) / elapsed,
        "tickets": float(len(watch.seen)),
        "dead_lettered": float(handler.stats.dead_lettered - dead_before),
        "process_cpu_percent": 100.0 * cpu / elapsed,
        "process_cpu_us_per_alarm": 1e6 * cpu / len(alarms),
    }
    figures.update({f"latency_{k}": v for k, v in Latencies.summary(watch.latencies.published).items()})
    figures.update({f"decided_{k}": v for k, v in Latencies.summary(watch.latencies.decided).items()})
    return figures


# ---------------------------------------------------------------------------------------------
# report


def _row(figures: dict[str, float], label: str, per_s: float | None, prefix: str | None = None) -> str:
    """One table row: a rate, then the ``{prefix}_{p50,p95,p99,max}_ms`` latencies (or a dash)."""

    def ms(value: float) -> str:
        return f"{'-':>9}" if math.isnan(value) else f"{value:>9,.1f}"

    line = f"{label:<26}" + (f"{per_s:>12,.0f}" if per_s is not None else f"{'-':>12}")
    if prefix is None:
        return line + f"{'-':>9}"
    return line + "".join(ms(figures[f"{prefix}_{p}"]) for p in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))


def table(figures: dict[str, float]) -> list[str]:
    """The side-by-side report of :func:`bench_alarms`' figures."""

    def row(label: str, per_s: float | None, prefix: str | None = None) -> str:
        return _row(figures, label, per_s, prefix)

    count, new = int(figures["count"]), int(figures["new_alarms"])
    mode = "flood" if figures["rate"] == 0 else f"paced at {figures['rate']:,g}/s"
    return [
        f"alarms: {count:,} ({new:,} new, {count - new:,} repeats), mode {mode}",
        f"{'':<26}{'events/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        row("baseline produce", figures["baseline_produce_per_s"]),
        row("baseline consume", figures["baseline_consume_per_s"]),
        row("baseline decode", figures["baseline_decode_per_s"]),
        row("alarms published", figures["publish_per_s"]),
        row("fault handling (e2e)", figures["e2e_per_s"], "latency"),
        row("  ticket decided", None, "decided"),
        f"{int(figures['tickets']):,} tickets in {figures['e2e_seconds']:.2f}s, "
        f"{int(figures['dead_lettered'])} dead-lettered; this process used "
        f"{figures['process_cpu_percent']:.0f}% of a core ({figures['process_cpu_us_per_alarm']:,.0f} us CPU per alarm)",
        f"peak RSS {figures['peak_rss_mb']:,.0f} MB",
    ]


async def bench_alarms(
    count: int, settings: Settings, *, rate: float | None = None, emit: Emit = print
) -> dict[str, float]:
    """Benchmark alarm handling with ``count`` alarms: the bare client's baseline, then the
    alarms through the running system, flooding (``rate=None``) or at ``rate`` alarms per
    second. Prints a report through ``emit`` and returns its figures.

    Uses the broker and database named by ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``, or
    embedded throw-away ones. Raises :class:`BenchError` when the system stops progressing for
    ``STALL_SECONDS``.

    The figures: ``count``, ``new_alarms``, ``rate`` (0 for flood); ``baseline_produce_per_s``,
    ``baseline_consume_per_s``, ``baseline_decode_per_s``; ``publish_per_s`` (alarms published
    to the system); ``e2e_seconds`` and ``e2e_per_s`` (first publish until every ticket is
    read back and every alarm offset committed); ``latency_{p50,p95,p99,max}_ms`` (alarm
    event time to the ticket's Kafka timestamp) and ``decided_{p50,p95,p99,max}_ms`` (to the
    ticket's ``ce_time``); ``tickets``, ``dead_lettered``; ``process_cpu_percent`` and
    ``process_cpu_us_per_alarm`` (this process, benchmark included, during the system run);
    ``peak_rss_mb``.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if rate is not None and not rate > 0:
        raise ValueError("rate must be positive (or None to flood)")
    tag = uuid.uuid4().hex[:6]
    emit(f"encoding {count:,} alarms ...")
    alarms = workload(count, tag)
    figures: dict[str, float] = {
        "count": float(count),
        "new_alarms": float(sum(1 for a in alarms if a.new)),
        "rate": 0.0 if rate is None else float(rate),
    }
    async with infrastructure(settings, ephemeral=True) as endpoints:
        emit("starting the system ...")
        async with system(settings, endpoints, simulate=False) as running:
            figures.update(await baseline(endpoints, alarms, settings, tag, emit))
            figures.update(await through_fault(running, alarms, rate, emit))
            figures["peak_rss_mb"] = peak_rss_mb()
    for line in table(figures):
        emit(line)
    return figures


# =============================================================================================
# usage rating
#
# How many usage records per second ``bss-rating`` rates, and how long each waits, next to the
# bare client on the same records. The workload is pre-encoded ``UsageRecorded`` records on the
# demo network's services (voice, data and SMS in mediation's mix, start times spread over the
# last day so that peak and off-peak bands both occur), with the untidiness of mediation: one
# record in ``USAGE_DUPLICATE_EVERY`` repeats the usage id of an earlier one (alternately the
# same event sent again, caught by the consumer's event-id check, and a new event re-recording
# the usage, caught by rating's usage-id check), and one in ``USAGE_STRAY_EVERY`` is for a
# service nobody holds (rated as rejected). The run ends when ``bss-rating`` has committed every
# record's offset and ``rated_usage`` holds one row per distinct usage id. Latency runs from the
# publish moment to the row's ``received_at``, which is ``now()`` of the rating transaction: the
# moment that transaction began, not its commit.

USAGE_TOPIC = "network.usage"
USAGE_DUPLICATE_EVERY = 100
"""One usage record in this many repeats the usage id of an earlier one."""
USAGE_STRAY_EVERY = 100
"""One usage record in this many is for a service no account holds."""
USAGE_SPREAD_SECONDS = 86_400.0
"""Usage start times are spread over this many seconds before the workload is built."""
STRAY_SERVICE = "SVC-BENCH-NOBODY"


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One encoded ``UsageRecorded``, sent as encoded."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    usage_id: str
    first: bool
    """Whether it is the first record of its usage id (and so adds a row to ``rated_usage``)."""
    stray: bool
    """Whether it is for a service no account holds (and so is rejected)."""

    @property
    def track(self) -> str | None:
        """First records are tracked by usage id: the key of ``rated_usage``."""
        return self.usage_id if self.first else None

    def stamped(self, value_time: bytes, header_time: bytes) -> tuple[bytes, Headers]:
        """The record as encoded: a usage's times are its own, not the publish moment."""
        return self.value, list(self.headers)


def usage_workload(count: int, service_ids: Sequence[str], seed: int = 7) -> list[UsageRecord]:
    """``count`` usage records on ``service_ids``: see the section's comment for the mix."""
    if not service_ids:
        raise BenchError("the network file has no services to record usage on")
    rng = random.Random(seed)
    now = datetime.now(UTC)
    # One copy of each key and header that repeats across records (all but the id and time):
    # it keeps the workload, held for the whole run, out of the memory figures.
    shared: dict[Any, Any] = {}
    firsts: list[UsageRecord] = []
    out: list[UsageRecord] = []

    def encoded(event: Envelope[EventPayload], first: bool) -> UsageRecord:
        if not isinstance(event.data, UsageRecorded):
            raise BenchError(f"mediation made a {event.type}, not a UsageRecorded")
        key, value, headers = encode(event)
        return UsageRecord(
            key=shared.setdefault(key, key),
            value=value,
            headers=tuple(shared.setdefault(h, h) for h in headers),
            usage_id=event.data.usage_id,
            first=first,
            stray=event.data.service_id == STRAY_SERVICE,
        )

    for i in range(count):
        if firsts and i % USAGE_DUPLICATE_EVERY == USAGE_DUPLICATE_EVERY - 1:
            record = rng.choice(firsts)
            if (i // USAGE_DUPLICATE_EVERY) % 2 == 0:
                out.append(replace(record, first=False))  # the same event, sent again
            else:  # the same usage, recorded again as a new event
                u = UsageRecorded.model_validate_json(record.value)
                again = mediation.usage_event(
                    u.service_id, u.usage_kind, u.quantity, u.start_time, usage_id=u.usage_id
                )
                out.append(encoded(again, first=False))
            continue
        stray = i % USAGE_STRAY_EVERY == USAGE_STRAY_EVERY // 2
        at = now - timedelta(seconds=rng.uniform(0.0, USAGE_SPREAD_SECONDS))
        record = encoded(
            mediation.random_usage(rng, STRAY_SERVICE if stray else rng.choice(service_ids), at), first=True
        )
        firsts.append(record)
        out.append(record)
    return out


async def _rated_rows(pool: asyncpg.Pool) -> int:
    count = await pool.fetchval("SELECT count(*) FROM rated_usage")
    return int(count)


async def through_rating(
    running: System, pool: asyncpg.Pool, records: Sequence[UsageRecord], rate: float | None, emit: Emit
) -> dict[str, float]:
    """Publish ``records`` and wait until ``bss-rating`` has committed every offset and
    ``rated_usage`` holds a row per distinct usage id; throughput, outcome, latencies and CPU of
    this process."""
    endpoints = running.endpoints
    distinct = sum(1 for r in records if r.first)
    handler = _consumer_of(running, rating.COMPONENT)
    before = (handler.stats.consumed, handler.stats.dead_lettered, handler.stats.duplicates)
    batches_before = handler.stats.batches
    rows_before = await _rated_rows(pool)

    producer = _producer(endpoints)
    admin = AIOKafkaAdminClient(bootstrap_servers=endpoints.bootstrap_servers, client_id="ossbss-bench")
    publisher = Publisher(producer, records, rate, USAGE_TOPIC)
    await producer.start()
    await admin.start()
    publishing: asyncio.Task[None] | None = None
    try:
        await _bounded("usage topic metadata", producer.partitions_for(USAGE_TOPIC), STALL_SECONDS)
        mode = "flood" if rate is None else f"{rate:,g}/s"
        emit(f"system: publishing {len(records):,} usage records to {USAGE_TOPIC} ({mode}) ...")
        cpu_before = _cpu_seconds()
        publishing = asyncio.create_task(publisher.run())

        rows = 0
        last_state: tuple[int, ...] = ()
        last_move = last_line = time.perf_counter()
        last_rows, committed = 0, False
        next_commit_check = 0.0
        while True:
            await asyncio.sleep(0.01)
            now = time.perf_counter()
            if publishing.done() and publishing.exception() is not None:
                raise BenchError(f"publishing failed: {publishing.exception()!r}")
            handled = handler.stats.consumed - before[0]
            if publishing.done() and now >= next_commit_check:
                next_commit_check = now + 0.05
                committed = await _committed(admin, publisher.ends, rating.COMPONENT)
                if committed:
                    rows = await _rated_rows(pool) - rows_before
                    if rows >= distinct:
                        done = time.perf_counter()
                        break
                    # Offsets are committed only after the transaction: these rows will not come.
                    raise BenchError(
                        f"{rating.COMPONENT} committed every offset but rated_usage holds {rows:,} of "
                        f"{distinct:,} new rows; dead-lettered {handler.stats.dead_lettered - before[1]:,}"
                    )
            if now - last_line >= PROGRESS_SECONDS:
                rows = await _rated_rows(pool) - rows_before
                emit(
                    f"  {now - publisher.started:6.1f}s  published {publisher.published:,}/{len(records):,}"
                    f"  handled {handled:,}  rated_usage rows {rows:,}/{distinct:,}"
                    f"  ({(rows - last_rows) / (now - last_line):,.0f}/s)"
                )
                last_line, last_rows = now, rows
            state = (publisher.published, handled, rows, int(publishing.done()))
            if state != last_state:
                last_state, last_move = state, now
            elif now - last_move > STALL_SECONDS:
                raise BenchError(
                    f"the system stopped progressing for {STALL_SECONDS:.0f}s: published "
                    f"{publisher.published:,}/{len(records):,}, handled by {rating.COMPONENT} {handled:,}, "
                    f"rated_usage rows {rows:,}/{distinct:,}, "
                    f"dead-lettered {handler.stats.dead_lettered - before[1]:,}, "
                    f"offsets committed: {'yes' if committed else 'no'}"
                )
        cpu = _cpu_seconds() - cpu_before
    finally:
        if publishing is not None:
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)
        await admin.close()
        await producer.stop()

    emit("system: matching rated_usage rows to their publish moments ...")
    rated = rejected = 0
    latencies: list[float] = []
    async with pool.acquire() as conn:
        for row in await conn.fetch(
            "SELECT usage_id, state, received_at FROM rated_usage WHERE usage_id = ANY($1::text[])",
            list(publisher.sent_at),
        ):
            if row["state"] == "rated":
                rated += 1
            else:
                rejected += 1
            latencies.append((row["received_at"].timestamp() - publisher.sent_at[row["usage_id"]]) * 1000.0)

    elapsed = done - publisher.started
    figures: dict[str, float] = {
        "publish_per_s": len(records) / max(publisher.finished - publisher.started, 1e-9),
        "e2e_seconds": elapsed,
        "e2e_per_s": len(records) / elapsed,
        "e2e_distinct_per_s": distinct / elapsed,
        "rated": float(rated),
        "rejected": float(rejected),
        "dead_lettered": float(handler.stats.dead_lettered - before[1]),
        "seen_event_ids": float(handler.stats.duplicates - before[2]),
        "batches": float(handler.stats.batches - batches_before),
        "process_cpu_percent": 100.0 * cpu / elapsed,
        "process_cpu_us_per_record": 1e6 * cpu / len(records),
    }
    figures.update({f"latency_{k}": v for k, v in Latencies.summary(latencies).items()})
    return figures


def usage_table(figures: dict[str, float]) -> list[str]:
    """The side-by-side report of :func:`bench_usage`' figures."""

    def row(label: str, per_s: float | None, prefix: str | None = None) -> str:
        return _row(figures, label, per_s, prefix)

    count, distinct = int(figures["count"]), int(figures["distinct"])
    mode = "flood" if figures["rate"] == 0 else f"paced at {figures['rate']:,g}/s"
    batches = int(figures["batches"])
    return [
        f"usage: {count:,} records ({distinct:,} distinct, {count - distinct:,} duplicates, "
        f"{int(figures['strays']):,} for an unknown service), mode {mode}",
        f"{'':<26}{'records/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}",
        row("baseline produce", figures["baseline_produce_per_s"]),
        row("baseline consume", figures["baseline_consume_per_s"]),
        row("baseline decode", figures["baseline_decode_per_s"]),
        row("usage published", figures["publish_per_s"]),
        row("usage rating (e2e)", figures["e2e_per_s"], "latency"),
        row("  distinct usage ids", figures["e2e_distinct_per_s"]),
        f"{int(figures['rated']):,} rated, {int(figures['rejected']):,} rejected in "
        f"{figures['e2e_seconds']:.2f}s, {int(figures['dead_lettered'])} dead-lettered, "
        f"{int(figures['seen_event_ids']):,} skipped as seen event ids; "
        f"{batches:,} batches ({count / max(batches, 1):,.0f} records each)",
        f"this process used {figures['process_cpu_percent']:.0f}% of a core "
        f"({figures['process_cpu_us_per_record']:,.0f} us CPU per record); peak RSS "
        f"{figures['peak_rss_mb']:,.0f} MB ({figures['peak_rss_before_mb']:,.0f} MB before the system run)",
        "latency: publish to rated_usage.received_at, i.e. now() of the rating transaction "
        "(when it began, not when it committed)",
    ]


async def bench_usage(
    count: int, settings: Settings, *, rate: float | None = None, emit: Emit = print
) -> dict[str, float]:
    """Benchmark usage rating with ``count`` usage records: the bare client's baseline, then the
    records through the running system, flooding (``rate=None``) or at ``rate`` records per
    second. Prints a report through ``emit`` and returns its figures.

    Uses the broker and database named by ``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL``, or
    embedded throw-away ones. Raises :class:`BenchError` when the system stops progressing for
    ``STALL_SECONDS``.

    The figures: ``count``, ``distinct`` (usage ids), ``strays`` (records for an unknown
    service), ``rate`` (0 for flood); ``baseline_produce_per_s``, ``baseline_consume_per_s``,
    ``baseline_decode_per_s``; ``publish_per_s``; ``e2e_seconds``, ``e2e_per_s`` and
    ``e2e_distinct_per_s`` (first publish until every offset is committed and every distinct
    usage has its ``rated_usage`` row); ``latency_{p50,p95,p99,max}_ms`` (publish moment to
    ``received_at``); ``rated``, ``rejected``, ``dead_lettered``, ``seen_event_ids`` (records
    the consumer skipped as already processed events), ``batches``; ``process_cpu_percent`` and
    ``process_cpu_us_per_record`` (this process, benchmark included, during the system run);
    ``peak_rss_mb`` and ``peak_rss_before_mb`` (before the records went to the system: the
    workload and the baseline's read-back).
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    if rate is not None and not rate > 0:
        raise ValueError("rate must be positive (or None to flood)")
    tag = uuid.uuid4().hex[:6]
    service_ids = mediation.services_of(load_network(settings.network_file))
    emit(f"encoding {count:,} usage records on {len(service_ids)} services ...")
    records = usage_workload(count, service_ids)
    figures: dict[str, float] = {
        "count": float(count),
        "distinct": float(sum(1 for r in records if r.first)),
        "strays": float(sum(1 for r in records if r.stray and r.first)),
        "rate": 0.0 if rate is None else float(rate),
    }
    async with infrastructure(settings, ephemeral=True) as endpoints:
        emit("starting the system ...")
        async with system(settings, endpoints, simulate=False) as running:
            figures.update(await baseline(endpoints, records, settings, tag, emit, noun="usage records"))
            pool = await db.create_pool(
                endpoints.database_url, domain_databases(settings)["bss"], min_size=1, max_size=2
            )
            try:
                figures["peak_rss_before_mb"] = peak_rss_mb()
                figures.update(await through_rating(running, pool, records, rate, emit))
            finally:
                await pool.close()
            figures["peak_rss_mb"] = peak_rss_mb()
    for line in usage_table(figures):
        emit(line)
    return figures
