"""The TM Forum-shaped HTTP API over real HTTP, on the real PostgreSQL and broker: alarms and
tickets (TMF642, TMF621) from the OSS schema, orders, bills and usage (TMF622, TMF678, TMF635)
from the BSS schema, operator and customer requests published as events, and TMF630 errors for
what a client gets wrong."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from structlog.testing import capture_logs

from bss_consumers.catalog.offerings import seed_offerings
from dashboard.api import errors
from dashboard.app import create_app, listen, serve
from dashboard.context import Edge
from events import DecodeError, Envelope, EventPayload, decode
from events.bss import ProductOrderCancellationRequested, ProductOrderRequested
from events.oss import AckState, AlarmAcknowledgementRequested, AlarmClearanceRequested
from runtime.bus import Bus
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology, apply
from tests.conftest import domain_pool, eventually

ALARMS = "/tmf-api/alarmManagement/v5/alarm"
TICKETS = "/tmf-api/troubleTicket/v5/troubleTicket"
ORDERS = "/tmf-api/productOrderingManagement/v5/productOrder"
BILLS = "/tmf-api/customerBillManagement/v5/customerBill"
USAGE = "/tmf-api/usageManagement/v5/usage"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@dataclass
class Served:
    """The HTTP app on a loopback port, over real pools and a real bus."""

    client: httpx.AsyncClient
    edge: Edge
    endpoints: Endpoints

    @property
    def oss(self) -> asyncpg.Pool:
        return self.edge.oss_pool

    @property
    def bss(self) -> asyncpg.Pool:
        return self.edge.bss_pool


@contextlib.asynccontextmanager
async def served_api(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Served]:
    """Build the app with ``create_app`` on the session's servers and serve it on a free port."""
    topology = Topology.load(settings.topology_path)
    await apply(topology, endpoints.bootstrap_servers)
    bus = Bus(endpoints.bootstrap_servers, topology, client_id="test-api")
    await bus.start()
    try:
        async with (
            domain_pool(endpoints, settings, "oss") as oss,
            domain_pool(endpoints, settings, "bss") as bss,
        ):
            edge = Edge(settings, endpoints.bootstrap_servers, topology, bus, oss, bss, {})
            sock = listen("127.0.0.1", 0)
            port = sock.getsockname()[1]
            server = asyncio.create_task(serve(create_app(edge), sock))
            try:
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                    yield Served(client, edge, endpoints)
            finally:
                server.cancel()
                await asyncio.gather(server, return_exceptions=True)
                sock.close()
    finally:
        await bus.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Served]:
    async with served_api(endpoints, settings) as served:
        await seed_offerings(served.bss)
        yield served


