"""The live dashboard served over real HTTP, against the real broker and PostgreSQL: its event
stream delivers what is published to the bus and resumes after a reconnection, a slow page loses
only its own oldest events, and the snapshot endpoints answer with the panes' shapes, read from the
domains' tables, with ids and no personal data."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from dashboard import app as web
from dashboard import live, views
from dashboard.context import Edge
from events import Envelope, EventPayload, codec, new_event
from events.bss import (
    CustomerNotificationSent,
    NotificationReason,
    ProductOrderState,
    ProductOrderStateChanged,
)
from events.network import ProbeAlarmRaised
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType
from oss_consumers.inventory.seed import load_network, seed_inventory
from ossbss.app import domain_databases
from runtime import db, topology
from runtime.bus import Bus
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology
from tests.conftest import eventually

PANES = ("alarms", "tickets", "services", "network", "orders", "invoices")
CUSTOMER_NAME, CUSTOMER_EMAIL = "Ada Lovelace", "ada@example.org"


@dataclass
class Served:
    url: str
    edge: Edge
    tasks: list[asyncio.Future[None]]

    def check_tasks(self) -> None:
        """Surface the failure of a background task or of the server."""
        for task in self.tasks:
            if task.done():
                task.result()


@pytest_asyncio.fixture(loop_scope="session")
async def served(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Served]:
    # A database of its own, so that the panes show exactly what these tests put there.
    name = f"live_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(endpoints.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    database_url = endpoints.database_url.rsplit("/", 1)[0] + f"/{name}"
    databases = domain_databases(settings)
    for database in databases.values():
        await db.bootstrap(database_url, database)
    oss_pool = await db.create_pool(database_url, databases["oss"], max_size=4)
    bss_pool = await db.create_pool(database_url, databases["bss"], max_size=4)
    topo = Topology.load(settings.topology_path)
    await topology.apply(topo, endpoints.bootstrap_servers)
    bus = Bus(endpoints.bootstrap_servers, topo, client_id="test-live")
    await bus.start()
    network = load_network(settings.network_file)
    await seed_inventory(oss_pool, network)
    edge = Edge(settings, endpoints.bootstrap_servers, topo, bus, oss_pool, bss_pool, network)
    sock = web.listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    tasks: list[asyncio.Future[None]] = [asyncio.create_task(web.serve(web.create_app(edge), sock))]
    tasks += [asyncio.ensure_future(run()) for _, run in live.background(edge)]
    served = Served(f"http://127.0.0.1:{port}", edge, tasks)
    try:
        feed = live.feed_of(edge)
        await asyncio.wait_for(feed.tailing.wait(), timeout=30)
        yield served
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await oss_pool.close()
        await bss_pool.close()
        await bus.stop()


async def frames(response: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any], str | None]]:
    """The Server-Sent Events of a streaming response: (event name, JSON data, id)."""
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
            fields = {}
        elif not line.startswith(":") and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")


async def first_frame(
    response: httpx.Response, wanted: str, match: dict[str, Any] | None = None, timeout: float = 15.0
) -> tuple[dict[str, Any], str | None]:
    """The first ``wanted`` event whose data holds every item of ``match``."""

    async def find() -> tuple[dict[str, Any], str | None]:
        async for event, data, event_id in frames(response):
            if event == wanted and all(data.get(k) == v for k, v in (match or {}).items()):
                return data, event_id
        raise AssertionError(f"the stream ended before a {wanted} event matching {match}")

    return await asyncio.wait_for(find(), timeout)


async def notify(served: Served, customer_id: str) -> str:
    """Publish a notification to bss.notifications (a topic no consumer group reads) and return
    its event id."""
    event: Envelope[EventPayload] = new_event(
        CustomerNotificationSent(
            notification_id=f"N-{uuid.uuid4().hex[:8]}",
            customer_id=customer_id,
            reason=NotificationReason.SERVICE_OUTAGE,
            service_id="SVC-0001",
            channel="email",
            sent_at=datetime.now(UTC),
        ),
        source="test-live",
        subject=customer_id,
    )
    await served.edge.bus.publisher("bss-care").publish(event)
    return event.id


async def test_the_stream_delivers_an_event_published_to_the_bus(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(10.0, read=30.0)) as client,
        client.stream("GET", "/live/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = await notify(served, "CUST-LIVE-1")
        data, seq = await first_frame(response, "bus", {"id": event_id})
    assert data["topic"] == "bss.notifications"
    assert data["type"] == "CustomerNotificationSent"
    assert data["key"] == "CUST-LIVE-1"
    assert "reason=serviceOutage" in data["summary"]
    assert data["data"]["customer_id"] == "CUST-LIVE-1"
    assert seq is not None and int(seq) == data["seq"]


async def test_a_reconnecting_page_gets_only_what_it_missed(served: Served) -> None:
    client = httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(10.0, read=30.0))
    async with client:
        async with client.stream("GET", "/live/events") as response:
            seen_id = await notify(served, "CUST-LIVE-2")
            _, last = await first_frame(response, "bus", {"id": seen_id})
        assert last is not None
        missed_id = await notify(served, "CUST-LIVE-3")  # published while disconnected
        async with client.stream("GET", "/live/events", headers={"Last-Event-ID": last}) as response:
            replayed = []
            async for event, data, _ in frames(response):
                if event == "bus":
                    replayed.append(data["id"])
                    if data["id"] == missed_id:
                        break
    assert seen_id not in replayed
    assert replayed[-1] == missed_id


async def test_metrics_cover_every_declared_topic_and_consumer_group(served: Served) -> None:
    topo = served.edge.topology
    groups = {name for name, c in topo.components.items() if c.consumes}
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(10.0, read=30.0)) as client,
        client.stream("GET", "/live/events") as response,
    ):
        sample, _ = await first_frame(response, "metrics")
    assert set(sample["rates"]) == set(topo.topics)
    assert set(sample["lags"]) == groups
    assert all(lag["lag"] >= 0 and isinstance(lag["committed"], bool) for lag in sample["lags"].values())

    async with httpx.AsyncClient(base_url=served.url) as client:
        metrics = (await client.get("/live/metrics")).json()
    assert metrics["interval_seconds"] == live.SAMPLE_INTERVAL
    assert metrics["samples"] and set(metrics["samples"][-1]["lags"]) == groups


async def test_a_slow_page_loses_its_oldest_events_and_holds_up_no_one() -> None:
    feed = live.LiveFeed(history=10, client_buffer=3)
    slow, fast = feed.subscribe(), feed.subscribe()
    taken = []
    for n in range(5):
        feed.publish("bus", {"n": n})
        taken += await fast.take(0) or []
    assert [json.loads(m.data)["n"] for m in taken] == [0, 1, 2, 3, 4]
    batch = await slow.take(0)
    assert batch is not None and [m.event for m in batch] == ["gap", "bus", "bus", "bus"]
    gap = json.loads(batch[0].data)
    assert (gap["skipped"], gap["reason"]) == (2, "behind")
    assert [json.loads(m.data)["n"] for m in batch[1:]] == [2, 3, 4]
    # The gap stands for the events it replaces: a page resuming after it resumes after them.
    assert batch[0].seq is not None and batch[1].seq == batch[0].seq + 1
    assert slow.dropped == 2 and fast.dropped == 0
    assert [m.event for m in await slow.take(0) or []] == []  # reported once
    feed.close()
    assert await slow.take(0) is None  # the stream ends when the server stops


async def seed_panes(served: Served) -> dict[str, str]:
    """A node failure explaining a link alarm, with its ticket and an outage; an acknowledged
    backbone alarm and a service moved around it; a customer with an order and an invoice."""
    tag = uuid.uuid4().hex[:6].upper()
    ids = {
        k: f"{k.upper()}-{tag}"
        for k in ("root", "symptom", "backbone", "ticket", "outage", "order", "invoice")
    }
    now = datetime.now(UTC)
    network = served.edge.network
    down = next(
        s for s in network["services"] if "NODE-MAN-CR1" in s["path"] and "LINK-LON-MAN" not in s["path"]
    )
    moved = next(s for s in network["services"] if "LINK-LON-MAN" in s["path"])
    i = moved["path"].index("LINK-LON-MAN")
    detour = [*moved["path"][:i], "LINK-LON-LDS", "NODE-LDS-CR1", "LINK-MAN-LDS", *moved["path"][i + 1 :]]
    alarms = [
        (ids["root"], "NODE-MAN-CR1", "node", "major", True, None, "unacknowledged", None),
        (ids["symptom"], "LINK-MAN-LDS", "link", "critical", False, ids["root"], "unacknowledged", None),
        (ids["backbone"], "LINK-LON-MAN", "link", "critical", True, None, "acknowledged", "alice"),
    ]
    async with served.edge.oss_pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            """
            INSERT INTO alarms (id, reduction_key, alarmed_object_id, alarmed_object_type, alarm_type,
                                probable_cause, perceived_severity, state, ack_state, ack_user_id,
                                service_affecting, source_system_id, raised_at, last_seen_at,
                                is_root_cause, parent_alarm_id)
            VALUES ($1, $1, $2, $3, 'equipmentAlarm', 'equipmentMalfunction', $4, 'raised', $7, $8,
                    true, 'probe-test', $9, $9, $5, $6)
            """,
            [(*a, now) for a in alarms],
        )
        await conn.execute(
            """
            INSERT INTO trouble_tickets (id, alarm_id, name, severity, priority, status, created_at)
            VALUES ($1, $2, 'node down', 'major', 2, 'acknowledged', $3)
            """,
            ids["ticket"],
            ids["root"],
            now,
        )
        await conn.execute(
            """
            INSERT INTO service_outages (id, service_id, resource_id, alarm_id, started_at)
            VALUES ($1, $2, 'NODE-MAN-CR1', $3, $4)
            """,
            ids["outage"],
            down["id"],
            ids["root"],
            now,
        )
        await conn.execute("INSERT INTO outage_causes VALUES ($1, $2)", ids["outage"], ids["root"])
        await conn.execute(
            """
            INSERT INTO customer_services (service_id, customer_id, sla_tier, product_name)
            VALUES ($1, 'CUST-T1', 'gold', 'Business Fibre')
            """,
            down["id"],
        )
        await conn.execute("DELETE FROM service_resources WHERE service_id = $1", moved["id"])
        await conn.executemany(
            "INSERT INTO service_resources (service_id, resource_id, position) VALUES ($1, $2, $3)",
            [(moved["id"], r, n) for n, r in enumerate(detour)],
        )
    async with served.edge.bss_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO customers (id, name, email, phone, sla_tier) VALUES ('CUST-T1', $1, $2, '+44 20 7946 0000', 'gold')
            """,
            CUSTOMER_NAME,
            CUSTOMER_EMAIL,
        )
        await conn.execute(
            """
            INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day)
            VALUES ('ACC-T1', 'CUST-T1', 'GBP', 'TP-TEST', 1)
            """
        )
        await conn.execute(
            """
            INSERT INTO product_orders (id, customer_id, offering_id, a_site_id, z_site_id, state, requested_at)
            VALUES ($1, 'CUST-T1', 'PO-FIBRE-1G', 'SITE-LON', 'SITE-MAN', 'inProgress', $2)
            """,
            ids["order"],
            now,
        )
        await conn.execute(
            """
            INSERT INTO invoices (id, bill_number, account_id, period_start, period_end, bill_date,
                                  payment_due_date, currency, tax_excluded_minor, tax_minor,
                                  tax_included_minor)
            VALUES ($1, 1, 'ACC-T1', $2, $3, $4, $5, 'GBP', 10000, 2000, 12000)
            """,
            ids["invoice"],
            (now - timedelta(days=31)).date(),
            (now - timedelta(days=1)).date(),
            now,
            (now + timedelta(days=14)).date(),
        )
    return {**ids, "down": down["id"], "moved": moved["id"]}


