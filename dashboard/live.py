"""The live operations dashboard: the page, the server-pushed stream it follows, and the snapshot
endpoints it starts from.

Two background tasks feed every connected page. One tails every declared topic from its end,
without a consumer group (as ``ossbss tail`` does), and fans the decoded events out; the other
samples the topics' end offsets and every consumer group's committed offsets every two seconds.
Each page gets both over one Server-Sent Events stream, through a bounded buffer of its own: a
slow page loses its oldest messages and never holds up the others, and is told how many it lost
(a ``gap``), as is a page that reconnects after more than the kept history went by. The panes
themselves come from the snapshot endpoints, which read the domains' tables, and the page reloads
a pane when an event that changes it passes by: what it shows is the database's state, not a
guess.

The stream needs no login, so it carries ids, types, states and severities, never free text that
may hold a customer's words or a subscriber's number (:data:`PRIVATE_FIELDS`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Header, HTTPException
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from dashboard import views
from dashboard.api.tmf import EdgeDep
from dashboard.context import Edge
from events import DecodeError, decode
from runtime.topology import ANY_TYPE

log = structlog.get_logger(__name__)

router = APIRouter(tags=["dashboard"])

STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
HISTORY = 300
"""Bus events kept for a page that connects (or reconnects) later."""
CLIENT_BUFFER = 500
"""Messages a page may fall behind by before it loses the oldest."""
SAMPLES = 90
"""Metric samples kept: three minutes of chart at one sample every two seconds."""
SAMPLE_INTERVAL = 2.0
KEEPALIVE = 15.0
PER_POLL = 200
"""Most events decoded per poll of the tail: in a flood the page shows the latest of each poll
and a count of the ones it skipped, so the dashboard never competes with the consumers."""
RECENT_PER_PARTITION = 5
"""Events of each partition read back when a page opens after nobody was watching."""
PER_POLL_UNWATCHED = 20
"""Most events decoded per poll while no page is open: enough to keep the recent history a page
gets when it connects, at a tenth of the cost."""


# Fan-out --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One Server-Sent Event: its name (``bus``, ``gap`` or ``metrics``), its JSON data, and for
    bus events and gaps the sequence number a reconnecting page resumes after. A gap also says how
    many bus events it stands for (``skipped``; None when that is not known)."""

    event: str
    data: str
    seq: int | None = None
    skipped: int | None = None

    def frame(self) -> str:
        """The message in ``text/event-stream`` framing."""
        head = f"id: {self.seq}\n" if self.seq is not None else ""
        return f"{head}event: {self.event}\ndata: {self.data}\n\n"

    def lost_events(self) -> int:
        """How many bus events are lost when this message is: one for a bus event, its count for
        a gap, none for metrics."""
        if self.event == "bus":
            return 1
        if self.event == "gap":
            return self.skipped or 0
        return 0


class GapReason(StrEnum):
    """Why a page did not get some bus events."""

    BURST = "burst"
    """The tail showed only the latest of a flood (every page misses the same ones)."""
    BEHIND = "behind"
    """This page's buffer overflowed: it took its messages too slowly."""
    DISCONNECTED = "disconnected"
    """This page reconnected after more events than the kept history went by."""


def gap_message(seq: int, skipped: int | None, reason: GapReason, **extra: Any) -> Message:
    """A ``gap`` numbered ``seq``: a page that resumes after it resumes after the events it
    stands for."""
    data = {"seq": seq, "skipped": skipped, "reason": reason.value, **extra}
    return Message("gap", json.dumps(data, default=str), seq, skipped)


class Subscriber:
    """One connected page: a bounded buffer that drops its oldest message when full, and tells
    the page with a ``gap`` how many bus events it lost that way."""

    def __init__(self, capacity: int = CLIENT_BUFFER):
        self._pending: deque[Message] = deque(maxlen=capacity)
        self._wake = asyncio.Event()
        self._closed = False
        self.dropped = 0
        self._lost = 0
        self._lost_seq: int | None = None
        """Sequence number of the newest bus event (or gap) lost since the last take."""

    def offer(self, message: Message) -> None:
        """Queue ``message`` without ever waiting."""
        if len(self._pending) == self._pending.maxlen:
            self._lose(self._pending[0])
        self._pending.append(message)
        self._wake.set()

    def _lose(self, message: Message) -> None:
        """Count the oldest message, about to be dropped for a newer one."""
        self.dropped += 1
        if message.seq is not None:
            self._lost += message.lost_events()
            self._lost_seq = message.seq

    def close(self) -> None:
        """End the page's stream once what is queued has been taken."""
        self._closed = True
        self._wake.set()

    async def take(self, timeout: float) -> list[Message] | None:
        """Everything queued, waiting up to ``timeout`` seconds for something to arrive; None once
        closed and drained."""
        if not self._pending and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
        if self._closed and not self._pending:
            return None
        batch = list(self._pending)
        self._pending.clear()
        if self._lost_seq is not None:
            # What was dropped came before everything still queued.
            batch.insert(0, gap_message(self._lost_seq, self._lost, GapReason.BEHIND))
            self._lost, self._lost_seq = 0, None
        return batch


