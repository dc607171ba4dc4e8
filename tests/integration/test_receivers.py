"""Protocol receivers against the real broker: real traps from net-snmp's ``snmptrap``, real syslog
from util-linux ``logger`` and a plain socket, VES over real HTTP, and CDR files dropped in an
inbox. Each test describes a network of its own (unique ids) and reads its events back from the
topics, from the beginning."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import yaml
from aiokafka import AIOKafkaConsumer

from events import Envelope, EventPayload, decode
from producers import receivers
from producers.receivers import cdr, snmp, syslog, ves
from producers.receivers.common import ResourceDirectory
from runtime.bus import Bus
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology, apply


# The receivers' declarations, for as long as topology.yaml does not carry them yet.
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def bus(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Bus]:
    topology = Topology.load(settings.topology_path)
    await apply(topology, endpoints.bootstrap_servers)
    running = Bus(endpoints.bootstrap_servers, topology, client_id="test-receivers")
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@dataclass(frozen=True)
class OwnNetwork:
    """Two nodes and the link between them, named uniquely for one test."""

    description: dict[str, Any]
    a: str
    z: str
    link: str

    @property
    def directory(self) -> ResourceDirectory:
        return ResourceDirectory.from_network(self.description)


def own_network(
    a_address: str = "127.0.0.11", z_address: str = "127.0.0.12", a_hostname: str = ""
) -> OwnNetwork:
    tag = uuid.uuid4().hex[:8].upper()
    a, z, link = f"NODE-T{tag}-A", f"NODE-T{tag}-Z", f"LINK-T{tag}"
    return OwnNetwork(
        {
            "sites": [
                {
                    "id": f"SITE-T{tag}",
                    "name": "test site",
                    "nodes": [
                        {
                            "id": a,
                            "name": f"{tag} a",
                            "hostname": a_hostname or f"a-{tag}".lower(),
                            "mgmt_address": a_address,
                        },
                        {
                            "id": z,
                            "name": f"{tag} z",
                            "hostname": f"z-{tag}".lower(),
                            "mgmt_address": z_address,
                        },
                    ],
                }
            ],
            "links": [
                {
                    "id": link,
                    "name": f"{tag} link",
                    "a_end": a,
                    "z_end": z,
                    "a_if_index": 1,
                    "a_if_name": "GigabitEthernet0/1",
                    "z_if_index": 7,
                    "z_if_name": "GigabitEthernet0/7",
                }
            ],
            "services": [],
        },
        a,
        z,
        link,
    )


async def read_back(
    endpoints: Endpoints,
    topic: str,
    wanted: Callable[[Envelope[EventPayload]], bool],
    count: int,
    timeout: float = 15.0,
) -> list[Envelope[EventPayload]]:
    """The first ``count`` events on ``topic`` that are ``wanted``, reading from the beginning."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=endpoints.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Envelope[EventPayload]] = []
    try:
        async with asyncio.timeout(timeout):
            while len(found) < count:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        event = decode(record.headers, record.value)
                        if wanted(event):
                            found.append(event)
    except TimeoutError:
        raise AssertionError(f"{len(found)} of {count} events seen on {topic}") from None
    finally:
        await consumer.stop()
    return found


@contextlib.asynccontextmanager
async def running(receiver: receivers.Receiver) -> AsyncIterator[str]:
    """Start a receiver on a free port, run it, and stop it afterwards; yields where it listens."""
    bound = await receiver.start()
    task = asyncio.create_task(receiver.run())
    try:
        yield bound
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def on(resource: str) -> Callable[[Envelope[EventPayload]], bool]:
    return lambda event: getattr(event.data, "alarmed_object_id", None) == resource