async def test_the_snapshot_endpoints_answer_with_the_panes(served: Served) -> None:
    ids = await seed_panes(served)
    async with httpx.AsyncClient(base_url=served.url, timeout=10.0) as client:
        response = await client.get("/live/snapshot")
        assert response.status_code == 200, response.text
        snapshot = response.json()
        panes = {pane: (await client.get(f"/live/{pane}")).json() for pane in PANES}
    served.check_tasks()
    assert set(snapshot) == {*PANES, "metrics", "bus"}
    for pane in PANES:
        assert set(panes[pane]) == set(snapshot[pane]), pane
        assert panes[pane] == snapshot[pane], pane  # the same read models, not just the same keys

    console = snapshot["alarms"]
    assert [a["id"] for a in console["alarms"]] == [ids["backbone"], ids["root"]]  # critical first
    backbone, root = console["alarms"]
    assert [s["id"] for s in root["symptoms"]] == [ids["symptom"]]
    assert root["ticket_id"] == ids["ticket"] and root["symptoms"][0]["parent_alarm_id"] == ids["root"]
    assert (backbone["ack_state"], backbone["ack_user_id"]) == ("acknowledged", "alice")
    assert (console["open"], console["unacknowledged"]) == (3, 2)
    assert console["by_severity"] == {"critical": 2, "major": 1}

    tickets = snapshot["tickets"]
    assert [t["id"] for t in tickets["tickets"]] == [ids["ticket"]] and tickets["open"] == 1
    assert tickets["tickets"][0]["alarmed_object_id"] == "NODE-MAN-CR1"
    assert tickets["work_orders"] == [] or tickets["work_orders"] is None

    services = snapshot["services"]
    [outage] = services["outages"]
    assert (outage["service_id"], outage["customer_ids"], outage["restored_at"]) == (
        ids["down"],
        ["CUST-T1"],
        None,
    )
    assert services["down"] == 1 and services["services"] == len(served.edge.network["services"])
    [reroute] = services["reroutes"]
    assert reroute["service_id"] == ids["moved"]
    assert reroute["avoided"] == ["LINK-LON-MAN"] and reroute["still_failed"] == ["LINK-LON-MAN"]

    network = snapshot["network"]
    assert [s["id"] for s in network["sites"]] == [s["id"] for s in served.edge.network["sites"]]
    nodes = {n["id"]: n for s in network["sites"] for n in s["nodes"]}
    links = {link["id"]: link for link in network["links"]}
    assert nodes["NODE-MAN-CR1"]["state"]["severity"] == "major"
    assert nodes["NODE-MAN-CR1"]["state"]["services_down"] == 1
    assert links["LINK-LON-MAN"]["state"]["severity"] == "critical"
    assert links["LINK-LDS-BHM"]["state"]["severity"] is None
    ports = [a for n in nodes.values() for a in n["attachments"] if a["kind"] == "port"]
    assert len(ports) == len(served.edge.network.get("ports", []))

    orders = snapshot["orders"]
    assert orders["in_flight"] == 1 and orders["orders"][0]["id"] == ids["order"]
    [invoice] = snapshot["invoices"]["invoices"]
    assert (invoice["id"], invoice["tax_included_minor"], invoice["state"]) == (ids["invoice"], 12000, "new")

    assert [t["name"] for t in snapshot["bus"]["topics"]] == list(served.edge.topology.topics)
    assert "DeadLetter" in snapshot["bus"]["event_types"]
    # Customers appear by id only.
    assert CUSTOMER_NAME not in response.text and CUSTOMER_EMAIL not in response.text


