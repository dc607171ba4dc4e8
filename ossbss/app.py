"""Composition root: builds the components of the system from settings and endpoints, and runs
them. The only place that knows every domain."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

import bss_consumers
import oss_consumers
from bss_consumers.billing import agents as billing
from bss_consumers.billing import gateway
from bss_consumers.care import agents as care
from bss_consumers.catalog.offerings import seed_offerings
from bss_consumers.crm import seed as crm
from bss_consumers.ordering import agents as ordering
from bss_consumers.ordering import portal
from bss_consumers.rating import agents as rating
from bss_consumers.rating.tariff import demo_plans
from bss_consumers.sales import agents as sales
from dashboard import app as web
from dashboard.api import bss_hub, oss_hub
from dashboard.context import Edge
from events import Envelope, EventPayload
from oss_consumers.fault import agents as fault
from oss_consumers.fault import console
from oss_consumers.fault import store as fault_store
from oss_consumers.inventory import agents as inventory
from oss_consumers.inventory import console as resource_console
from oss_consumers.inventory.seed import load_network, seed_inventory
from oss_consumers.performance import agents as performance
from oss_consumers.workforce import agents as workforce
from oss_consumers.workforce import store as workforce_store
from oss_consumers.workforce import technicians
from oss_consumers.workforce.store import load_workforce, seed_workforce
from producers import kpis, mediation, probes, receivers
from runtime import db, http, topology
from runtime.bus import Bus, Outbox, OutboxRelay
from runtime.consumer import BatchHandler, EventConsumer, forget_processed, per_event
from runtime.db import Connection
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.supervisor import supervise
from runtime.topology import Topology

log = structlog.get_logger(__name__)


def domain_databases(settings: Settings) -> dict[str, db.DomainDatabase]:
    """Each domain's schema, role and migrations."""
    return {
        "oss": db.DomainDatabase(
            oss_consumers.DOMAIN, "ossbss_oss", settings.oss_db_password, db.migrations_of("oss_consumers")
        ),
        "bss": db.DomainDatabase(
            bss_consumers.DOMAIN, "ossbss_bss", settings.bss_db_password, db.migrations_of("bss_consumers")
        ),
    }


@dataclass
class Summary:
    """The figures of the operator's summary line."""

    events_per_second: float
    open_alarms: int
    open_tickets: int
    active_outages: int
    open_work_orders: int
    notifications_sent: int
    usage_rated: int
    usage_rejected: int

    def line(self) -> str:
        return (
            f"{self.events_per_second:8.1f} events/s | open alarms {self.open_alarms:3d} | "
            f"open tickets {self.open_tickets:3d} | work orders {self.open_work_orders:3d} | "
            f"active outages {self.active_outages:3d} | "
            f"notifications sent {self.notifications_sent:4d} | "
            f"usage rated {self.usage_rated:6d}, rejected {self.usage_rejected:4d}"
        )


@dataclass
class System:
    """Every component of one process, started together."""

    settings: Settings
    endpoints: Endpoints
    topology: Topology
    bus: Bus
    pools: dict[str, asyncpg.Pool]
    relays: dict[str, OutboxRelay]
    consumers: list[EventConsumer]
    simulator: probes.ProbeSimulator | None
    http_url: str | None = None
    """Where the dashboard and HTTP API are served, once they are."""
    listening: list[receivers.Receiver] = field(default_factory=list)
    """The protocol receivers running, with where each listens."""

    async def ready(self, timeout: float = 60.0) -> None:
        """Wait until every consumer has its partitions."""
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(c.ready.wait() for c in self.consumers))

    async def summary(self, offsets: OffsetWatch) -> Summary:
        async with self.pools["oss"].acquire() as conn:
            oss = await fault_store.summary(conn)
            work_orders = await workforce_store.open_count(conn)
        async with self.pools["bss"].acquire() as conn:
            sent = await care.notifications_sent(conn)
            usage = await rating.rating_summary(conn)
        return Summary(
            await offsets.rate(),
            oss["open_alarms"],
            oss["open_tickets"],
            oss["active_outages"],
            work_orders,
            sent,
            usage["rated"],
            usage["rejected"],
        )


class OffsetWatch:
    """Events per second across every declared topic, from the topics' end offsets."""

    def __init__(self, bootstrap_servers: str, topics: list[str]):
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="ossbss-summary")
        self._topics = topics
        self._last: tuple[float, int] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.topics()  # metadata of every topic, so the first total is right

    async def stop(self) -> None:
        await self._consumer.stop()

    async def total(self) -> int:
        partitions = [
            TopicPartition(t, p) for t in self._topics for p in (self._consumer.partitions_for_topic(t) or ())
        ]
        if not partitions:
            await self._consumer.topics()  # refresh metadata
            return 0
        return sum((await self._consumer.end_offsets(partitions)).values())

    async def rate(self) -> float:
        now, total = time.monotonic(), await self.total()
        last, self._last = self._last, (now, total)
        if last is None or now <= last[0]:
            return 0.0
        return (total - last[1]) / (now - last[0])