async def run_tool(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await process.communicate()
    assert process.returncode == 0, f"{command[0]} failed: {err.decode()}"


# SNMP -------------------------------------------------------------------------------------------

LINK_DOWN, LINK_UP, IF_INDEX = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1"


async def test_snmptrap_link_down_and_up_raise_and_clear_the_link_alarm(
    endpoints: Endpoints, bus: Bus
) -> None:
    net = own_network()
    receiver = snmp.SnmpTrapReceiver(bus.publisher(snmp.COMPONENT), net.directory, port=0)
    async with running(receiver) as bound:
        target = bound.removeprefix("udp://")
        # From 127.0.0.1 through a "proxy": the snmpTrapAddress varbind names the agent (the a-end).
        await run_tool(
            "snmptrap", "-v", "2c", "-c", "public", target, "", LINK_DOWN,
            f"{IF_INDEX}.1", "i", "1", "1.3.6.1.6.3.18.1.3.0", "a", "127.0.0.11",
        )  # fmt: skip
        # From the z-end's own management address, naming the link by its ifIndex there.
        await run_tool(
            "snmptrap", "--clientaddr=127.0.0.12", "-v", "2c", "-c", "public", target, "", LINK_UP,
            f"{IF_INDEX}.7", "i", "7",
        )  # fmt: skip
        # Refused: a wrong community, an unknown agent, and a datagram that is not SNMP.
        await run_tool(
            "snmptrap", "-v", "2c", "-c", "private", target, "", LINK_DOWN, f"{IF_INDEX}.1", "i", "1"
        )
        await run_tool(
            "snmptrap", "-v", "2c", "-c", "public", target, "", LINK_DOWN, f"{IF_INDEX}.1", "i", "1"
        )
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as garbage:
            garbage.sendto(b"\x30\x03not snmp", ("127.0.0.1", int(target.rsplit(":", 1)[1])))
        events = await read_back(endpoints, "network.alarms", on(net.link), 2)
        await until(lambda: receiver.counters.received == 5)
    assert [e.type for e in events] == ["ProbeAlarmRaised", "ProbeAlarmCleared"]
    assert {e.data.reduction_key for e in events} == {f"communicationsAlarm:linkFailure:{net.link}"}  # type: ignore[attr-defined]
    assert [e.data.source_system_id for e in events] == [net.a, net.z]  # type: ignore[attr-defined]
    assert receiver.counters.snapshot() == {
        "received": 5,
        "published": 2,
        "ignored": 0,
        "rejected": {"undecodable message": 1, "unknown agent": 1, "unknown community": 1},
    }


# Syslog -----------------------------------------------------------------------------------------


async def test_logger_over_udp_and_tcp_raises_and_clears_alarms(endpoints: Endpoints, bus: Bus) -> None:
    # logger cannot choose its HOSTNAME: the a-end is this machine's host name, and the z-end is
    # known by its address, 127.0.0.1, for messages sent without a hostname.
    net = own_network(z_address="127.0.0.1", a_hostname=socket.gethostname())
    rules = syslog.load_rules(Settings().syslog_rules_file)
    receiver = syslog.SyslogReceiver(bus.publisher(syslog.COMPONENT), net.directory, rules, port=0)
    async with running(receiver) as bound:
        port = bound.rsplit(":", 1)[1]
        base = ("logger", "--server", "127.0.0.1", "--port", port, "-t", "ios")
        await run_tool(
            *base, "--udp", "--rfc5424", "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
        )
        await run_tool(
            *base, "--tcp", "--rfc3164", "%LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to up"
        )
        await run_tool(
            *base, "--tcp", "--octet-count", "--rfc5424=nohost",
            "%LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/7, changed state to down",
        )  # fmt: skip
        await run_tool(*base, "--udp", "--rfc3164", "user session opened for +441632960001")
        link_events = await read_back(endpoints, "network.alarms", on(net.link), 3)
        await until(lambda: receiver.counters.received == 4)
    # One alarm's raise and clear keep their order; the two alarms may sit in different partitions.
    seen: dict[str, list[tuple[str, str]]] = {}
    for event in link_events:
        data: Any = event.data
        seen.setdefault(data.probable_cause.value, []).append((event.type, data.source_system_id))
    assert seen == {
        "linkFailure": [("ProbeAlarmRaised", net.a), ("ProbeAlarmCleared", net.a)],
        "communicationsSubsystemFailure": [("ProbeAlarmRaised", net.z)],
    }
    assert receiver.counters.ignored == 1 and receiver.counters.published == 3


async def test_a_plain_socket_client_with_both_framings_and_bad_input(endpoints: Endpoints, bus: Bus) -> None:
    net = own_network(a_address="127.0.0.1")
    rules = syslog.load_rules(Settings().syslog_rules_file)
    receiver = syslog.SyslogReceiver(bus.publisher(syslog.COMPONENT), net.directory, rules, port=0)
    async with running(receiver) as bound:
        port = int(bound.rsplit(":", 1)[1])
        temperature = (
            b"<185>1 2026-11-27T12:00:00Z " + net.z.encode() + b" ios - - - %ENVIRONMENTAL-1-ALERT: "
            b"Temp: Inlet 1, Location: R0, State: Critical, Reading: 58 Celsius"
        )
        down = b"<187>34: *Nov 27 12:00:01.000: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"%d %s" % (len(temperature), temperature) + down + b"\n" + b"<13>no rule for this\n")
        writer.write(b"99999999 this framing is broken")
        await writer.drain()
        assert await reader.read() == b""  # the receiver hangs up on a broken stream
        writer.close()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"<999>not a priority", ("127.0.0.1", port))
        node_events = await read_back(endpoints, "network.alarms", on(net.z), 1)
        link_events = await read_back(endpoints, "network.alarms", on(net.link), 1)
        await until(lambda: receiver.counters.received == 5)
    assert node_events[0].data.reduction_key == f"environmentalAlarm:highTemperature:{net.z}"  # type: ignore[attr-defined]
    assert link_events[0].type == "ProbeAlarmRaised"
    assert receiver.counters.snapshot() == {
        "received": 5,
        "published": 2,
        "ignored": 1,
        "rejected": {"bad octet count": 1, "bad priority": 1},
    }