async def test_work_orders_are_optional(served: Served) -> None:
    # The BSS schema has no work_orders table: the query says so instead of failing.
    async with served.edge.bss_pool.acquire() as conn:
        assert await views.work_orders(conn) is None


async def test_the_page_and_its_assets_are_served(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as client:
        page = await client.get("/")
        script = await client.get("/live/static/app.js")
        style = await client.get("/live/static/style.css")
        missing = await client.get("/live/static/secrets.txt")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/live/static/app.js" in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "EventSource" in script.text
    # Nothing is fetched from elsewhere: the only absolute URL is the SVG namespace.
    for text in (page.text, script.text, style.text):
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= {"http://www.w3.org/2000/svg"}
    assert style.status_code == 200 and "text/css" in style.headers["content-type"]
    assert missing.status_code == 404


async def test_metrics_keep_arriving(served: Served) -> None:
    async def two_samples() -> bool:
        served.check_tasks()
        return len(live.feed_of(served.edge).samples()) >= 2

    await eventually(two_samples, timeout=15, what="two metric samples")


def record(
    topic: str, value: bytes, headers: list[tuple[str, bytes]], offset: int = 0
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic, 0, offset, 1_700_000_000_000 + offset, 0, b"key", value, None, 3, len(value), headers
    )


def test_dead_letters_and_undecodable_records_are_shown_for_what_they_are() -> None:
    dead = live.bus_event(
        record(
            "dlq.oss-fault",
            b"<alarm/>",
            [
                ("dlq_reason", b"missing ce_type header"),
                ("dlq_topic", b"network.alarms"),
                ("dlq_partition", b"0"),
                ("dlq_offset", b"41"),
                ("dlq_consumer_group", b"oss-fault"),
            ],
        )
    )
    assert dead["type"] == "DeadLetter" and dead["topic"] == "dlq.oss-fault"
    assert dead["summary"] == "from network.alarms[0]@41 by oss-fault: missing ce_type header"
    broken = live.bus_event(record("network.alarms", b"<alarm/>", []))
    assert broken["type"] == "Undecodable" and "ce_type" in broken["summary"]


async def test_a_flood_is_shown_as_its_latest_events_and_a_count_of_the_rest() -> None:
    feed = live.LiveFeed()
    page = feed.subscribe()
    flood = [record("network.alarms", b"x", [], offset=n) for n in range(live.PER_POLL + 50)]
    live.publish_records(feed, flood[::-1])  # in time order, whatever order the partitions gave
    batch = await page.take(0)
    assert batch is not None
    assert [m.event for m in batch] == ["gap"] + ["bus"] * live.PER_POLL
    assert json.loads(batch[0].data)["skipped"] == 50
    assert [json.loads(m.data)["offset"] for m in batch[1:]] == list(range(50, live.PER_POLL + 50))
    feed.unsubscribe(page)
    live.publish_records(feed, flood)  # nobody watching: only the latest few, for the next page
    later = await feed.subscribe(after=json.loads(batch[-1].data)["seq"]).take(0)
    assert later is not None and [m.event for m in later] == ["gap"] + ["bus"] * live.PER_POLL_UNWATCHED


async def test_a_page_that_falls_behind_again_is_told_each_time() -> None:
    feed = live.LiveFeed(history=10, client_buffer=2)
    page = feed.subscribe()
    for n in range(4):
        feed.publish("bus", {"n": n})
    first = await page.take(0) or []
    for n in range(4, 7):
        feed.publish("bus", {"n": n})
    second = await page.take(0) or []
    assert [(m.event, json.loads(m.data).get("skipped")) for m in first] == [
        ("gap", 2),
        ("bus", None),
        ("bus", None),
    ]
    assert [(m.event, json.loads(m.data).get("skipped")) for m in second] == [
        ("gap", 1),
        ("bus", None),
        ("bus", None),
    ]


async def test_a_page_reconnecting_after_the_kept_history_is_told_how_much_it_missed() -> None:
    feed = live.LiveFeed(history=3)
    published = [feed.publish("bus", {"n": n}) for n in range(6)]
    last_seen = published[0].seq
    assert last_seen is not None
    batch = await feed.subscribe(after=last_seen).take(0) or []
    assert [m.event for m in batch] == ["gap", "bus", "bus", "bus"]
    gap = json.loads(batch[0].data)
    assert (gap["skipped"], gap["reason"]) == (2, "disconnected")  # n=1 and n=2 are no longer kept
    assert [json.loads(m.data)["n"] for m in batch[1:]] == [3, 4, 5]
    in_reach = await feed.subscribe(after=published[2].seq).take(0) or []
    assert [m.event for m in in_reach] == ["bus", "bus", "bus"]
    earlier_run = await feed.subscribe(after=1).take(0) or []
    assert earlier_run[0].event == "gap" and json.loads(earlier_run[0].data)["skipped"] is None


async def test_a_reconnect_with_an_id_from_an_earlier_run_gets_a_gap_over_http(served: Served) -> None:
    async with (
        httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(10.0, read=30.0)) as client,
        client.stream("GET", "/live/events", headers={"Last-Event-ID": "1"}) as response,
    ):
        assert response.status_code == 200
        gap, seq = await first_frame(response, "gap", {"reason": "disconnected"})
    assert gap["skipped"] is None and seq is not None and int(seq) == gap["seq"]