@contextlib.asynccontextmanager
async def system(
    settings: Settings, endpoints: Endpoints, *, simulate: bool = True, probe_rate: float | None = None
) -> AsyncIterator[System]:
    """Start every component (topics, migrations, first loads, consumers, relays, simulator) and
    stop them all on exit."""
    topo = Topology.load(settings.topology_path)
    created, _ = await topology.apply(topo, endpoints.bootstrap_servers)
    if created:
        log.info("topics created", topics=created)
    databases = domain_databases(settings)
    for database in databases.values():
        await db.bootstrap(endpoints.database_url, database)
    bus = Bus(endpoints.bootstrap_servers, topo)
    await bus.start()
    pools: dict[str, asyncpg.Pool] = {}
    tasks: list[asyncio.Task[None]] = []
    try:
        for name, database in databases.items():
            pools[name] = await db.create_pool(endpoints.database_url, database)
        relays = {name: OutboxRelay(pool, bus) for name, pool in pools.items()}

        network = load_network(settings.network_file)
        added = await seed_inventory(pools["oss"], network)
        if added:
            log.info("inventory loaded", resources=added)
        hired = await seed_workforce(pools["oss"], load_workforce(settings.workforce_file))
        if hired:
            log.info("technicians loaded", technicians=hired)
        customer_file = crm.load_customers(settings.customers_file)
        customers = await crm.seed_customers(pools["bss"], customer_file)
        if customers:
            log.info("customers loaded", customers=customers)
        await seed_offerings(pools["bss"])
        plans = demo_plans()
        opened = await crm.seed_accounts(
            pools["bss"], customer_file, {p.plan_id: p.currency for p in plans.values()}
        )
        if opened:
            log.info("accounts opened", accounts=opened)
        republished = await crm.republish_assignments(pools["bss"], Outbox(bus, crm.COMPONENT))
        log.info("customer-service assignments republished", count=republished)

        def consumer(
            component: str, handler: BatchHandler, pool: str, *, record_event_ids: bool = True
        ) -> EventConsumer:
            return EventConsumer(
                component,
                handler,
                bus=bus,
                pool=pools[pool],
                relay=relays[pool],
                settings=settings,
                bootstrap_servers=endpoints.bootstrap_servers,
                record_event_ids=record_event_ids,
            )

        consumers = [
            consumer(inventory.COMPONENT, per_event(inventory.handle), "oss"),
            consumer(fault.COMPONENT, fault.handle_batch, "oss"),
            consumer(performance.COMPONENT, performance.handle_batch, "oss"),
            consumer(workforce.COMPONENT, workforce.handle_batch, "oss"),
            consumer(care.COMPONENT, per_event(care.handle), "bss"),
            # Rating recognises a usage id seen before by itself: no idempotency records needed.
            consumer(rating.COMPONENT, rating.UsageRating(plans).handle_batch, "bss", record_event_ids=False),
            consumer(billing.COMPONENT, per_event(billing.handle), "bss"),
            consumer(ordering.COMPONENT, per_event(ordering.handle), "bss"),
            consumer(sales.COMPONENT, per_event(sales.handle), "bss"),
        ]
        crew = simulate and settings.field_visit_seconds > 0
        if crew:
            visits = technicians.SimulatedCrew(settings.field_visit_seconds)
            consumers.append(consumer(technicians.COMPONENT, per_event(visits.handle), "oss"))
        simulator = None
        if simulate:
            simulator = probes.ProbeSimulator(
                bus.publisher(probes.COMPONENT),
                probes.resources_of(network),
                rate=settings.probe_rate if probe_rate is None else probe_rate,
            )
        usage = None
        if simulate and settings.usage_rate > 0:
            usage = mediation.MediationSimulator(
                bus.publisher(mediation.COMPONENT), mediation.services_of(network), rate=settings.usage_rate
            )
        sys_ = System(settings, endpoints, topo, bus, pools, relays, consumers, simulator)
        for name, relay in relays.items():
            tasks.append(asyncio.create_task(supervise(f"{name}-outbox-relay", relay.run)))
        for c in consumers:
            tasks.append(asyncio.create_task(supervise(c.component, c.run)))
        tasks.append(asyncio.create_task(supervise("housekeeping", lambda: _housekeeping(pools, settings))))
        periodic = [
            (
                "tickets escalated",
                lambda c: fault.escalate_overdue_tickets(c, datetime.now(UTC)),
                "oss",
                fault.COMPONENT,
                30.0,
            ),
            (
                "work orders dispatched or breached",
                lambda c: workforce.check_timers(c, datetime.now(UTC)),
                "oss",
                workforce.COMPONENT,
                10.0,
            ),
            (
                "invoices overdue",
                lambda c: billing.dun_overdue(c, datetime.now(UTC).date()),
                "bss",
                billing.COMPONENT,
                60.0,
            ),
        ]
        if crew:
            periodic.append(
                (
                    "field reports",
                    lambda c: technicians.due_reports(c, datetime.now(UTC)),
                    "oss",
                    technicians.COMPONENT,
                    1.0,
                )
            )
        for what, find, domain, component, every in periodic:
            publish = functools.partial(
                _publish_periodically,
                what,
                find,
                pools[domain],
                Outbox(bus, component),
                relays[domain],
                every,
            )
            tasks.append(asyncio.create_task(supervise(what, publish)))
        await sys_.ready()
        for receiver in receivers.build_enabled(
            settings=settings, publisher_factory=bus.publisher, network=network
        ):
            await receiver.start()
            sys_.listening.append(receiver)
            tasks.append(asyncio.create_task(supervise(receivers.COMPONENTS[receiver.kind], receiver.run)))
        edge = Edge(settings, endpoints.bootstrap_servers, topo, bus, pools["oss"], pools["bss"], network)
        sock = web.listen(settings.http_host, settings.http_port)
        sys_.http_url = http.url_of(sock) + "/"
        tasks.append(
            asyncio.create_task(supervise("http", functools.partial(web.serve, web.create_app(edge), sock)))
        )
        for name, run in web.background(edge):
            tasks.append(asyncio.create_task(supervise(name, run)))
        if simulator is not None:
            await simulator.resynchronize()
            if simulator.rate > 0:
                tasks.append(asyncio.create_task(supervise(probes.COMPONENT, simulator.run)))
        if usage is not None:
            tasks.append(asyncio.create_task(supervise(mediation.COMPONENT, usage.run)))
        if simulate and settings.kpi_interval > 0:
            sampler = kpis.KpiSimulator(
                bus.publisher(kpis.COMPONENT), kpis.measured_of(network), interval=settings.kpi_interval
            )
            tasks.append(asyncio.create_task(supervise(kpis.COMPONENT, sampler.run)))
        yield sys_
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pool in pools.values():
            await pool.close()
        await bus.stop()


