"""Publishing: the process's one Kafka producer, the topology guard, the transactional outbox
and its relay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from events import Envelope, EventPayload, encode
from events.codec import Headers
from runtime.db import Connection
from runtime.topology import Topology

log = structlog.get_logger(__name__)



class Bus:
    """The process's Kafka producer (``acks=all``), shared by every component of the process."""

    def __init__(self, bootstrap_servers: str, topology: Topology, client_id: str = "ossbss"):
        self.topology = topology
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap_servers,
            client_id=self._client_id,
            acks="all",
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send_raw(self, records: Sequence[tuple[str, bytes | None, bytes | None, Headers]]) -> None:
        """Send ``(topic, key, value, headers)`` records and wait until the broker has them all."""
        if self._producer is None:
            raise RuntimeError("Bus.start() has not been awaited")
        producer = self._producer
        futures = [
            await producer.send(topic, value=value, key=key, headers=headers)
            for topic, key, value, headers in records
        ]
        if futures:
            await asyncio.gather(*futures)

    def publisher(self, component: str) -> Publisher:
        """A publisher that may only use the topics ``component`` declares."""
        self.topology.component(component)
        return Publisher(self, component)


class Publisher:
    """Publishes events directly (no database involved), within a component's declaration.

    Components that change state and publish in the same step use :class:`Outbox` instead.
    """

    def __init__(self, bus: Bus, component: str):
        self.bus = bus
        self.component = component
        self._routes: dict[str, str] = {}

    def route(self, event: Envelope[EventPayload]) -> str:
        """The declared topic of ``event`` for this component; refuses anything undeclared."""
        topic = self._routes.get(event.type)
        if topic is None:
            topic = self.bus.topology.topic_for(self.component, event.type)
            self.bus.topology.check_publish(self.component, topic, event.type)
            self._routes[event.type] = topic
        return topic

    async def publish(self, *events: Envelope[EventPayload]) -> None:
        """Publish and wait for the broker's acknowledgement of every event."""
        await self.bus.send_raw([(self.route(e), *encode(e)) for e in events])


class Outbox:
    """Events to publish, written in the same transaction as the state change they report."""

    def __init__(self, bus: Bus, component: str):
        self.publisher = bus.publisher(component)

    async def add(self, conn: Connection, events: Sequence[Envelope[EventPayload]]) -> None:
        """Queue ``events`` in the caller's transaction (``conn`` must be inside one)."""
        if not events:
            return
        topics, keys, values, headers = [], [], [], []
        for event in events:
            topics.append(self.publisher.route(event))
            key, value, ce_headers = encode(event)
            keys.append(key)
            values.append(value)
            headers.append(json.dumps([[n, v.decode()] for n, v in ce_headers]))
        await conn.execute(
            "INSERT INTO outbox (topic, key, value, headers) "
            "SELECT t, k, v, h::jsonb FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::text[]) AS u(t, k, v, h)",
            topics,
            keys,
            values,
            headers,
        )


# One relay per domain schema at a time, across processes.
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext('outbox-relay-' || current_schema()))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('outbox-relay-' || current_schema()))"


class OutboxRelay:
    """Moves a domain's outbox rows to Kafka in id order, deleting them once acknowledged.

    One relay per domain schema per process; an advisory lock keeps a second process's relay
    idle, so records of one key keep their order.
    """

    def __init__(self, pool: asyncpg.Pool, bus: Bus, batch: int = 2000):
        self.pool = pool
        self.bus = bus
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Tell the relay there is something new (it also polls every second)."""
        self._wake.set()

    async def run(self) -> None:
        async with self.pool.acquire() as conn:
            while not await conn.fetchval(_TRY_LOCK):
                await asyncio.sleep(2.0)
            try:
                while True:
                    sent = await self._drain(conn)
                    if sent < self.batch:
                        try:
                            await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                        except TimeoutError:
                            pass
                        self._wake.clear()
            finally:
                await conn.execute(_UNLOCK)

    async def drain_once(self) -> bool:
        """Publish everything queued now, unless another relay holds this schema's outbox (it
        will publish it). Returns whether this call did."""
        async with self.pool.acquire() as conn:
            if not await conn.fetchval(_TRY_LOCK):
                return False
            try:
                while await self._drain(conn) == self.batch:
                    pass
            finally:
                await conn.execute(_UNLOCK)
        return True

    async def _drain(self, conn: Connection) -> int:
        rows = await conn.fetch(
            "SELECT id, topic, key, value, headers FROM outbox ORDER BY id LIMIT $1", self.batch
        )
        if not rows:
            return 0
        await self.bus.send_raw(
            [(r["topic"], r["key"], r["value"], [(n, v.encode()) for n, v in r["headers"]]) for r in rows]
        )
        # Exactly the ids sent: a transaction that took a lower id may commit after this read.
        await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        return len(rows)