async def test_a_last_event_id_that_is_not_a_sequence_number_is_taken_as_absent(served: Served) -> None:
    assert live.sequence_number("00042") == 42
    assert [live.sequence_number(v) for v in ("²", "١٢", "5" * 21, "-1", "", None)] == [None] * 6
    async with httpx.AsyncClient(base_url=served.url, timeout=httpx.Timeout(10.0, read=30.0)) as client:
        for value in (b"\xb2", b"5" * 5000, b"12x"):
            async with client.stream("GET", "/live/events", headers={"Last-Event-ID": value}) as response:
                assert response.status_code == 200, value
                hello, _ = await first_frame(response, "hello")
                assert "tailing" in hello


def encoded(event: Envelope[EventPayload]) -> ConsumerRecord[bytes, bytes]:
    _, value, headers = codec.encode(event)
    return record("any.topic", value, list(headers))


def test_the_stream_leaves_out_free_text_that_may_hold_personal_data() -> None:
    alarm = new_event(
        ProbeAlarmRaised(
            notification_id="PA-1",
            reduction_key="equipmentAlarm:equipmentMalfunction:NODE-LON-CR1",
            alarmed_object_id="NODE-LON-CR1",
            alarmed_object_type=ResourceType.NODE,
            alarm_type=AlarmType.EQUIPMENT,
            probable_cause=ProbableCause.EQUIPMENT_MALFUNCTION,
            perceived_severity=PerceivedSeverity.MAJOR,
            event_time=datetime.now(UTC),
            service_affecting=True,
            source_system_id="ems-north",
            alarm_details={"comment": f"{CUSTOMER_NAME} called from +441632960001"},
        ),
        source="test-live",
    )
    cancelled = new_event(
        ProductOrderStateChanged(
            order_id="PO-1",
            customer_id="CUST-1",
            offering_id="PO-FIBRE-1G",
            state=ProductOrderState.CANCELLED,
            reason=f"{CUSTOMER_NAME} moved house",
        ),
        source="test-live",
    )
    failed = new_event(
        ProductOrderStateChanged(
            order_id="PO-2",
            customer_id="CUST-1",
            offering_id="PO-FIBRE-1G",
            state=ProductOrderState.FAILED,
            reason="noPath: no working path between SITE-LON and SITE-MAN",
        ),
        source="test-live",
    )
    shown = [live.bus_event(encoded(e)) for e in (alarm, cancelled, failed)]
    for event in shown[:2]:
        assert CUSTOMER_NAME not in json.dumps(event) and "+441632960001" not in json.dumps(event)
    assert "alarm_details" not in shown[0]["data"]
    assert shown[0]["data"]["perceived_severity"] == "major" and shown[0]["severity"] == "major"
    assert shown[1]["data"]["state"] == "cancelled" and "reason" not in shown[1]["data"]
    assert shown[2]["data"]["reason"].startswith("noPath")  # the system's words stay