class LiveFeed:
    """What the background tasks publish and the pages subscribe to: the recent bus events, the
    recent metric samples and the connected pages."""

    def __init__(self, history: int = HISTORY, samples: int = SAMPLES, client_buffer: int = CLIENT_BUFFER):
        self._history: deque[Message] = deque(maxlen=history)
        self._samples: deque[MetricsSample] = deque(maxlen=samples)
        self._subscribers: set[Subscriber] = set()
        self.watched = asyncio.Event()
        """Set while at least one page is open: the tail reads the bus only then."""
        self._client_buffer = client_buffer
        # Numbered from the clock, so that a page reconnecting to a restarted server resumes cleanly.
        self._first_seq = time.time_ns() // 1000
        self._next_seq = self._first_seq
        self.tailing = asyncio.Event()
        """Set while the tail is positioned on every declared topic."""
        self.closed = False
        """Set when the server shuts down: every page's stream ends, so that none holds it up."""

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def samples(self) -> list[MetricsSample]:
        return list(self._samples)

    def _number(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def publish(self, event: str, payload: dict[str, Any]) -> Message:
        """Number, keep and fan out one bus event (``bus``)."""
        seq = self._number()
        return self._keep(Message(event, json.dumps({"seq": seq, **payload}, default=str), seq))

    def publish_gap(self, skipped: int, reason: GapReason = GapReason.BURST, **extra: Any) -> Message:
        """Number, keep and fan out a notice of ``skipped`` bus events no page gets (``gap``)."""
        return self._keep(gap_message(self._number(), skipped, reason, **extra))

    def _keep(self, message: Message) -> Message:
        self._history.append(message)
        self._fan_out(message)
        return message

    def publish_sample(self, sample: MetricsSample) -> None:
        """Keep and fan out one metrics sample."""
        self._samples.append(sample)
        self._fan_out(Message("metrics", sample.model_dump_json()))

    def _fan_out(self, message: Message) -> None:
        for subscriber in self._subscribers:
            subscriber.offer(message)

    def subscribe(self, after: int | None = None) -> Subscriber:
        """A new page's buffer, holding the kept events after sequence number ``after`` (all of
        them for a new page, the missed ones for a page that reconnects), after a gap when some
        it missed are no longer kept."""
        subscriber = Subscriber(self._client_buffer)
        missed = self._missed(after) if after is not None else None
        if missed is not None:
            subscriber.offer(missed)
        for message in self._history:
            if after is None or (message.seq is not None and message.seq > after):
                subscriber.offer(message)
        if self.closed:
            subscriber.close()
        else:
            self._subscribers.add(subscriber)
            self.watched.set()
        return subscriber

    def _missed(self, after: int) -> Message | None:
        """The gap of a page resuming after ``after`` when the kept history no longer reaches
        back to it: how many events it missed, or None if it last saw an earlier run of the
        server (whose count is not known here)."""
        oldest = next((m.seq for m in self._history if m.seq is not None), self._next_seq)
        if after >= oldest - 1:
            return None
        skipped = oldest - 1 - after if after >= self._first_seq - 1 else None
        return gap_message(oldest - 1, skipped, GapReason.DISCONNECTED)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        if not self._subscribers:
            self.watched.clear()

    def reopen(self) -> None:
        """Keep the streams of pages that connect from now on open (the tail runs again)."""
        self.closed = False

    def close(self) -> None:
        """End every page's stream, and those of pages that connect from now on."""
        self.closed = True
        for subscriber in self._subscribers:
            subscriber.close()
        self._subscribers.clear()


_feeds: dict[int, LiveFeed] = {}


def feed_of(edge: Edge) -> LiveFeed:
    """The one feed of a running edge, shared by its background tasks and its routes."""
    feed = _feeds.get(id(edge))
    if feed is None:
        feed = _feeds[id(edge)] = LiveFeed()
        weakref.finalize(edge, _feeds.pop, id(edge), None)
    return feed


# The bus tail ---------------------------------------------------------------------------------


_SKIPPED_FIELDS = frozenset({"notification_id", "related_entity", "description", "alarm_details"})

PRIVATE_FIELDS = frozenset({"alarm_details", "cancellation_reason", "termination_reason", "note"})
"""Payload fields the stream leaves out: free text that a probe, a technician or a customer
filled, which may hold a subscriber's number or a customer's words (the stream needs no login)."""


def public_fields(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A payload as the stream shows it: without :data:`PRIVATE_FIELDS`, nor the reason of a
    cancelled product order (the customer's own words)."""
    kept = {k: v for k, v in data.items() if k not in PRIVATE_FIELDS}
    if event_type == "ProductOrderStateChanged" and kept.get("state") == "cancelled":
        kept.pop("reason", None)
    return kept


def describe(data: dict[str, Any], limit: int = 240) -> str:
    """A one-line summary of a payload, for the stream."""
    parts = []
    for key, value in data.items():
        if key in _SKIPPED_FIELDS or value is None:
            continue
        if isinstance(value, list):
            value = "→".join(map(str, value)) if key.endswith("path") else ",".join(map(str, value)) or "-"
        elif isinstance(value, dict):
            continue
        parts.append(f"{key}={value}")
    line = " ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def bus_event(record: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """A Kafka record as the page shows it: the decoded CloudEvent, a dead letter, or an
    undecodable record."""
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    if "dlq_reason" in headers:
        return {**where, **_dead_letter(record, headers)}
    try:
        event = decode(record.headers, record.value)
    except DecodeError as exc:
        return {
            **where,
            "type": "Undecodable",
            "time": _record_time(record),
            "key": None,
            "severity": None,
            "summary": exc.reason,
            "data": {},
        }
    data = public_fields(event.type, event.data.model_dump(mode="json"))
    return {
        **where,
        "id": event.id,
        "type": event.type,
        "time": event.time.isoformat(),
        "key": event.partitionkey,
        "subject": event.subject,
        "correlationid": event.correlationid,
        "severity": data.get("perceived_severity") or data.get("severity"),
        "summary": describe(data),
        "data": data,
    }


def _dead_letter(record: ConsumerRecord[bytes, bytes], headers: dict[str, str]) -> dict[str, Any]:
    """A dead letter: where it came from, which group gave up on it, and why."""
    origin = f"{headers.get('dlq_topic')}[{headers.get('dlq_partition')}]@{headers.get('dlq_offset')}"
    return {
        "type": "DeadLetter",
        "time": _record_time(record),
        "key": record.key.decode(errors="replace") if record.key else None,
        "severity": None,
        "summary": f"from {origin} by {headers.get('dlq_consumer_group')}: {headers['dlq_reason']}",
        "data": {k[4:]: v for k, v in headers.items() if k.startswith("dlq_")},
    }


def _record_time(record: ConsumerRecord[bytes, bytes]) -> str:
    return datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat()


async def _declared_partitions(
    consumer: AIOKafkaConsumer, topics: Iterable[str], attempts: int = 10
) -> list[TopicPartition]:
    """Every partition of the declared topics, asking the broker again while some are unknown."""
    wanted = list(topics)
    known: dict[str, set[int]] = {}
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep(1.0)
        await consumer.topics()  # metadata of every topic
        known = {t: consumer.partitions_for_topic(t) or set() for t in wanted}
        if all(known.values()):
            break
    missing = [t for t, parts in known.items() if not parts]
    if missing:
        log.warning("dashboard cannot follow topics missing on the broker", topics=missing)
    return [TopicPartition(t, p) for t, parts in known.items() for p in sorted(parts)]


async def tail_bus(edge: Edge, feed: LiveFeed, poll_ms: int = 250) -> None:
    """Follow every declared topic from its current end and publish what arrives to the feed."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=edge.bootstrap_servers, client_id="ossbss-dashboard-tail", enable_auto_commit=False
    )
    feed.reopen()
    await consumer.start()
    try:
        partitions = await _declared_partitions(consumer, edge.topology.topics)
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        feed.tailing.set()
        log.info("dashboard tailing", topics=len(edge.topology.topics), partitions=len(partitions))
        while True:
            if not feed.watched.is_set():
                # Nobody is watching: read nothing until a page opens, then start from the
                # latest few events of each partition, so that it sees what just happened.
                consumer.pause(*partitions)
                await feed.watched.wait()
                await _rewind(consumer, partitions, RECENT_PER_PARTITION)
                consumer.resume(*partitions)
            batch = await consumer.getmany(timeout_ms=poll_ms, max_records=20 * PER_POLL)
            publish_records(feed, [r for records in batch.values() for r in records])
    except asyncio.CancelledError:
        # Cancelled only when the process stops: let the pages' streams end before the server
        # waits for its connections to close.
        feed.close()
        raise
    finally:
        feed.tailing.clear()
        with contextlib.suppress(KafkaError, asyncio.CancelledError):
            await consumer.stop()


async def _rewind(consumer: AIOKafkaConsumer, partitions: list[TopicPartition], recent: int) -> None:
    """Position each partition ``recent`` events before its end, but never back over what the
    feed has had already (those events keep their sequence numbers in the history)."""
    if not partitions:
        return
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        consumer.seek(tp, max(await consumer.position(tp), ends.get(tp, 0) - recent))


def publish_records(feed: LiveFeed, records: list[ConsumerRecord[bytes, bytes]]) -> None:
    """Publish a poll's records in time order, only the latest ``PER_POLL`` in a flood (fewer
    while nobody watches)."""
    records.sort(key=lambda r: r.timestamp)
    skipped = len(records) - (PER_POLL if feed.subscribers else PER_POLL_UNWATCHED)
    if skipped > 0:
        feed.publish_gap(skipped, GapReason.BURST, time=_record_time(records[skipped - 1]))
        records = records[skipped:]
    for record in records:
        feed.publish("bus", bus_event(record))


# Lag and rates --------------------------------------------------------------------------------


class GroupLag(BaseModel):
    """How far a consumer group is behind on the topics it consumes."""

    model_config = ConfigDict(frozen=True)

    lag: int = Field(description="End offsets minus committed offsets, summed over its partitions.")
    committed: bool = Field(description="Whether the group has committed an offset yet.")


class MetricsSample(BaseModel):
    """One sample of the bus: events per second on each topic, and each group's lag."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    rates: dict[str, float] = Field(description="Events per second since the previous sample, by topic.")
    lags: dict[str, GroupLag] = Field(description="Lag of every consumer group topology.yaml declares.")


class OffsetSampler:
    """Reads the declared topics' end offsets and the declared groups' committed offsets."""

    def __init__(self, edge: Edge):
        self._topics = list(edge.topology.topics)
        self._groups = {name: c.consumes for name, c in edge.topology.components.items() if c.consumes}
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=edge.bootstrap_servers,
            client_id="ossbss-dashboard-metrics",
            enable_auto_commit=False,
        )
        self._admin = AIOKafkaAdminClient(
            bootstrap_servers=edge.bootstrap_servers, client_id="ossbss-dashboard-metrics"
        )
        self._partitions: list[TopicPartition] = []
        self._last: tuple[float, dict[str, int]] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._admin.start()
        self._partitions = await _declared_partitions(self._consumer, self._topics)

    async def stop(self) -> None:
        """Stop both clients, whichever of them started."""
        with contextlib.suppress(KafkaError):
            await self._admin.close()
        try:
            await self._consumer.stop()
        except KafkaError:
            pass
        except asyncio.CancelledError:
            # A consumer without a group may end its stop with the cancellation of a task of its
            # own that had not run yet; only a cancellation of this task goes on.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    async def sample(self) -> MetricsSample:
        """Rates since the previous sample (zero on the first), and every group's lag now."""
        now = time.monotonic()
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(self._partitions)
        begins: dict[TopicPartition, int] = await self._consumer.beginning_offsets(self._partitions)
        totals = {t: 0 for t in self._topics}
        for tp, end in ends.items():
            totals[tp.topic] += end
        rates = {t: 0.0 for t in self._topics}
        if self._last is not None and now > self._last[0]:
            elapsed = now - self._last[0]
            rates = {t: max(0.0, (totals[t] - self._last[1].get(t, 0)) / elapsed) for t in self._topics}
        self._last = (now, totals)
        lags = await asyncio.gather(*(self._lag(g, set(ts), ends, begins) for g, ts in self._groups.items()))
        return MetricsSample(
            at=datetime.now(UTC), rates=rates, lags=dict(zip(self._groups, lags, strict=True))
        )

    async def _lag(
        self,
        group: str,
        topics: set[str],
        ends: dict[TopicPartition, int],
        begins: dict[TopicPartition, int],
    ) -> GroupLag:
        """A group's lag. A partition the group has not committed on counts from its beginning,
        where a group that joins starts reading (``auto_offset_reset=earliest``)."""
        partitions = [tp for tp in ends if tp.topic in topics]
        # Always name the partitions: asking Tansu for all of a group's offsets breaks the connection.
        committed = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
        lag, any_commit = 0, False
        for tp in partitions:
            mark = committed.get(tp)
            position = mark.offset if mark is not None and mark.offset >= 0 else begins.get(tp, 0)
            any_commit = any_commit or (mark is not None and mark.offset >= 0)
            lag += max(0, ends[tp] - position)
        return GroupLag(lag=lag, committed=any_commit)


async def sample_metrics(edge: Edge, feed: LiveFeed, every: float = SAMPLE_INTERVAL) -> None:
    """Publish a metrics sample every ``every`` seconds."""
    sampler = OffsetSampler(edge)
    try:
        # Inside the try: a start that fails half-way (the admin client after the consumer)
        # still stops what it started.
        await sampler.start()
        while True:
            started = time.monotonic()
            feed.publish_sample(await sampler.sample())
            await asyncio.sleep(max(0.1, every - (time.monotonic() - started)))
    finally:
        await sampler.stop()


def background(edge: Edge) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Long-running tasks the dashboard needs (name, coroutine function), run under supervision."""
    feed = feed_of(edge)
    return [
        ("dashboard-tail", functools.partial(tail_bus, edge, feed)),
        ("dashboard-metrics", functools.partial(sample_metrics, edge, feed)),
    ]


# Snapshots ------------------------------------------------------------------------------------


class TopicInfo(BaseModel):
    """A declared topic, for the stream's filters."""

    name: str
    owner: str
    event_types: list[str]


class GroupInfo(BaseModel):
    """A declared consumer group."""

    name: str
    domain: str
    consumes: list[str]


class BusInfo(BaseModel):
    """What topology.yaml declares: the stream's topics and types, the lag chart's groups."""

    topics: list[TopicInfo]
    groups: list[GroupInfo]
    event_types: list[str]


class Metrics(BaseModel):
    """The recent metric samples, oldest first, for the charts to start from."""

    interval_seconds: float
    samples: list[MetricsSample]


class Snapshot(BaseModel):
    """Every pane at once: the page's initial state."""

    alarms: views.AlarmConsole
    tickets: views.TicketsPane
    services: views.ServicesPane
    network: views.NetworkPane
    orders: views.OrdersPane
    invoices: views.InvoicesPane
    metrics: Metrics
    bus: BusInfo


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


@router.get("/live/static/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    """The page's script and style sheet."""
    if name not in ASSETS:
        raise HTTPException(404, f"no asset {name!r}")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


@router.get(
    "/live/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def events(edge: EdgeDep, last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Server-Sent Events: ``bus`` (one decoded event of any declared topic, newest last; the kept
    recent ones first), ``gap`` (events skipped in a flood, dropped because this page fell behind,
    or missed while it was away: ``skipped`` and ``reason``), ``metrics`` (rates and lags every
    two seconds). A reconnecting client sends ``Last-Event-ID`` and gets only what it missed; an
    id that is not a sequence number is taken as absent."""
    feed = feed_of(edge)
    subscriber = feed.subscribe(sequence_number(last_event_id))
    return StreamingResponse(
        _stream(feed, subscriber),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


_SEQUENCE_NUMBER = re.compile(r"[0-9]{1,20}")


def sequence_number(last_event_id: str | None) -> int | None:
    """The sequence number a ``Last-Event-ID`` header holds: 1 to 20 ASCII digits, else None."""
    if last_event_id is None or not _SEQUENCE_NUMBER.fullmatch(last_event_id):
        return None
    return int(last_event_id)


async def _stream(feed: LiveFeed, subscriber: Subscriber) -> AsyncIterator[str]:
    """Frames for one page until it goes away."""
    try:
        yield "retry: 2000\n\n"
        hello = {"tailing": feed.tailing.is_set(), "at": datetime.now(UTC).isoformat()}
        yield Message("hello", json.dumps(hello)).frame()
        while (batch := await subscriber.take(KEEPALIVE)) is not None:
            yield "".join(m.frame() for m in batch) if batch else ": keep-alive\n\n"
    finally:
        feed.unsubscribe(subscriber)


@router.get("/live/snapshot", response_model=Snapshot)
async def snapshot(edge: EdgeDep) -> Snapshot:
    """Every pane, the recent metric samples and the declared bus."""
    (alarms, tickets, services, network), (orders, invoices) = await asyncio.gather(
        _oss_panes(edge), _bss_panes(edge)
    )
    return Snapshot(
        alarms=alarms,
        tickets=tickets,
        services=services,
        network=network,
        orders=orders,
        invoices=invoices,
        metrics=await metrics(edge),
        bus=await bus_info(edge),
    )


async def _oss_panes(
    edge: Edge,
) -> tuple[views.AlarmConsole, views.TicketsPane, views.ServicesPane, views.NetworkPane]:
    """The OSS panes from one consistent read of the OSS schema."""
    async with edge.oss_pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return (
            await views.alarm_console(conn),
            await views.tickets_pane(conn),
            await views.services_pane(conn, edge.network),
            await views.network_pane(conn, edge.network),
        )


async def _bss_panes(edge: Edge) -> tuple[views.OrdersPane, views.InvoicesPane]:
    """The BSS panes from one consistent read of the BSS schema."""
    async with edge.bss_pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return await views.orders_pane(conn), await views.invoices_pane(conn)


@router.get("/live/alarms", response_model=views.AlarmConsole)
async def alarms(edge: EdgeDep) -> views.AlarmConsole:
    """The alarm console: open alarms, root causes with their symptoms (OSS)."""
    async with edge.oss_pool.acquire() as conn:
        return await views.alarm_console(conn)


@router.get("/live/tickets", response_model=views.TicketsPane)
async def tickets(edge: EdgeDep) -> views.TicketsPane:
    """Trouble tickets and work orders (OSS)."""
    async with edge.oss_pool.acquire() as conn:
        return await views.tickets_pane(conn)


@router.get("/live/services", response_model=views.ServicesPane)
async def services(edge: EdgeDep) -> views.ServicesPane:
    """Service outages and reroutes (OSS)."""
    async with edge.oss_pool.acquire() as conn:
        return await views.services_pane(conn, edge.network)


@router.get("/live/network", response_model=views.NetworkPane)
async def network(edge: EdgeDep) -> views.NetworkPane:
    """Sites, nodes and links with the state of each (OSS)."""
    async with edge.oss_pool.acquire() as conn:
        return await views.network_pane(conn, edge.network)


@router.get("/live/orders", response_model=views.OrdersPane)
async def orders(edge: EdgeDep) -> views.OrdersPane:
    """Product orders in flight (BSS)."""
    async with edge.bss_pool.acquire() as conn:
        return await views.orders_pane(conn)


@router.get("/live/invoices", response_model=views.InvoicesPane)
async def invoices(edge: EdgeDep) -> views.InvoicesPane:
    """Recent invoices (BSS)."""
    async with edge.bss_pool.acquire() as conn:
        return await views.invoices_pane(conn)


@router.get("/live/metrics", response_model=Metrics)
async def metrics(edge: EdgeDep) -> Metrics:
    """The recent samples of topic rates and consumer lag."""
    return Metrics(interval_seconds=SAMPLE_INTERVAL, samples=feed_of(edge).samples())


@router.get("/live/bus", response_model=BusInfo)
async def bus_info(edge: EdgeDep) -> BusInfo:
    """The declared topics, event types and consumer groups."""
    topo = edge.topology
    types = sorted({t for spec in topo.topics.values() for t in spec.event_types if t != ANY_TYPE})
    return BusInfo(
        topics=[
            TopicInfo(name=n, owner=s.owner, event_types=list(s.event_types)) for n, s in topo.topics.items()
        ],
        groups=[
            GroupInfo(name=n, domain=c.domain, consumes=list(c.consumes))
            for n, c in topo.components.items()
            if c.consumes
        ],
        event_types=[*types, "DeadLetter", "Undecodable"],
    )
