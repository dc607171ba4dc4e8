"""`topology apply` creates what is missing, with the declared partitions, idempotently."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology, apply


async def test_apply_creates_missing_topics_once(endpoints: Endpoints, settings: Settings) -> None:
    topology = Topology.load(settings.topology_path)
    await apply(topology, endpoints.bootstrap_servers)
    created, present = await apply(topology, endpoints.bootstrap_servers)
    assert created == []
    assert set(present) == set(topology.topics)
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.bootstrap_servers)
    await consumer.start()
    try:
        await consumer.topics()  # full metadata
        for name, spec in topology.topics.items():
            assert len(consumer.partitions_for_topic(name) or ()) == spec.partitions, name
    finally:
        await consumer.stop()