async def test_the_metrics_consumer_is_stopped_when_the_admin_client_fails_to_start(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped: list[AIOKafkaConsumer] = []
    real_stop = AIOKafkaConsumer.stop

    async def failing_start(self: AIOKafkaAdminClient) -> None:
        raise KafkaConnectionError("admin unreachable")

    async def recording_stop(self: AIOKafkaConsumer) -> None:
        stopped.append(self)
        await real_stop(self)

    monkeypatch.setattr(AIOKafkaAdminClient, "start", failing_start)
    monkeypatch.setattr(AIOKafkaConsumer, "stop", recording_stop)
    with pytest.raises(KafkaConnectionError):
        await live.sample_metrics(served.edge, live.LiveFeed())
    assert len(stopped) == 1 and stopped[0]._closed


async def test_terminated_services_are_not_counted(served: Served) -> None:
    async with served.edge.oss_pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO services (id, name, state, terminated_at) VALUES ('SVC-GONE', 'ended', 'terminated', now())"
        )
    async with httpx.AsyncClient(base_url=served.url, timeout=10.0) as client:
        services = (await client.get("/live/services")).json()
    assert services["services"] == len(served.edge.network["services"])


async def test_the_orders_pane_leaves_out_a_cancelled_order_s_reason(served: Served) -> None:
    async with served.edge.bss_pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO customers (id, name, sla_tier) VALUES ('CUST-C1', 'C1', 'gold')")
        await conn.executemany(
            """
            INSERT INTO product_orders (id, customer_id, offering_id, a_site_id, z_site_id, state, reason,
                                        requested_at)
            VALUES ($1, 'CUST-C1', 'PO-FIBRE-1G', 'SITE-LON', 'SITE-MAN', $2, $3, now())
            """,
            [
                ("PO-CANCELLED", "cancelled", f"{CUSTOMER_NAME} moved house"),
                ("PO-FAILED", "failed", "noPath: no working path"),
            ],
        )
    async with httpx.AsyncClient(base_url=served.url, timeout=10.0) as client:
        response = await client.get("/live/orders")
    reasons = {o["id"]: o["reason"] for o in response.json()["orders"]}
    assert reasons == {"PO-CANCELLED": None, "PO-FAILED": "noPath: no working path"}
    assert CUSTOMER_NAME not in response.text