async def _housekeeping(pools: dict[str, asyncpg.Pool], settings: Settings, every: float = 60.0) -> None:
    """Forget idempotency records past the redelivery window, and clears whose raise never came."""
    while True:
        for name, pool in pools.items():
            async with pool.acquire() as conn:
                forgotten = await forget_processed(conn, settings.dedup_retention_hours)
                purged = await fault_store.purge_held_clears(conn, 600.0) if name == "oss" else 0
            if forgotten or purged:
                log.info(
                    "housekeeping", domain=name, event_ids_forgotten=forgotten, held_clears_purged=purged
                )
        await asyncio.sleep(every)


async def _publish_periodically(
    what: str,
    find: Callable[[Connection], Awaitable[list[Envelope[EventPayload]]]],
    pool: asyncpg.Pool,
    outbox: Outbox,
    relay: OutboxRelay,
    every: float,
) -> None:
    """Every ``every`` seconds, run ``find`` in a transaction and queue the events it returns:
    ticket escalations, payment reminders."""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            found = await find(conn)
            await outbox.add(conn, found)
        if found:
            log.info(what, count=len(found))
            relay.wake()
        await asyncio.sleep(every)


async def run_until_stopped(
    sys_: System, stop: asyncio.Event, emit: Callable[[str], None], duration: float | None = None
) -> None:
    """Print the summary line every few seconds until ``stop`` is set (or ``duration`` ends)."""
    offsets = OffsetWatch(sys_.endpoints.bootstrap_servers, list(sys_.topology.topics))
    await offsets.start()
    deadline = None if duration is None else time.monotonic() + duration
    try:
        await offsets.rate()
        while not stop.is_set():
            timeout = sys_.settings.summary_interval
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout)
            emit((await sys_.summary(offsets)).line())
            if deadline is not None and time.monotonic() >= deadline:
                return
    finally:
        await offsets.stop()


COMPONENT_MODULES = (
    probes,
    mediation,
    console,
    fault,
    inventory,
    crm,
    care,
    rating,
    billing,
    gateway,
    ordering,
    portal,
    sales,
    kpis,
    performance,
    workforce,
    technicians,
    resource_console,
    oss_hub,
    bss_hub,
    *receivers.COMPONENT_MODULES,
)
"""Every component the code defines; each module names its COMPONENT, HANDLES and PUBLISHES."""
