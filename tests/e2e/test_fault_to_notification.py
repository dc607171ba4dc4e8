"""The first closed loop through the running system, driven by the ``ossbss`` command:
a link alarm raised opens a ticket, starts an outage per service on the link and notifies each
affected customer once; the clear resolves the ticket and restores the services."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from events import Envelope, EventPayload, decode, encode
from events.x733 import ResourceType
from producers.probes import CONDITIONS, Resource, clear_event, raise_event
from runtime.embedded import start_broker
from runtime.infra import Endpoints
from runtime.settings import PROJECT_ROOT
from tests.conftest import eventually

OSSBSS = str(Path(sys.executable).parent / "ossbss")
LINK = "LINK-LON-CR1-AG1"  # London's only way out of its aggregation switch: no detour
WATCHED = [
    "oss.alarms",
    "oss.trouble-tickets",
    "oss.service-health",
    "bss.notifications",
    "dlq.oss-fault",
    "bss.product-orders",
    "oss.service-inventory",
    "bss.customer-services",
    "bss.credits",
    "oss.work-orders",
    "bss.care-cases",
]


def free_ports(tmp_path: Path) -> dict[str, str]:
    """Settings that let several systems run on one machine: every listening port picked free,
    and a CDR inbox of their own."""
    return {
        "OSSBSS_HTTP_PORT": "0",
        "OSSBSS_SNMP_PORT": "0",
        "OSSBSS_SYSLOG_PORT": "0",
        "OSSBSS_VES_PORT": "0",
        "OSSBSS_CDR_INBOX": str(tmp_path / "cdr-inbox"),
    }


@dataclass
class Running:
    env: dict[str, str]
    process: subprocess.Popen[str]
    endpoints: Endpoints
    events: list[tuple[str, Envelope[EventPayload] | dict[str, bytes]]] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        done = subprocess.run([OSSBSS, *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"ossbss {' '.join(args)} failed: {done.stderr}"
        return done.stdout

    watcher: asyncio.Task[None] | None = None
    receivers: dict[str, str] = field(default_factory=dict)
    """Where each protocol receiver listens: kind → ``udp://host:port``, ``http://...``."""

    def of(self, event_type: str) -> list[Any]:
        if self.watcher is not None and self.watcher.done():
            self.watcher.result()  # surface the watcher's failure
        return [e.data for _, e in self.events if isinstance(e, Envelope) and e.type == event_type]

    def summary(self) -> str:
        """Count of each event type seen, for failure messages."""
        from collections import Counter

        return str(Counter(getattr(e, "type", topic) for topic, e in self.events))

    def dead_letters(self) -> list[dict[str, bytes]]:
        return [e for t, e in self.events if t == "dlq.oss-fault" and isinstance(e, dict)]


def expected_impact(link: str = LINK) -> tuple[set[str], set[str]]:
    """Services placed on a link and the customers holding them, from the demo files."""
    network = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    customers = yaml.safe_load((PROJECT_ROOT / "demo" / "customers.yaml").read_text())["customers"]
    services = {s["id"] for s in network["services"] if link in s["path"]}
    holders = {c["id"] for c in customers for s in c["services"] if s["service_id"] in services}
    return services, holders


