"""The consumer every stateful component runs: batch reads with aiokafka, one PostgreSQL
transaction per batch that records each event id with the state change (idempotent consumer)
and queues outgoing events in the outbox, offsets committed only after that transaction, and a
dead-letter topic for what cannot be decoded or handled.

A batch consumer rather than a faust agent: the per-message path of a faust agent passes a few
thousand events per second on these machines, a batch ``getmany`` loop a hundred times more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from events import DecodeError, Envelope, EventPayload, decode
from runtime.bus import Bus, Outbox, OutboxRelay
from runtime.db import Connection
from runtime.settings import Settings

log = structlog.get_logger(__name__)

Handler = Callable[[Connection, Envelope[EventPayload]], Awaitable[Sequence[Envelope[EventPayload]]]]
"""Applies one event inside the batch transaction and returns the events to publish."""

BatchHandler = Callable[
    [Connection, Sequence[Envelope[EventPayload]]], Awaitable[Sequence[Envelope[EventPayload]]]
]
"""Applies events (new ones, in partition order) inside one transaction and returns the events
to publish. Hot paths take the whole batch to use set-based SQL."""


@contextlib.contextmanager
def event_context(event: Envelope[EventPayload]) -> Iterator[None]:
    """Bind the event's id, type, origin and correlation id to every log line inside."""
    topic, partition, offset = event.origin or (None, None, None)
    with structlog.contextvars.bound_contextvars(
        event_id=event.id,
        event_type=event.type,
        topic=topic,
        partition=partition,
        offset=offset,
        correlation_id=event.correlationid,
    ):
        yield


def per_event(handler: Handler) -> BatchHandler:
    """A batch handler that applies events one at a time with ``handler``."""

    async def apply(
        conn: Connection, events: Sequence[Envelope[EventPayload]]
    ) -> list[Envelope[EventPayload]]:
        outgoing: list[Envelope[EventPayload]] = []
        for event in events:
            with event_context(event):
                outgoing.extend(await handler(conn, event))
        return outgoing

    return apply


# Failures of the infrastructure rather than of one event: nothing is committed, the consumer
# stops, and its supervisor restarts it from the last committed offsets.
TRANSIENT: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    OSError,
    TimeoutError,
)


async def forget_processed(conn: Connection, older_than_hours: float) -> int:
    """Drop idempotency records older than the redelivery window. Returns how many."""
    result = await conn.execute(
        "DELETE FROM processed_events WHERE processed_at < now() - make_interval(hours => $1)",
        older_than_hours,
    )
    return int(result.split()[-1])


class Rejected(Exception):
    """Raised by a handler for an event that is valid but cannot be applied; it is
    dead-lettered with this reason."""


@dataclass
class ConsumerStats:
    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    batches: int = 0