# VES --------------------------------------------------------------------------------------------


def ves_header(domain: str, source: str, event_id: str) -> dict[str, Any]:
    now = int(time.time() * 1_000_000)
    return {
        "domain": domain,
        "eventId": event_id,
        "eventName": f"{domain}_test",
        "sourceName": source,
        "reportingEntityName": "ems-test",
        "priority": "Normal",
        "sequence": 0,
        "startEpochMicrosec": now - 60_000_000,
        "lastEpochMicrosec": now,
        "version": "4.1",
        "vesEventListenerVersion": "7.2.1",
    }


async def test_ves_events_and_batches_over_http(endpoints: Endpoints, bus: Bus) -> None:
    net = own_network()
    listener = ves.VesListener(bus.publisher(ves.COMPONENT), net.directory, port=0)
    fault: dict[str, Any] = {
        "commonEventHeader": ves_header("fault", net.a.lower(), f"fault-{net.link}"),
        "faultFields": {
            "faultFieldsVersion": "4.0",
            "alarmCondition": "linkDown",
            "eventSeverity": "MAJOR",
            "eventSourceType": "router",
            "specificProblem": "loss of light",
            "vfStatus": "Active",
            "alarmInterfaceA": "GigabitEthernet0/1",
        },
    }
    batch = {
        "eventList": [
            {
                "commonEventHeader": ves_header("measurement", net.z, f"meas-{net.link}"),
                "measurementFields": {
                    "measurementFieldsVersion": "4.0",
                    "measurementInterval": 60,
                    "nicPerformanceArray": [
                        {
                            "nicIdentifier": "GigabitEthernet0/7",
                            "valuesAreSuspect": "false",
                            "transmittedUtilization": 83.5,
                        }
                    ],
                    "additionalMeasurements": [{"name": net.link, "hashMap": {"latency": "12.5"}}],
                },
            },
            {
                "commonEventHeader": ves_header("thresholdCrossingAlert", net.link, f"tca-{net.link}"),
                "thresholdCrossingAlertFields": {
                    "thresholdCrossingFieldsVersion": "4.0",
                    "additionalParameters": [
                        {"criticality": "MAJ", "hashMap": {}, "thresholdCrossed": "latency"}
                    ],
                    "alertAction": "SET",
                    "alertDescription": "latency above 10 ms",
                    "alertType": "INTERFACE-ANOMALY",
                    "collectionTimestamp": "now",
                    "eventSeverity": "MINOR",
                    "eventStartTimestamp": "now",
                },
            },
            {"commonEventHeader": ves_header("heartbeat", net.a, f"hb-{net.link}"), "heartbeatFields": {}},
        ]
    }
    async with running(listener) as bound, httpx.AsyncClient(base_url=bound, timeout=10) as client:
        single = await client.post("/eventListener/v7/events", json={"event": fault})
        many = await client.post("/eventListener/v7/eventBatch", json=batch)
        invalid = await client.post("/eventListener/v7/events", json={"event": {"faultFields": {}}})
        garbage = await client.post(
            "/eventListener/v7/eventBatch", content=b"\xff\xfe", headers={"content-type": "application/json"}
        )
        fault["faultFields"]["eventSeverity"] = "NORMAL"
        cleared = await client.post("/eventListener/v7/events", json={"event": fault})
        status = (await client.get("/eventListener/v7/status")).json()
    assert [r.status_code for r in (single, many, invalid, garbage, cleared)] == [202, 202, 400, 400, 202]
    assert invalid.json()["requestError"]["serviceException"]["messageId"] == "SVC0002"
    assert "commonEventHeader" in invalid.json()["requestError"]["serviceException"]["variables"][0]
    alarms = await read_back(endpoints, "network.alarms", on(net.link), 3)
    # Alarms of different reduction keys may sit in different partitions: compare without order.
    assert sorted((e.type, e.data.alarm_type.value) for e in alarms) == [  # type: ignore[attr-defined]
        ("ProbeAlarmCleared", "communicationsAlarm"),
        ("ProbeAlarmRaised", "communicationsAlarm"),
        ("ProbeAlarmRaised", "qualityOfServiceAlarm"),
    ]
    kpis = await read_back(
        endpoints, "network.kpis", lambda e: getattr(e.data, "resource_id", None) == net.link, 2
    )
    samples: list[Any] = [e.data for e in kpis]
    assert {(s.indicator.value, s.value) for s in samples} == {("utilization", 83.5), ("latency", 12.5)}
    assert status == {
        "received": 7,
        "published": 5,
        "ignored": 1,
        "rejected": {"not JSON": 1, "not VES 7": 1},
    }


