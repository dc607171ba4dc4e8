"""The consumer's delivery guarantees against the real broker and PostgreSQL: idempotent state
changes, offsets committed after the transaction, dead letters with reasons, outbox relay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from events import Envelope, EventPayload, decode, encode, new_event
from events.network import ProbeAlarmRaised
from events.oss import AlarmRaised
from ossbss.app import domain_databases
from runtime import db
from runtime.bus import Bus, OutboxRelay
from runtime.consumer import EventConsumer, Rejected, per_event
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology, apply
from tests.conftest import eventually
from tests.unit.test_codec import raised


@dataclass
class Rig:
    """A consumer of a throw-away topic, with its topics, pool and the records it produced."""

    name: str
    topics: dict[str, str]
    topology: Topology
    bus: Bus
    pool: asyncpg.Pool
    relay: OutboxRelay
    endpoints: Endpoints
    settings: Settings
    failures: dict[str, BaseException]

    def consumer(self) -> EventConsumer:
        return EventConsumer(
            self.name,
            per_event(self.handle),
            bus=self.bus,
            pool=self.pool,
            relay=self.relay,
            settings=self.settings,
            bootstrap_servers=self.endpoints.bootstrap_servers,
        )

    async def handle(
        self, conn: asyncpg.Connection, event: Envelope[EventPayload]
    ) -> Sequence[Envelope[EventPayload]]:
        assert isinstance(event.data, ProbeAlarmRaised)
        failure = self.failures.pop(event.data.notification_id, None)
        if failure is not None:
            raise failure
        if event.data.notification_id.startswith("reject"):
            raise Rejected("resource unknown to inventory")
        await conn.execute(
            f"INSERT INTO {self.table} (event_id, notification_id) VALUES ($1, $2)",
            event.id,
            event.data.notification_id,
        )
        return [
            new_event(
                AlarmRaised(
                    alarm_id=f"ALM-{event.data.notification_id}",
                    reduction_key=event.data.reduction_key,
                    alarmed_object_id=event.data.alarmed_object_id,
                    alarmed_object_type=event.data.alarmed_object_type,
                    alarm_type=event.data.alarm_type,
                    probable_cause=event.data.probable_cause,
                    perceived_severity=event.data.perceived_severity,
                    alarm_raised_time=event.data.event_time,
                    service_affecting=event.data.service_affecting,
                    source_system_id=event.data.source_system_id,
                ),
                source="/test",
                cause=event,
            )
        ]

    @property
    def table(self) -> str:
        return "it_" + self.name.replace("-", "_")

    async def applied(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return [
                r["notification_id"]
                for r in await conn.fetch(
                    f"SELECT notification_id FROM {self.table} ORDER BY notification_id"
                )
            ]


@pytest_asyncio.fixture(loop_scope="session")
async def rig(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Rig]:
    n = uuid.uuid4().hex[:8]
    topics = {"in": f"it.in.{n}", "out": f"it.out.{n}", "dlq": f"it.dlq.{n}"}
    name = f"it-consumer-{n}"
    topology = Topology.from_dict(
        {
            "domains": {"network": "n", "oss": "o"},
            "topics": {
                topics["in"]: {
                    "owner": "network",
                    "partitions": 2,
                    "key": "reduction_key",
                    "event_types": ["ProbeAlarmRaised"],
                },
                topics["out"]: {
                    "owner": "oss",
                    "partitions": 1,
                    "key": "reduction_key",
                    "event_types": ["AlarmRaised"],
                },
                topics["dlq"]: {"owner": "oss", "partitions": 1, "key": "original", "event_types": ["*"]},
            },
            "components": {
                name: {
                    "domain": "oss",
                    "consumes": [topics["in"]],
                    "produces": [topics["out"]],
                    "dead_letter": topics["dlq"],
                },
            },
        }
    )
    await apply(topology, endpoints.bootstrap_servers)
    database = domain_databases(settings)["oss"]
    await db.bootstrap(endpoints.database_url, database)
    pool = await db.create_pool(endpoints.database_url, database)
    bus = Bus(endpoints.bootstrap_servers, topology)
    await bus.start()
    relay = OutboxRelay(pool, bus)
    r = Rig(name, topics, topology, bus, pool, relay, endpoints, settings, {})
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE TABLE {r.table} (event_id text, notification_id text)")
    relay_task = asyncio.create_task(relay.run())
    try:
        yield r
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await bus.stop()
        await pool.close()


async def publish(
    endpoints: Endpoints,
    topic: str,
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]],
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            # One partition keeps the order of the scenario.
            await producer.send_and_wait(topic, value=value, key=key, headers=headers, partition=0)
    finally:
        await producer.stop()


async def read_all(endpoints: Endpoints, topic: str) -> list[tuple[dict[str, bytes], bytes | None, int]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        out = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in parts])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=200)).values():
                out += [(dict(r.headers), r.value, r.offset) for r in records]
        return out
    finally:
        await consumer.stop()


def encoded(notification_id: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return encode(new_event(raised(notification_id=notification_id), source="/network/probe-1"))


async def committed(rig: Rig) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=rig.endpoints.bootstrap_servers, group_id=rig.name, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(rig.topics["in"], 0)) or 0
    finally:
        await consumer.stop()


async def test_bad_records_are_dead_lettered_and_the_rest_applied_once(
    rig: Rig, endpoints: Endpoints
) -> None:
    e1 = encoded("n1")
    key, value, headers = encoded("n3")
    unknown = [(n, b"AlarmExploded" if n == "ce_type" else v) for n, v in headers]
    invalid_value = value.replace(b'"critical"', b'"apocalyptic"')
    records = [
        e1,  # 0 applied
        (b"k", b"\x00\xffnot an event", []),  # 1 no CloudEvents headers
        (key, value, unknown),  # 2 unknown type
        (key, invalid_value, headers),  # 3 invalid payload
        encoded("n2"),  # 4 applied
        e1,  # 5 the same event again: not applied twice
        encoded("reject-1"),  # 6 the handler rejects it
        encoded("n4"),  # 7 still processed after all that
    ]
    await publish(endpoints, rig.topics["in"], records)
    consumer = rig.consumer()
    task = asyncio.create_task(consumer.run())
    try:

        async def done() -> bool:
            return await committed(rig) == len(records)

        try:
            await eventually(done, what="all offsets committed")
        except AssertionError:
            if task.done():
                task.result()
            raise
        assert await rig.applied() == ["n1", "n2", "n4"]
        dead = await read_all(endpoints, rig.topics["dlq"])
        reasons = {int(h["dlq_offset"]): h["dlq_reason"].decode() for h, _, _ in dead}
        assert set(reasons) == {1, 2, 3, 6}
        assert "ce_type" in reasons[1]
        assert "unknown event type 'AlarmExploded'" in reasons[2]
        assert "perceived_severity" in reasons[3]
        assert reasons[6] == "rejected: resource unknown to inventory"
        for h, _value, _ in dead:
            assert h["dlq_topic"].decode() == rig.topics["in"]
            assert h["dlq_partition"] == b"0"
            assert h["dlq_consumer_group"].decode() == rig.name
        assert [v for h, v, _ in dead if h["dlq_offset"] == b"1"] == [b"\x00\xffnot an event"]

        async def relayed() -> bool:
            return len(await read_all(endpoints, rig.topics["out"])) == 3

        await eventually(relayed, what="outbox relayed three events")
        out = await read_all(endpoints, rig.topics["out"])
        decoded = [decode(list(h.items()), v) for h, v, _ in out]
        assert sorted(e.data.alarm_id for e in decoded) == ["ALM-n1", "ALM-n2", "ALM-n4"]  # type: ignore[attr-defined]
        assert all(e.causationid is not None for e in decoded)
        assert consumer.stats.duplicates == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_offsets_are_committed_only_after_the_transaction(rig: Rig, endpoints: Endpoints) -> None:
    # The database "goes away" while n2 is applied: the consumer stops without committing n2,
    # and a new consumer of the group applies it (and nothing else twice).
    rig.failures["n2"] = ConnectionResetError("connection to PostgreSQL lost")
    await publish(endpoints, rig.topics["in"], [encoded("n1")])
    first = rig.consumer()
    task = asyncio.create_task(first.run())
    try:

        async def n1_committed() -> bool:
            return await committed(rig) == 1

        await eventually(n1_committed, what="n1 committed")
        await publish(endpoints, rig.topics["in"], [encoded("n2"), encoded("n3")])
        await asyncio.wait_for(asyncio.shield(task), timeout=20)
    except ConnectionResetError:
        pass
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert await committed(rig) == 1
    assert await rig.applied() == ["n1"]

    second = rig.consumer()
    task = asyncio.create_task(second.run())
    try:

        async def all_committed() -> bool:
            return await committed(rig) == 3

        await eventually(all_committed, what="n2 and n3 committed after restart")
        assert await rig.applied() == ["n1", "n2", "n3"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