class EventConsumer:
    """Runs one component's consumer group until cancelled."""

    def __init__(
        self,
        component: str,
        handler: BatchHandler,
        *,
        bus: Bus,
        pool: asyncpg.Pool,
        relay: OutboxRelay,
        settings: Settings,
        bootstrap_servers: str,
        record_event_ids: bool = True,
    ):
        """``record_event_ids=False`` is for a handler that recognises repeats itself by a
        business key (rating by usage id): the consumer then keeps no idempotency record, and
        only drops an event id seen twice within one batch."""
        spec = bus.topology.component(component)
        self.topics = list(spec.consumes)
        bus.topology.check_subscribe(component, self.topics)
        if spec.dead_letter is None:
            raise ValueError(f"{component} has no dead_letter topic")
        self.dead_letter_topic = spec.dead_letter
        self.record_event_ids = record_event_ids
        self.component = component
        self.handler = handler
        self.bus = bus
        self.pool = pool
        self.relay = relay
        self.outbox = Outbox(bus, component)
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.stats = ConsumerStats()
        self.ready = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.component,
            client_id=self.component,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            rebalance_timeout_ms=self.settings.rebalance_timeout_ms,
            session_timeout_ms=max(6000, self.settings.rebalance_timeout_ms * 2),
            heartbeat_interval_ms=1000,
            max_poll_records=self.settings.consumer_max_batch,
            # The broker holds a fetch until data arrives or this passes: the default 500 ms
            # would dominate end-to-end latency at moderate rates.
            fetch_max_wait_ms=self.settings.consumer_poll_ms,
        )
        await consumer.start()
        log.info("consumer started", component=self.component, topics=self.topics)
        try:
            while True:
                batch = await consumer.getmany(
                    timeout_ms=self.settings.consumer_poll_ms,
                    max_records=self.settings.consumer_max_batch,
                )
                if consumer.assignment():
                    self.ready.set()
                if not batch:
                    continue
                await self._process(batch)
                await consumer.commit(
                    {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()}
                )
        finally:
            await consumer.stop()

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        events: list[tuple[Envelope[EventPayload], ConsumerRecord[bytes, bytes]]] = []
        dead: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        for records in batch.values():
            for record in records:
                try:
                    event = decode(
                        record.headers, record.value, (record.topic, record.partition, record.offset)
                    )
                except DecodeError as exc:
                    dead.append((record, exc.reason))
                else:
                    events.append((event, record))
        self.stats.consumed += len(events) + len(dead)
        if dead:
            await self._dead_letter(dead)
        if events:
            try:
                await self._apply(events)
            except TRANSIENT:
                raise  # infrastructure trouble: nothing committed, the batch is read again
            except Exception as exc:
                # One bad event must not hold back the others: retry one by one, and
                # dead-letter only what fails on its own.
                log.warning(
                    "batch failed, applying events one by one",
                    component=self.component,
                    error=f"{type(exc).__name__}: {exc}",
                    exc_info=not isinstance(exc, Rejected),
                )
                for pair in events:
                    try:
                        await self._apply([pair])
                    except TRANSIENT:
                        raise
                    except Rejected as exc:
                        await self._dead_letter([(pair[1], f"rejected: {exc}")])
                    except Exception as exc:
                        await self._dead_letter([(pair[1], f"handler error: {type(exc).__name__}: {exc}")])
        self.stats.batches += 1

    async def _apply(self, events: list[tuple[Envelope[EventPayload], ConsumerRecord[bytes, bytes]]]) -> None:
        outgoing: list[Envelope[EventPayload]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            if self.record_event_ids:
                fresh = {
                    r["event_id"]
                    for r in await conn.fetch(
                        "INSERT INTO processed_events (consumer, event_id) "
                        "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
                        self.component,
                        [e.id for e, _ in events],
                    )
                }
            else:
                fresh = {e.id for e, _ in events}
            new: list[Envelope[EventPayload]] = []
            for event, _ in events:
                if event.id in fresh:
                    fresh.discard(event.id)  # the same id twice in one batch is applied once
                    new.append(event)
            duplicates = len(events) - len(new)
            if new:
                outgoing.extend(await self.handler(conn, new))
            await self.outbox.add(conn, outgoing)
        # Counted once the transaction has committed: a rolled-back batch counts nothing.
        self.stats.applied += len(events) - duplicates
        self.stats.duplicates += duplicates
        if outgoing:
            self.relay.wake()

    async def _dead_letter(self, dead: list[tuple[ConsumerRecord[bytes, bytes], str]]) -> None:
        await dead_letter(self.bus, self.dead_letter_topic, self.component, dead)
        self.stats.dead_lettered += len(dead)


async def dead_letter(
    bus: Bus, topic: str, group: str, dead: Sequence[tuple[ConsumerRecord[bytes, bytes], str]]
) -> None:
    """Send records a consumer group cannot use to its dead-letter ``topic``, as they came, with
    the reason and where they came from in ``dlq_*`` headers."""
    records = []
    for record, reason in dead:
        headers = [
            *record.headers,
            ("dlq_reason", reason.encode()),
            ("dlq_topic", record.topic.encode()),
            ("dlq_partition", str(record.partition).encode()),
            ("dlq_offset", str(record.offset).encode()),
            ("dlq_consumer_group", group.encode()),
        ]
        records.append((topic, record.key, record.value, headers))
        log.warning(
            "event dead-lettered",
            component=group,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
    await bus.send_raw(records)