async def _watch(running: Running, stop: asyncio.Event, ready: asyncio.Event) -> None:
    """Collect every event published on the watched topics from now on (the broker is shared by
    the whole session: earlier tests' events are not this test's)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=running.endpoints.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(t, p) for t in WATCHED for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(parts)
        for tp, offset in (await consumer.end_offsets(parts)).items():
            consumer.seek(tp, offset)
        ready.set()
        while not stop.is_set():
            for records in (await consumer.getmany(timeout_ms=100)).values():
                for r in records:
                    if r.topic.startswith("dlq."):
                        running.events.append((r.topic, dict(r.headers)))
                    else:
                        running.events.append((r.topic, decode(r.headers, r.value)))
    finally:
        await consumer.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def running(endpoints: Endpoints, tmp_path: Path) -> AsyncIterator[Running]:
    # A broker and a database of its own: the loop starts from the demo's first load, with no
    # consumer group carrying offsets or events over from another test.
    broker = await start_broker()
    name = f"e2e_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(endpoints.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = endpoints.database_url.rsplit("/", 1)[0] + f"/{name}"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DATABASE_URL": database_url,
        "OSSBSS_STATE_DIR": str(tmp_path / "state"),
        "OSSBSS_SUMMARY_INTERVAL": "1",
        "OSSBSS_LOG_FORMAT": "json",
        "OSSBSS_REBALANCE_TIMEOUT_MS": "2000",
        **free_ports(tmp_path),
    }
    process = subprocess.Popen(
        [OSSBSS, "up", "--no-simulator"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "up.log", "w"),
        text=True,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=90)
    assert line.startswith("ossbss is up"), line + (tmp_path / "up.log").read_text()[-3000:]
    run = Running(env, process, Endpoints(broker.bootstrap_servers, database_url, False, False))
    for _ in range(2):  # where the dashboard and the receivers listen
        said = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), timeout=10)
        if said.startswith("receivers: "):
            run.receivers = dict(
                r.split(" ", 1) for r in said.removeprefix("receivers: ").strip().split(", ")
            )
    stop = asyncio.Event()
    watching = asyncio.Event()
    watcher = run.watcher = asyncio.create_task(_watch(run, stop, watching))
    await asyncio.wait_for(watching.wait(), timeout=30)
    try:
        yield run
    finally:
        stop.set()
        await watcher
        process.send_signal(2)
        rest, _ = await asyncio.to_thread(process.communicate, timeout=30)
        await broker.stop()
        assert process.returncode == 0, (tmp_path / "up.log").read_text()[-3000:]
        assert rest.rstrip().endswith("ossbss stopped.")


async def test_link_failure_reaches_every_affected_customer_once(running: Running) -> None:
    services, customers = expected_impact()
    assert services and customers

    running.cli("probe", "raise", LINK)
    running.cli("probe", "raise", LINK)  # the probe repeats itself: still one alarm

    async def impact_known() -> bool:
        return len(running.of("ServiceOutageStarted")) == len(services) and len(
            running.of("CustomerNotificationSent")
        ) == len(customers)

    await eventually(
        impact_known, timeout=30, what=lambda: f"outages and notifications; seen {running.summary()}"
    )
    [alarm] = running.of("AlarmRaised")
    assert alarm.alarmed_object_id == LINK
    [ticket] = running.of("TroubleTicketCreated")
    assert ticket.status.value == "acknowledged"
    assert {e.id for e in ticket.related_entity if e.referred_type == "Service"} == services
    outages = running.of("ServiceOutageStarted")
    assert {o.service_id for o in outages} == services
    assert {c for o in outages for c in o.customer_ids} == customers
    notified = [n.customer_id for n in running.of("CustomerNotificationSent")]
    assert sorted(notified) == sorted(customers)  # each exactly once
    await eventually(lambda: _count(running, "CustomerCaseOpened", len(customers)), what="care cases")
    assert sorted(c.customer_id for c in running.of("CustomerCaseOpened")) == sorted(customers)

    listing = [json.loads(line) for line in running.cli("alarm", "list", "--json").splitlines()]
    [listed] = [a for a in listing if a["alarmed_object_id"] == LINK]
    assert listed["occurrences"] == 2 and listed["ticket"] == ticket.ticket_id

    running.cli("alarm", "ack", alarm.alarm_id, "--by", "alice")

    async def acknowledged() -> bool:
        return any(a.ack_user_id == "alice" for a in running.of("AlarmAcknowledged"))

    await eventually(acknowledged, what="acknowledgement")

    # Redelivery of an outage (same event, and a republished copy) notifies nobody again.
    producer = AIOKafkaProducer(bootstrap_servers=running.endpoints.bootstrap_servers, acks="all")
    await producer.start()
    try:
        [(_, first)] = [
            (t, e) for t, e in running.events if isinstance(e, Envelope) and e.type == "ServiceOutageStarted"
        ][:1]
        key, value, headers = encode(first)
        await producer.send_and_wait("oss.service-health", value=value, key=key, headers=headers)
        copy = [(n, b"republished-" + v if n == "ce_id" else v) for n, v in headers]
        await producer.send_and_wait("oss.service-health", value=value, key=key, headers=copy)
    finally:
        await producer.stop()

    running.cli("probe", "clear", LINK)

    async def restored() -> bool:
        return len(running.of("ServiceRestored")) == len(services) and bool(
            running.of("TroubleTicketResolved")
        )

    await eventually(restored, timeout=30, what="restoration")
    [cleared] = running.of("AlarmCleared")
    assert cleared.alarm_id == alarm.alarm_id
    [resolved] = running.of("TroubleTicketResolved")
    assert resolved.ticket_id == ticket.ticket_id and resolved.status.value == "resolved"
    await eventually(
        lambda: _count(running, "CustomerNotificationSent", 2 * len(customers)), what="restoration notices"
    )
    await asyncio.sleep(1.0)  # room for a wrong extra notification to show up
    reasons = [(n.customer_id, n.reason.value) for n in running.of("CustomerNotificationSent")]
    assert sorted(reasons) == sorted(
        [(c, r) for c in customers for r in ("serviceOutage", "serviceRestored")]
    )
    assert running.cli("alarm", "list").strip() == "0 alarm(s)"
    assert sorted(c.customer_id for c in running.of("CustomerCaseResolved")) == sorted(customers)


async def _count(running: Running, event_type: str, n: int) -> bool:
    return len(running.of(event_type)) >= n


async def test_invalid_event_is_dead_lettered_and_processing_goes_on(running: Running) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=running.endpoints.bootstrap_servers, acks="all")
    await producer.start()
    node = Resource("NODE-BHM-CR1", ResourceType.NODE)
    condition = CONDITIONS[ResourceType.NODE][1]  # not service-affecting
    try:
        key, value, headers = encode(raise_event(node, condition, datetime.now(UTC), "probe-e2e"))
        broken = value.replace(b'"warning"', b'"catastrophic"')
        await producer.send_and_wait("network.alarms", value=broken, key=key, headers=headers, partition=0)
        await producer.send_and_wait("network.alarms", value=b"<alarm/>", key=key, headers=[], partition=0)
        # A clear that overtakes its raise: held, then applied when the raise arrives.
        t0 = datetime.now(UTC)
        for event in (
            clear_event(node, condition, t0 + timedelta(seconds=1), "probe-e2e"),
            raise_event(node, condition, t0, "probe-e2e"),
        ):
            k, v, h = encode(event)
            await producer.send_and_wait("network.alarms", value=v, key=k, headers=h, partition=0)
    finally:
        await producer.stop()

    async def handled() -> bool:
        return len(running.dead_letters()) >= 2 and any(
            c.alarmed_object_id == node.id for c in running.of("AlarmCleared")
        )

    await eventually(handled, timeout=30, what="dead letters and the held clear applied")
    reasons = sorted(h["dlq_reason"].decode() for h in running.dead_letters())
    assert any("perceived_severity" in r for r in reasons)
    assert any("ce_type" in r for r in reasons)
    assert all(h["dlq_topic"] == b"network.alarms" for h in running.dead_letters())
    assert not [t for t in running.of("TroubleTicketCreated") if node.id in t.name]


async def test_severity_change_of_an_active_alarm_is_published(running: Running) -> None:
    node = Resource("NODE-MAN-AG1", ResourceType.NODE)
    warning = CONDITIONS[ResourceType.NODE][1]
    producer = AIOKafkaProducer(bootstrap_servers=running.endpoints.bootstrap_servers, acks="all")
    await producer.start()
    try:
        t0 = datetime.now(UTC)
        for at, severity in ((t0, b'"warning"'), (t0 + timedelta(seconds=1), b'"minor"')):
            key, value, headers = encode(raise_event(node, warning, at, "probe-e2e"))
            value = value.replace(b'"warning"', severity)
            await producer.send_and_wait("network.alarms", value=value, key=key, headers=headers)
    finally:
        await producer.stop()

    async def changed() -> bool:
        return bool(running.of("AlarmChanged"))

    await eventually(changed, what=lambda: f"AlarmChanged; seen {running.summary()}")
    [change] = running.of("AlarmChanged")
    [raised_alarm] = [a for a in running.of("AlarmRaised") if a.alarmed_object_id == node.id]
    assert change.alarm_id == raised_alarm.alarm_id
    assert (change.previous_severity.value, change.perceived_severity.value) == ("warning", "minor")
    assert change.occurrences == 2


async def test_tail_prints_one_line_per_event(running: Running) -> None:
    running.cli("probe", "raise", "LINK-LDS-BHM", "--minor")
    out = running.cli("tail", "oss.alarms", "--from-beginning", "--max", "1")
    assert "AlarmRaised" in out and "reduction_key=" in out
    line = running.cli("tail", "oss.alarms", "--from-beginning", "--max", "1", "--json")
    assert json.loads(line)["type"] == "AlarmRaised"


async def test_a_backbone_failure_moves_services_to_a_backup_path(running: Running) -> None:
    services, customers = expected_impact("LINK-LON-MAN")
    running.cli("probe", "raise", "LINK-LON-MAN")

    async def moved() -> bool:
        return len(running.of("ServiceRerouted")) == len(services) and len(
            running.of("CustomerNotificationSent")
        ) == len(customers)

    await eventually(moved, timeout=30, what=lambda: f"reroutes; seen {running.summary()}")
    assert {r.service_id for r in running.of("ServiceRerouted")} == services
    assert all("LINK-LON-MAN" not in r.new_path for r in running.of("ServiceRerouted"))
    assert not running.of("ServiceOutageStarted")
    assert {n.reason.value for n in running.of("CustomerNotificationSent")} == {"serviceRerouted"}
    [ticket] = running.of("TroubleTicketCreated")  # the fibre still needs repairing
    running.cli("probe", "clear", "LINK-LON-MAN")

    async def resolved() -> bool:
        return bool(running.of("TroubleTicketResolved"))

    await eventually(resolved, what="ticket resolved")
    assert running.of("TroubleTicketResolved")[0].ticket_id == ticket.ticket_id
    assert not running.of("ServiceRestored")  # nothing was down


async def test_a_node_failure_gives_one_root_cause_one_ticket_reroutes_and_outages(running: Running) -> None:
    network = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    through = {s["id"]: s["path"] for s in network["services"] if "NODE-MAN-CR1" in s["path"]}
    ending = {sid for sid, path in through.items() if "NODE-MAN-AG1" in path}  # Manchester is an end
    transit = set(through) - ending  # only passing through Manchester: a way round exists
    assert ending and transit
    running.cli("probe", "raise", "NODE-MAN-CR1")
    for link in ("LINK-MAN-CR1-AG1", "LINK-LON-MAN", "LINK-MAN-LDS"):
        running.cli("probe", "raise", link)

    async def handled() -> bool:
        return len(running.of("AlarmRaised")) == 4 and len(running.of("ServiceOutageStarted")) == len(ending)

    await eventually(handled, timeout=30, what=lambda: f"node failure handled; seen {running.summary()}")
    alarms = running.of("AlarmRaised")
    [root] = [a for a in alarms if a.is_root_cause]
    assert root.alarmed_object_id == "NODE-MAN-CR1"
    assert all(a.parent_alarm_id == root.alarm_id for a in alarms if a is not root)
    [ticket] = running.of("TroubleTicketCreated")
    assert "NODE-MAN-CR1" in ticket.name
    assert {o.service_id for o in running.of("ServiceOutageStarted")} == ending
    assert {r.service_id for r in running.of("ServiceRerouted")} == transit


async def test_a_work_order_is_dispatched_completed_and_closes_its_ticket(running: Running) -> None:
    running.cli("probe", "raise", "LINK-LDS-BHM")

    async def dispatched() -> bool:
        return bool(running.of("WorkOrderDispatched"))

    await eventually(dispatched, what=lambda: f"a work order dispatched; seen {running.summary()}")
    [ticket] = running.of("TroubleTicketCreated")
    assert ticket.field_work_required
    [order] = running.of("WorkOrderCreated")
    [assigned] = running.of("WorkOrderDispatched")
    assert (order.ticket_id, order.required_skill, order.region) == (ticket.ticket_id, "fibre", "north")
    assert assigned.technician_id.startswith("TECH-N")
    listed = running.cli("workorder", "list")
    assert order.work_order_id in listed and assigned.technician_id in listed

    running.cli(
        "workorder", "report", order.work_order_id, "--by", assigned.technician_id, "--state", "inProgress"
    )
    await eventually(lambda: _count(running, "WorkOrderStateChanged", 1), what="technician on site")
    [alarm] = running.of("AlarmRaised")
    running.cli("alarm", "clear", alarm.alarm_id, "--by", "noc")
    await eventually(lambda: _count(running, "AlarmCleared", 1), what="operator clear")
    await asyncio.sleep(1.0)  # room for a wrong early resolution to show up
    assert not running.of("TroubleTicketResolved")  # the technician is still on site

    running.cli(
        "workorder",
        "report",
        order.work_order_id,
        "--by",
        assigned.technician_id,
        "--state",
        "completed",
        "--note",
        "fibre spliced",
    )
    await eventually(lambda: _count(running, "TroubleTicketResolved", 1), what="ticket resolved")
    [resolved] = running.of("TroubleTicketResolved")
    assert resolved.ticket_id == ticket.ticket_id
    assert f"work order {order.work_order_id} completed" in resolved.status_change_reason
    done = [json.loads(line) for line in running.cli("workorder", "list", "--all", "--json").splitlines()]
    assert [w["state"] for w in done if w["id"] == order.work_order_id] == ["completed"]


async def test_gear_speaking_snmp_and_ves_reaches_fault_management(running: Running) -> None:
    assert set(running.receivers) == {"snmp", "syslog", "ves", "cdr"}
    # Leeds core router (management address 127.0.0.17) reports its ifIndex 3, the LDS-BHM link, down.
    snmp_target = running.receivers["snmp"].removeprefix("udp://")
    trap = subprocess.run(
        [
            "snmptrap", "--clientaddr=127.0.0.17", "-v", "2c", "-c", "public", snmp_target, "",
            "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.2.1.2.2.1.1.3", "i", "3",
        ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert trap.returncode == 0, trap.stderr
    # A VES fault from the Manchester aggregation switch, by its hostname.
    fault = {
        "event": {
            "commonEventHeader": {
                "domain": "fault", "eventId": f"fault-{uuid.uuid4().hex[:8]}", "eventName": "Fault_Router_fanFailure",
                "sourceName": "man-ag1", "reportingEntityName": "man-ag1", "priority": "High", "sequence": 1,
                "startEpochMicrosec": 1_764_000_000_000_000, "lastEpochMicrosec": 1_764_000_000_000_000,
                "version": "4.1", "vesEventListenerVersion": "7.2.1",
            },
            "faultFields": {
                "faultFieldsVersion": "4.0", "alarmCondition": "fanFailure", "eventSeverity": "MINOR",
                "eventSourceType": "router", "specificProblem": "fan tray 2 stopped", "vfStatus": "Active",
            },
        }
    }  # fmt: skip
    async with httpx.AsyncClient(base_url=running.receivers["ves"], timeout=10) as client:
        accepted = await client.post("/eventListener/v7/events", json=fault)
        refused = await client.post("/eventListener/v7/events", json={"event": {"faultFields": {}}})
    assert accepted.status_code == 202, accepted.text
    assert refused.status_code == 400 and "commonEventHeader" in refused.text

    async def both_raised() -> bool:
        objects = {a.alarmed_object_id for a in running.of("AlarmRaised")}
        return {"LINK-LDS-BHM", "NODE-MAN-AG1"} <= objects

    await eventually(both_raised, what=lambda: f"alarms from SNMP and VES; seen {running.summary()}")
    [link] = [a for a in running.of("AlarmRaised") if a.alarmed_object_id == "LINK-LDS-BHM"]
    assert link.source_system_id == "NODE-LDS-CR1" and link.service_affecting