# CDR --------------------------------------------------------------------------------------------


def asterisk_csv(services: list[str], tag: str) -> str:
    rows = []
    for n, service in enumerate(services):
        disposition = "BUSY" if n == 1 else "ANSWERED"
        rows.append(
            f'"{service}","+441632960{n:03d}","+442079460{n:03d}","from-internal","""Caller"" <+441632960{n:03d}>",'
            f'"SIP/100-{n:08x}","SIP/trunk-{n:08x}","Dial","SIP/trunk/2079460{n:03d},30","2026-11-27 09:00:00",'
            f'"2026-11-27 09:00:05","2026-11-27 09:02:05","125","{60 + n}","{disposition}","DOCUMENTATION",'
            f'"{tag}.{n}",""\n'
        )
    return "".join(rows)


async def test_cdr_files_dropped_in_the_inbox_are_published_once(
    endpoints: Endpoints, bus: Bus, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    services = [f"SVC-T{tag}-{n}" for n in range(4)]
    inbox = tmp_path / "cdr-inbox"
    first = cdr.CdrInbox(bus.publisher(cdr.COMPONENT), inbox, interval=0.1)
    async with running(first):
        (inbox / "Master.csv").write_text(asterisk_csv(services, tag))
        await until(lambda: bool(first.reports))
    [report] = first.reports
    assert (report.published, report.not_billable, report.skipped_already) == (3, 1, 0)
    # A second start on the same inbox and ledger, and the same file copied under another name.
    (inbox / "Master-copy.csv").write_text(asterisk_csv(services, tag))
    second = cdr.CdrInbox(bus.publisher(cdr.COMPONENT), inbox, interval=0.1)
    async with running(second):
        await until(lambda: len(second.reports) == 2)
    assert [(r.published, r.skipped_already) for r in second.reports] == [(0, 4), (0, 4)]
    usage = await read_back(
        endpoints, "network.usage", lambda e: getattr(e.data, "service_id", "") in services, 3
    )
    assert sorted((e.data.service_id, e.data.quantity) for e in usage) == [  # type: ignore[attr-defined]
        (services[0], 60),
        (services[2], 62),
        (services[3], 63),
    ]
    assert all(e.data.usage_id.startswith(f"AST-{tag}.") for e in usage)  # type: ignore[attr-defined]
    assert all("+44" not in e.data.model_dump_json() for e in usage)


# Entry point ------------------------------------------------------------------------------------


async def test_every_enabled_receiver_starts_from_settings_on_free_ports(bus: Bus, tmp_path: Path) -> None:
    network: dict[str, Any] = yaml.safe_load(Settings().network_file.read_text())
    settings = Settings(
        receivers="snmp,syslog,ves,cdr", snmp_port=0, syslog_port=0, ves_port=0, cdr_inbox=tmp_path / "inbox"
    )
    built = receivers.build_enabled(settings=settings, publisher_factory=bus.publisher, network=network)
    async with contextlib.AsyncExitStack() as stack:
        bound = [await stack.enter_async_context(running(r)) for r in built]
    assert [b.split("://")[0] for b in bound] == ["udp", "syslog", "http", "file"]
    assert all(not b.endswith(":0") for b in bound)
    assert (
        receivers.status_line(built[0]) == f"snmp {bound[0]}: received 0, published 0, ignored 0, rejected 0"
    )