async def events_on(endpoints: Endpoints, topic: str) -> list[Envelope[EventPayload]]:
    """Every event on ``topic`` now, decoded."""
    consumer = AIOKafkaConsumer(bootstrap_servers=endpoints.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        found: list[Envelope[EventPayload]] = []
        while any([await consumer.position(tp) < end[tp] for tp in parts]):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    with contextlib.suppress(DecodeError):
                        found.append(decode(r.headers, r.value))
        return found
    finally:
        await consumer.stop()


async def published(
    endpoints: Endpoints, topic: str, wanted: Callable[[Envelope[EventPayload]], bool]
) -> list[Envelope[EventPayload]]:
    """Wait until ``topic`` holds an event ``wanted`` accepts; returns all such events."""
    found: list[Envelope[EventPayload]] = []

    async def seen() -> bool:
        found[:] = [e for e in await events_on(endpoints, topic) if wanted(e)]
        return bool(found)

    await eventually(seen, timeout=15, what=f"the event on {topic}")
    return found


def assert_error(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    """The response is a TMF630 error of ``status`` whose message says each of ``fragments``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) >= {"code", "reason", "message", "status"}, body
    assert body["status"] == str(status)
    for fragment in fragments:
        assert fragment in body["message"], body
    return body


# OSS data -----------------------------------------------------------------------------------------


async def add_alarm(
    pool: asyncpg.Pool,
    alarm_id: str,
    resource: str,
    *,
    severity: str = "critical",
    state: str = "raised",
    raised_at: datetime = T0,
    parent: str | None = None,
) -> None:
    await pool.execute(
        """
        INSERT INTO alarms (id, reduction_key, alarmed_object_id, alarmed_object_type, alarm_type,
                            probable_cause, perceived_severity, state, service_affecting, source_system_id,
                            raised_at, last_seen_at, cleared_at, is_root_cause, parent_alarm_id)
        VALUES ($1, $2, $3, 'link', 'communicationsAlarm', 'lossOfSignal', $4, $5, true, 'probe-1',
                $6, $6, $7, $8, $9)
        """,
        alarm_id,
        f"communicationsAlarm:lossOfSignal:{resource}:{alarm_id}",
        resource,
        severity,
        state,
        raised_at,
        raised_at + timedelta(minutes=5) if state == "cleared" else None,
        parent is None,
        parent,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def incident(api: Served) -> dict[str, str]:
    """A node alarm (root cause) explaining a link alarm, a ticket for it, a service it took down,
    and two older alarms on the same link."""
    tag = uuid.uuid4().hex[:8].upper()
    ids = {
        "tag": tag,
        "root": f"ALM-R{tag}",
        "symptom": f"ALM-S{tag}",
        "old": f"ALM-O{tag}",
        "cleared": f"ALM-C{tag}",
        "ticket": f"TT-{tag}",
        "node": f"NODE-{tag}",
        "link": f"LINK-{tag}",
        "service": f"SVC-{tag}",
    }
    await add_alarm(api.oss, ids["root"], ids["node"], raised_at=T0)
    await add_alarm(
        api.oss, ids["symptom"], ids["link"], parent=ids["root"], raised_at=T0 + timedelta(seconds=5)
    )
    await add_alarm(api.oss, ids["old"], ids["link"], severity="minor", raised_at=T0 - timedelta(days=1))
    await add_alarm(api.oss, ids["cleared"], ids["link"], state="cleared", raised_at=T0 - timedelta(days=2))
    async with api.oss.acquire() as conn:
        await conn.execute(
            "INSERT INTO trouble_tickets (id, alarm_id, name, severity, priority, status, created_at) "
            "VALUES ($1, $2, $3, 'critical', 1, 'acknowledged', $4)",
            ids["ticket"],
            ids["root"],
            f"equipmentMalfunction on node {ids['node']}",
            T0,
        )
        await conn.execute("INSERT INTO services (id, name) VALUES ($1, 'Fibre test')", ids["service"])
        await conn.execute(
            "INSERT INTO service_outages (id, service_id, resource_id, alarm_id, started_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            f"OUT-{tag}",
            ids["service"],
            ids["node"],
            ids["root"],
            T0,
        )
    return ids


# TMF642 -------------------------------------------------------------------------------------------


async def test_alarms_are_listed_with_filters_and_pagination(api: Served, incident: dict[str, str]) -> None:
    link = incident["link"]
    response = await api.client.get(ALARMS, params={"alarmedObjectId": link})
    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == "3"
    assert response.headers["X-Result-Count"] == "3"
    assert [a["id"] for a in response.json()] == [incident["symptom"], incident["old"], incident["cleared"]]

    page = await api.client.get(ALARMS, params={"alarmedObjectId": link, "offset": 1, "limit": 1})
    assert (page.headers["X-Total-Count"], page.headers["X-Result-Count"]) == ("3", "1")
    assert [a["id"] for a in page.json()] == [incident["old"]]

    async def ids(**params: Any) -> list[str]:
        response = await api.client.get(ALARMS, params={"alarmedObjectId": link, **params})
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()]

    assert await ids(state="cleared") == [incident["cleared"]]
    assert await ids(perceivedSeverity="minor") == [incident["old"]]
    assert await ids(isRootCause="false") == [incident["symptom"]]
    assert await ids(ackState="acknowledged") == []
    assert await ids(alarmType="communicationsAlarm", state="raised") == [
        incident["symptom"],
        incident["old"],
    ]
    # '+' of the offset sent unencoded arrives as a space and is still understood.
    since = (T0 - timedelta(hours=1)).isoformat()
    assert await ids(**{"raisedTime.gt": since}) == [incident["symptom"]]
    raw = await api.client.get(f"{ALARMS}?alarmedObjectId={link}&raisedTime.lt=2025-03-02T09:00:00+00:00")
    assert [a["id"] for a in raw.json()] == [incident["cleared"]]


async def test_an_alarm_shows_its_root_cause_and_its_symptoms(api: Served, incident: dict[str, str]) -> None:
    root = (await api.client.get(f"{ALARMS}/{incident['root']}")).json()
    assert root["@type"] == "Alarm"
    assert root["href"].endswith(f"{ALARMS}/{incident['root']}")
    assert root["isRootCause"] is True
    assert [a["id"] for a in root["correlatedAlarm"]] == [incident["symptom"]]
    assert "parentAlarm" not in root
    assert root["alarmedObject"] == {"id": incident["node"], "@referredType": "Resource"}
    assert (root["state"], root["perceivedSeverity"], root["ackState"]) == (
        "raised",
        "critical",
        "unacknowledged",
    )
    assert root["alarmRaisedTime"] == "2025-03-03T09:00:00Z"

    symptom = (await api.client.get(f"{ALARMS}/{incident['symptom']}")).json()
    assert symptom["isRootCause"] is False
    assert symptom["parentAlarm"] == [
        {
            "id": incident["root"],
            "href": root["href"],
            "@referredType": "Alarm",
        }
    ]
    assert "correlatedAlarm" not in symptom


async def test_acknowledging_an_alarm_publishes_the_request(api: Served, incident: dict[str, str]) -> None:
    alarm_id = incident["symptom"]
    response = await api.client.patch(
        f"{ALARMS}/{alarm_id}",
        json={"@type": "Alarm", "ackState": "acknowledged", "ackUserId": "alice"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["id"] == alarm_id
    [request] = await published(
        api.endpoints,
        "oss.alarm-commands",
        lambda e: isinstance(e.data, AlarmAcknowledgementRequested) and e.data.alarm_id == alarm_id,
    )
    assert isinstance(request.data, AlarmAcknowledgementRequested)
    assert (request.data.ack_state, request.data.ack_user_id) == (AckState.ACKNOWLEDGED, "alice")

    undo = await api.client.patch(
        f"{ALARMS}/{alarm_id}", json={"ackState": "unacknowledged", "ackUserId": "bob"}
    )
    assert undo.status_code == 202
    await published(
        api.endpoints,
        "oss.alarm-commands",
        lambda e: (
            isinstance(e.data, AlarmAcknowledgementRequested)
            and e.data.alarm_id == alarm_id
            and e.data.ack_state is AckState.UNACKNOWLEDGED
        ),
    )


async def test_clearing_alarms_publishes_clearance_requests(api: Served, incident: dict[str, str]) -> None:
    by_patch = await api.client.patch(
        f"{ALARMS}/{incident['old']}", json={"state": "cleared", "clearUserId": "carol"}
    )
    assert by_patch.status_code == 202, by_patch.text

    task = await api.client.post(
        "/tmf-api/alarmManagement/v5/clearAlarms",
        json={
            "alarmPattern": [{"id": incident["root"]}, {"id": incident["cleared"]}],
            "clearUserId": "dave",
            "@type": "ClearAlarms",
        },
    )
    assert task.status_code == 201, task.text
    body = task.json()
    assert body["@type"] == "ClearAlarms"
    assert body["state"] == "acknowledged"
    # The one already cleared is not asked for again.
    assert [a["id"] for a in body["clearedAlarm"]] == [incident["root"]]

    def clearance(e: Envelope[EventPayload]) -> bool:
        return isinstance(e.data, AlarmClearanceRequested) and incident["tag"] in e.data.alarm_id

    requests = await published(api.endpoints, "oss.alarm-commands", clearance)

    async def both() -> bool:
        requests[:] = [e for e in await events_on(api.endpoints, "oss.alarm-commands") if clearance(e)]
        return len(requests) == 2

    await eventually(both, what="two clearance requests")
    assert {(e.data.alarm_id, e.data.clear_user_id) for e in requests} == {  # type: ignore[attr-defined]
        (incident["old"], "carol"),
        (incident["root"], "dave"),
    }

    unknown = await api.client.post(
        "/tmf-api/alarmManagement/v5/clearAlarms",
        json={"alarmPattern": [{"id": "ALM-NOPE"}], "clearUserId": "dave"},
    )
    assert_error(unknown, 404, "ALM-NOPE")
    by_type = await api.client.post(
        "/tmf-api/alarmManagement/v5/clearAlarms",
        json={"alarmPattern": [{"perceivedSeverity": "minor"}], "clearUserId": "dave"},
    )
    assert_error(by_type, 400, "by id only")


async def test_alarm_requests_that_cannot_be_acted_on_are_refused(
    api: Served, incident: dict[str, str]
) -> None:
    alarm = f"{ALARMS}/{incident['root']}"
    assert_error(
        await api.client.patch(f"{ALARMS}/ALM-NOPE", json={"ackState": "acknowledged", "ackUserId": "a"}), 404
    )
    assert_error(
        await api.client.patch(alarm, json={"ackState": "acknowledged"}), 400, "ackUserId is required"
    )
    assert_error(
        await api.client.patch(alarm, json={"ackState": "sort-of", "ackUserId": "a"}), 400, "ackState"
    )
    assert_error(await api.client.patch(alarm, json={"state": "raised", "ackUserId": "a"}), 400, "state")
    assert_error(
        await api.client.patch(alarm, json={"perceivedSeverity": "minor"}),
        400,
        "perceivedSeverity cannot be patched",
    )
    assert_error(await api.client.patch(alarm, json={}), 400, "give ackState")
    not_json = await api.client.patch(alarm, content=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(not_json, 400, "not valid JSON")


# TMF621 -------------------------------------------------------------------------------------------


async def test_a_ticket_shows_its_alarm_services_and_history(api: Served, incident: dict[str, str]) -> None:
    response = await api.client.get(f"{TICKETS}/{incident['ticket']}")
    assert response.status_code == 200, response.text
    ticket = response.json()
    assert ticket["@type"] == "TroubleTicket"
    assert (ticket["status"], ticket["severity"], ticket["priority"]) == ("acknowledged", "critical", "1")
    related = {(r["role"], r["entity"]["id"], r["entity"]["@referredType"]) for r in ticket["relatedEntity"]}
    assert related == {
        ("rootCauseAlarm", incident["root"], "Alarm"),
        ("affectedResource", incident["node"], "Resource"),
        ("affectedService", incident["service"], "Service"),
    }
    alarm_ref = next(r for r in ticket["relatedEntity"] if r["role"] == "rootCauseAlarm")
    assert (await api.client.get(alarm_ref["entity"]["href"])).json()["id"] == incident["root"]
    assert ticket["statusChange"] == [
        {
            "status": "acknowledged",
            "changeDate": "2025-03-03T09:00:00Z",
            "changeReason": f"opened for alarm {incident['root']}",
        }
    ]

    listed = await api.client.get(
        TICKETS,
        params={
            "severity": "critical",
            "creationDate.gt": "2025-03-03T08:59:59Z",
            "creationDate.lt": "2025-03-03T09:00:01Z",
        },
    )
    assert listed.status_code == 200, listed.text
    assert incident["ticket"] in [t["id"] for t in listed.json()]
    assert int(listed.headers["X-Total-Count"]) >= 1
    assert int(listed.headers["X-Total-Count"]) == int(listed.headers["X-Result-Count"]) == len(listed.json())
    assert_error(await api.client.get(f"{TICKETS}/TT-NOPE"), 404, "TT-NOPE")
    assert_error(await api.client.get(TICKETS, params={"status": "open"}), 400, "status")


# Errors common to every list ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [ALARMS, TICKETS, ORDERS, BILLS, USAGE])
@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_pagination_and_unknown_filters_are_400(
    api: Served, path: str, params: dict[str, str], fragment: str
) -> None:
    body = assert_error(await api.client.get(path, params=params), 400, fragment)
    assert body["code"] == "invalidQuery"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (ALARMS, "raisedTime.gt"),
        (TICKETS, "creationDate.lt"),
        (ORDERS, "orderDate.gt"),
        (BILLS, "billDate.lt"),
        (USAGE, "usageDate.gt"),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2025-13-01T00:00:00Z",
        "2025-03-01T00:00:00",
        "0001-01-01T00:00:00+14:00",  # before the year 1 in UTC
        "9999-12-31T23:59:59-14:00",  # after the year 9999 in UTC
    ],
)
async def test_bad_dates_are_400(api: Served, path: str, name: str, value: str) -> None:
    assert_error(await api.client.get(path, params={name: value}), 400, name)


@pytest.mark.parametrize("path", [ALARMS, TICKETS, ORDERS, BILLS, USAGE, "/tmf-api/alarmManagement/v5/hub"])
async def test_an_id_with_a_nul_character_is_400(api: Served, path: str) -> None:
    body = assert_error(await api.client.get(f"{path}/ALM%00X"), 400, "NUL")
    assert body["code"] == "invalidParameter"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (ALARMS, "alarmedObjectId"),
        (ORDERS, "relatedParty.id"),
        (BILLS, "billingAccount.id"),
        (USAGE, "serviceId"),
    ],
)
async def test_a_filter_with_a_nul_character_is_400(api: Served, path: str, name: str) -> None:
    body = assert_error(await api.client.get(path, params={name: "LINK\x00X"}), 400, name, "NUL")
    assert body["code"] == "invalidQuery"


@pytest.mark.parametrize("path", [ALARMS, TICKETS, ORDERS, BILLS, USAGE])
async def test_an_offset_beyond_a_bigint_is_400_and_the_largest_is_an_empty_page(
    api: Served, path: str
) -> None:
    assert_error(await api.client.get(path, params={"offset": str(2**63)}), 400, "offset")
    last = await api.client.get(path, params={"offset": str(2**63 - 1)})
    assert last.status_code == 200 and last.json() == []


async def test_a_body_with_a_nul_character_is_400(api: Served) -> None:
    response = await api.client.post(ORDERS, json=order_body("CUST-\x00"))
    assert_error(response, 400, "NUL")
    assert response.json()["code"] == "invalidBody"


async def test_values_postgresql_refuses_and_unexpected_errors_answer_tmf_errors() -> None:
    app = FastAPI()
    errors.install(app)

    @app.get("/tmf-api/test/v5/refused")
    async def refused() -> None:
        raise asyncpg.DataError('invalid byte sequence for encoding "UTF8": 0x00')

    @app.get("/tmf-api/test/v5/broken")
    async def broken() -> None:
        raise RuntimeError("a bug with internal details")

    @app.get("/elsewhere/broken")
    async def elsewhere() -> None:
        raise RuntimeError("a bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        with capture_logs() as logs:
            refused_response = await client.get("/tmf-api/test/v5/refused")
            broken_response = await client.get("/tmf-api/test/v5/broken")
            elsewhere_response = await client.get("/elsewhere/broken")
    assert_error(refused_response, 400, "UTF8")
    body = assert_error(broken_response, 500)
    assert body["code"] == "internalError" and "internal details" not in broken_response.text
    assert (elsewhere_response.status_code, elsewhere_response.text) == (500, "Internal Server Error")
    failures = [e for e in logs if e["event"] == "request failed"]
    assert [e["path"] for e in failures] == ["/tmf-api/test/v5/broken", "/elsewhere/broken"]
    assert all(isinstance(e["exc_info"], RuntimeError) for e in failures)


async def test_unknown_paths_answer_a_tmf_error_and_the_api_is_described(api: Served) -> None:
    assert_error(await api.client.get("/tmf-api/alarmManagement/v5/nothing"), 404)
    spec = (await api.client.get("/openapi.json")).json()
    for path in (
        ALARMS,
        f"{ALARMS}/{{alarm_id}}",
        TICKETS,
        ORDERS,
        BILLS,
        USAGE,
        "/tmf-api/alarmManagement/v5/hub",
    ):
        assert path in spec["paths"], path
    schemas = spec["components"]["schemas"]
    assert {"Alarm", "TroubleTicket", "ProductOrder", "CustomerBill", "Usage", "Money", "TmfError"} <= set(
        schemas
    )
    assert schemas["Money"]["properties"]["value"]["type"] == "number"


# BSS data -----------------------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def account(api: Served) -> dict[str, str]:
    """A customer, their account, one issued invoice with lines, and rated, billed and rejected
    usage."""
    tag = uuid.uuid4().hex[:8].upper()
    ids = {
        "tag": tag,
        "customer": f"CUST-{tag}",
        "account": f"ACC-API-{tag}",
        "invoice": f"INV-API-{tag}",
        "service": f"SVC-{tag}",
    }
    async with api.bss.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Api Ltd', 'gold')", ids["customer"]
        )
        await conn.execute(
            "INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day) "
            "VALUES ($1, $2, 'GBP', 'business', 23)",
            ids["account"],
            ids["customer"],
        )
        # Numbered from the one counter, as a bill run does: invoice numbers have no gaps.
        number = await conn.fetchval("UPDATE bill_numbers SET last_used = last_used + 1 RETURNING last_used")
        await conn.execute(
            """
            INSERT INTO invoices (id, bill_number, account_id, period_start, period_end, bill_date,
                                  payment_due_date, currency, tax_excluded_minor, tax_minor,
                                  tax_included_minor, paid_minor, state)
            VALUES ($1, $2, $3, '2025-02-23', '2025-03-22', $4, '2025-04-06', 'GBP', 12345, 2469, 14814,
                    1000, 'partiallyPaid')
            """,
            ids["invoice"],
            number,
            ids["account"],
            T0,
        )
        await conn.executemany(
            "INSERT INTO invoice_lines (invoice_id, line_no, kind, description, offering_id, amount_minor) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (ids["invoice"], 1, "recurring", "Business SIP 30 channels", "PO-SIP-30", 12000),
                (ids["invoice"], 2, "usage", "Voice calls: 3 record(s)", None, 845),
                (ids["invoice"], 3, "credit", "SLA credit", None, -500),
            ],
        )
        await conn.executemany(
            """
            INSERT INTO rated_usage (usage_id, service_id, account_id, usage_kind, quantity, start_time, state,
                                     reason, charged_quantity, allowance_used, amount_minor, currency, band,
                                     bill_period, invoice_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
            """,
            [
                (
                    f"U-B{tag}",
                    ids["service"],
                    ids["account"],
                    "voice",
                    61,
                    T0,
                    "rated",
                    None,
                    120,
                    0,
                    845,
                    "GBP",
                    "peak",
                    date(2025, 2, 23),
                    ids["invoice"],
                ),
                (
                    f"U-R{tag}",
                    ids["service"],
                    ids["account"],
                    "data",
                    2048,
                    T0 + timedelta(hours=1),
                    "rated",
                    None,
                    2048,
                    2048,
                    0,
                    "GBP",
                    "offPeak",
                    date(2025, 2, 23),
                    None,
                ),
                (
                    f"U-X{tag}",
                    ids["service"],
                    None,
                    "sms",
                    1,
                    T0 + timedelta(hours=2),
                    "rejected",
                    "no account holds the service",
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                ),
            ],
        )
    return ids


# TMF678 -------------------------------------------------------------------------------------------


async def test_a_bill_shows_exact_money_and_its_lines(api: Served, account: dict[str, str]) -> None:
    listed = await api.client.get(BILLS, params={"billingAccount.id": account["account"]})
    assert listed.status_code == 200, listed.text
    assert listed.headers["X-Total-Count"] == "1"
    [summary] = listed.json()
    assert "appliedCustomerBillingRate" not in summary

    bill = (await api.client.get(summary["href"])).json()
    assert bill["@type"] == "CustomerBill"
    assert bill["billingAccount"]["id"] == account["account"]
    assert bill["state"] == "partiallyPaid"
    assert bill["taxExcludedAmount"] == {"unit": "GBP", "value": 123.45}
    assert bill["taxIncludedAmount"] == {"unit": "GBP", "value": 148.14}
    assert bill["amountDue"] == {"unit": "GBP", "value": 148.14}
    assert bill["remainingAmount"] == {"unit": "GBP", "value": 138.14}
    assert bill["taxItem"] == [{"taxCategory": "VAT", "taxAmount": {"unit": "GBP", "value": 24.69}}]
    assert Decimal(str(bill["taxIncludedAmount"]["value"])) == Decimal("148.14")
    assert bill["billingPeriod"] == {"startDateTime": "2025-02-23", "endDateTime": "2025-03-22"}
    assert bill["paymentDueDate"] == "2025-04-06"
    assert bill["billDate"] == "2025-03-03T09:00:00Z"
    assert [
        (line["type"], line["taxExcludedAmount"]["value"]) for line in bill["appliedCustomerBillingRate"]
    ] == [
        ("recurring", 120.0),
        ("usage", 8.45),
        ("credit", -5.0),
    ]
    assert bill["appliedCustomerBillingRate"][0]["productOffering"]["id"] == "PO-SIP-30"

    filtered = await api.client.get(
        BILLS,
        params={"billingAccount.id": account["account"], "state": "settled"},
    )
    assert filtered.json() == [] and filtered.headers["X-Total-Count"] == "0"
    dated = await api.client.get(
        BILLS, params={"billingAccount.id": account["account"], "billDate.gt": "2025-03-03T08:00:00Z"}
    )
    assert [b["id"] for b in dated.json()] == [account["invoice"]]
    assert_error(await api.client.get(f"{BILLS}/INV-NOPE"), 404, "INV-NOPE")
    assert_error(await api.client.get(BILLS, params={"state": "paid"}), 400, "state")


# TMF635 -------------------------------------------------------------------------------------------


async def test_usage_shows_what_rating_made_of_it(api: Served, account: dict[str, str]) -> None:
    tag, service = account["tag"], account["service"]
    listed = await api.client.get(USAGE, params={"serviceId": service})
    assert listed.status_code == 200, listed.text
    assert [(u["id"], u["status"]) for u in listed.json()] == [
        (f"U-X{tag}", "rejected"),
        (f"U-R{tag}", "rated"),
        (f"U-B{tag}", "billed"),
    ]
    for status, expected in (("rated", f"U-R{tag}"), ("billed", f"U-B{tag}"), ("rejected", f"U-X{tag}")):
        response = await api.client.get(USAGE, params={"serviceId": service, "status": status})
        assert [u["id"] for u in response.json()] == [expected]
    guided = await api.client.get(USAGE, params={"serviceId": service, "status": "guided"})
    assert guided.status_code == 200 and guided.json() == []
    window = await api.client.get(
        USAGE,
        params={
            "serviceId": service,
            "usageDate.gt": "2025-03-03T09:30:00Z",
            "usageDate.lt": "2025-03-03T10:30:00Z",
        },
    )
    assert [u["id"] for u in window.json()] == [f"U-R{tag}"]

    billed = (await api.client.get(f"{USAGE}/U-B{tag}")).json()
    assert billed["usageType"] == "voice"
    characteristics = {c["name"]: c["value"] for c in billed["usageCharacteristic"]}
    assert characteristics["quantity"] == 61
    assert characteristics["chargedQuantity"] == 120
    assert characteristics["serviceId"] == service
    [rating] = billed["ratedProductUsage"]
    assert rating["isBilled"] is True
    assert rating["taxExcludedRatingAmount"] == {"unit": "GBP", "value": 8.45}
    assert rating["usageRatingTag"] == "peak"

    rejected = (await api.client.get(f"{USAGE}/U-X{tag}")).json()
    assert rejected["description"] == "no account holds the service"
    assert "ratedProductUsage" not in rejected
    assert_error(await api.client.get(f"{USAGE}/U-NOPE"), 404)
    assert_error(await api.client.get(USAGE, params={"status": "lost"}), 400, "status")


# TMF622 -------------------------------------------------------------------------------------------


def order_body(
    customer: str, offering: str = "PO-FIBRE-1G", a: str = "SITE-LON", z: str = "SITE-MAN"
) -> dict[str, Any]:
    return {
        "@type": "ProductOrder",
        "relatedParty": [{"id": customer, "role": "customer", "@referredType": "Customer"}],
        "productOrderItem": [
            {
                "id": "1",
                "action": "add",
                "productOffering": {"id": offering},
                "product": {"place": [{"role": "aEnd", "id": a}, {"role": "zEnd", "id": z}]},
            }
        ],
    }


async def test_an_order_is_placed_with_201_and_published(api: Served, account: dict[str, str]) -> None:
    response = await api.client.post(ORDERS, json=order_body(account["customer"]))
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["state"] == "acknowledged"
    assert order["@type"] == "ProductOrder"
    assert response.headers["Location"] == order["href"]
    assert order["href"].endswith(f"{ORDERS}/{order['id']}")
    item = order["productOrderItem"][0]
    assert item["productOffering"]["id"] == "PO-FIBRE-1G"
    assert {(p["role"], p["id"]) for p in item["product"]["place"]} == {
        ("aEnd", "SITE-LON"),
        ("zEnd", "SITE-MAN"),
    }

    [event] = await published(
        api.endpoints,
        "bss.order-requests",
        lambda e: isinstance(e.data, ProductOrderRequested) and e.data.order_id == order["id"],
    )
    assert isinstance(event.data, ProductOrderRequested)
    assert (event.data.customer_id, event.data.offering_id, event.data.a_site_id, event.data.z_site_id) == (
        account["customer"],
        "PO-FIBRE-1G",
        "SITE-LON",
        "SITE-MAN",
    )


async def test_a_v5_order_with_sites_as_characteristics_is_understood(
    api: Served, account: dict[str, str]
) -> None:
    body = {
        "relatedParty": [{"role": "Customer", "partyOrPartyRole": {"id": account["customer"]}}],
        "productOrderItem": [
            {
                "productOffering": {"id": "PO-SIP-30"},
                "product": {
                    "productCharacteristic": [
                        {"name": "aEnd", "value": "SITE-BRS"},
                        {"name": "zEnd", "value": "SITE-EDI"},
                    ]
                },
            }
        ],
    }
    response = await api.client.post(ORDERS, json=body)
    assert response.status_code == 201, response.text
    order_id = response.json()["id"]
    [event] = await published(
        api.endpoints,
        "bss.order-requests",
        lambda e: isinstance(e.data, ProductOrderRequested) and e.data.order_id == order_id,
    )
    assert (event.data.a_site_id, event.data.z_site_id) == ("SITE-BRS", "SITE-EDI")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda b: b.pop("productOrderItem"), "productOrderItem"),
        (lambda b: b.update(relatedParty=[{"id": "CUST-0001", "role": "reseller"}]), "role 'customer'"),
        (lambda b: b["relatedParty"][0].update(id="CUST-NOBODY"), "unknown customer 'CUST-NOBODY'"),
        (
            lambda b: b["productOrderItem"][0].update(productOffering={"id": "PO-NOPE"}),
            "unknown product offering",
        ),
        (lambda b: b["productOrderItem"][0].pop("productOffering"), "productOffering"),
        (lambda b: b["productOrderItem"][0]["product"]["place"].pop(), "zEnd"),
        (
            lambda b: b["productOrderItem"][0]["product"]["place"][1].update(id="SITE-LON"),
            "two different sites",
        ),
        (lambda b: b["productOrderItem"][0].update(action="delete"), "only 'add'"),
        (lambda b: b["productOrderItem"].append(b["productOrderItem"][0]), "exactly one productOrderItem"),
        (lambda b: b.update(relatedParty="CUST-0001"), "relatedParty"),
    ],
)
async def test_bad_orders_are_refused_at_once(
    api: Served, account: dict[str, str], change: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    body = order_body(account["customer"])
    change(body)
    response = await api.client.post(ORDERS, json=body)
    assert_error(response, 400, fragment)
    assert response.json()["code"] == "invalidBody"


async def test_a_body_that_is_not_json_is_refused(api: Served) -> None:
    response = await api.client.post(
        ORDERS, content=b"customer=CUST-0001", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "not valid JSON")


async def test_orders_are_listed_read_and_cancelled(api: Served, account: dict[str, str]) -> None:
    tag, customer = account["tag"], account["customer"]
    rows = [
        (f"PO-F{tag}", "failed", "no working path between SITE-LON and SITE-MAN", T0),
        (f"PO-A{tag}", "inProgress", None, T0 + timedelta(minutes=1)),
        (f"PO-C{tag}", "completed", None, T0 + timedelta(minutes=2)),
    ]
    await api.bss.executemany(
        "INSERT INTO product_orders (id, customer_id, offering_id, a_site_id, z_site_id, state, service_id, "
        "reason, requested_at) VALUES ($1, $2, 'PO-FIBRE-1G', 'SITE-LON', 'SITE-MAN', $3, $5, $4, $6)",
        [(oid, customer, state, reason, f"SVC-{oid}", at) for oid, state, reason, at in rows],
    )
    listed = await api.client.get(
        ORDERS, params={"relatedParty.id": customer, "orderDate.lt": "2025-03-04T00:00:00Z"}
    )
    assert listed.status_code == 200, listed.text
    assert [o["id"] for o in listed.json()] == [f"PO-C{tag}", f"PO-A{tag}", f"PO-F{tag}"]
    assert listed.headers["X-Total-Count"] == "3"
    failed = await api.client.get(ORDERS, params={"relatedParty.id": customer, "state": "failed"})
    [order] = failed.json()
    assert order["note"] == [
        {"author": "bss-ordering", "text": "no working path between SITE-LON and SITE-MAN"}
    ]
    completed = (await api.client.get(f"{ORDERS}/PO-C{tag}")).json()
    assert completed["completionDate"]
    assert completed["productOrderItem"][0]["product"]["realizingService"][0]["id"] == f"SVC-PO-C{tag}"
    assert completed["productOrderItem"][0]["productOffering"]["name"]

    cancel = await api.client.post(
        "/tmf-api/productOrderingManagement/v5/cancelProductOrder",
        json={"productOrder": {"id": f"PO-A{tag}"}, "cancellationReason": "changed my mind"},
    )
    assert cancel.status_code == 201, cancel.text
    assert cancel.json()["state"] == "acknowledged"
    [event] = await published(
        api.endpoints,
        "bss.order-requests",
        lambda e: isinstance(e.data, ProductOrderCancellationRequested) and e.data.order_id == f"PO-A{tag}",
    )
    assert event.data.cancellation_reason == "changed my mind"  # type: ignore[attr-defined]

    too_late = await api.client.post(
        "/tmf-api/productOrderingManagement/v5/cancelProductOrder",
        json={"productOrder": {"id": f"PO-C{tag}"}},
    )
    assert_error(too_late, 409, "completed")
    assert_error(await api.client.get(f"{ORDERS}/PO-NOPE"), 404, "PO-NOPE")
    assert_error(await api.client.get(ORDERS, params={"state": "lost"}), 400, "state")
