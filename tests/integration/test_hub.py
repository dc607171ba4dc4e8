"""The TMF688 event hubs over real HTTP, with the real broker and PostgreSQL: subscriptions are
kept in the owning domain's schema, and a domain's dispatcher POSTs each event to the callbacks
whose query it matches (and to no other), while a callback that keeps failing holds nobody up."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI, Request, Response

from dashboard import hub
from dashboard.app import listen, serve
from events import new_event
from events.bss import ProductOrderState, ProductOrderStateChanged
from events.network import UsageKind, UsageRecorded
from events.oss import AlarmCleared, AlarmRaised
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import eventually
from tests.integration.test_api import Served, assert_error, served_api

ALARM_HUB = "/tmf-api/alarmManagement/v5/hub"
ORDER_HUB = "/tmf-api/productOrderingManagement/v5/hub"
USAGE_HUB = "/tmf-api/usageManagement/v5/hub"


class Receiver:
    """A subscriber's callback endpoint on a loopback port: keeps what each path received, and
    answers 503 on ``/broken`` (counting the attempts)."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.refused = 0
        self.app = FastAPI()
        self.app.add_api_route("/{name}", self._receive, methods=["POST"])
        self.url = ""

    async def _receive(self, name: str, request: Request) -> Response:
        if name == "broken":
            self.refused += 1
            return Response(status_code=503)
        self.received.setdefault(name, []).append(await request.json())
        return Response(status_code=204)

    def got(self, name: str) -> list[dict[str, Any]]:
        return self.received.get(name, [])


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    """A receiver on a free loopback port, stopped gracefully (its listener closed) at the end."""
    receiver = Receiver()
    sock = listen("127.0.0.1", 0)
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    task = asyncio.create_task(serve(receiver.app, sock))
    try:
        yield receiver
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sock.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(endpoints: Endpoints, settings: Settings) -> AsyncIterator[Served]:
    async with served_api(endpoints, settings) as served:
        yield served


@contextlib.asynccontextmanager
async def dispatching(api: Served, domain: str) -> AsyncIterator[hub.HubDispatcher]:
    """Run one domain's hub dispatcher, with quick retries so a failing callback is given up soon."""
    policy = hub.DeliveryPolicy(timeout=1.0, attempts=2, backoff=0.05, suspend_for=60.0)
    [dispatcher] = [d for d in hub.dispatchers(api.edge, policy) if d.pool is getattr(api, domain)]
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def subscribe(api: Served, path: str, callback: str, query: str = "") -> str:
    response = await api.client.post(path, json={"callback": callback, "query": query})
    assert response.status_code == 201, response.text
    subscription_id: str = response.json()["id"]
    return subscription_id


def raised(alarm_id: str, key: str, severity: PerceivedSeverity) -> AlarmRaised:
    return AlarmRaised(
        alarm_id=alarm_id,
        reduction_key=key,
        alarmed_object_id="LINK-HUB",
        alarmed_object_type=ResourceType.LINK,
        alarm_type=AlarmType.COMMUNICATIONS,
        probable_cause=ProbableCause.LOSS_OF_SIGNAL,
        perceived_severity=severity,
        alarm_raised_time=datetime.now(UTC),
        service_affecting=True,
        source_system_id="probe-hub",
    )


async def test_subscriptions_are_created_read_and_deleted(api: Served) -> None:
    response = await api.client.post(
        ALARM_HUB,
        json={
            "callback": "http://127.0.0.1:9/alarms",
            "query": "eventType=AlarmRaised&perceivedSeverity=critical",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == created["href"]
    assert created["callback"] == "http://127.0.0.1:9/alarms"
    assert created["query"] == "eventType=AlarmRaised&perceivedSeverity=critical"
    read = await api.client.get(f"{ALARM_HUB}/{created['id']}")
    assert read.status_code == 200 and read.json() == created
    async with api.oss.acquire() as conn:
        assert await conn.fetchval("SELECT api FROM hub_subscriptions WHERE id = $1", created["id"]) == (
            "alarmManagement"
        )
    # Another API's hub does not know it.
    assert_error(await api.client.get(f"/tmf-api/troubleTicket/v5/hub/{created['id']}"), 404)

    deleted = await api.client.delete(f"{ALARM_HUB}/{created['id']}")
    assert deleted.status_code == 204
    assert_error(await api.client.get(f"{ALARM_HUB}/{created['id']}"), 404)
    assert_error(await api.client.delete(f"{ALARM_HUB}/{created['id']}"), 404)

    order_hub = await subscribe(api, ORDER_HUB, "http://127.0.0.1:9/orders", "state=completed,failed")
    async with api.bss.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM hub_subscriptions WHERE id = $1", order_hub) == 1
    assert (await api.client.delete(f"{ORDER_HUB}/{order_hub}")).status_code == 204


async def test_bad_subscriptions_are_refused(api: Served) -> None:
    cb = "http://127.0.0.1:9/cb"
    cases = [
        ({"callback": cb, "query": "eventType=OrderShipped"}, "choose from AlarmRaised"),
        ({"callback": cb, "query": "eventType=AlarmCleared&perceivedSeverity=critical"}, "perceivedSeverity"),
        ({"callback": cb, "query": "colour=red"}, "colour"),
        ({"callback": cb, "query": "eventType="}, "no value"),
        ({"callback": "ftp://127.0.0.1/cb"}, "callback"),
        ({"callback": "http://169.254.169.254/latest/meta-data/"}, "169.254.169.254"),
        ({"callback": "http://[fe80::1]:8080/cb"}, "callback"),
        ({"callback": "http://[::ffff:169.254.169.254]/cb"}, "callback"),
        ({"callback": "http://0.0.0.0:9/cb"}, "callback"),
        ({"callback": "http://224.0.0.1/cb"}, "callback"),
        ({"callback": "http://operator:secret@127.0.0.1:9/cb"}, "password"),
        ({"callback": "not a url"}, "callback"),
        ({"query": "eventType=AlarmRaised"}, "callback"),
    ]
    for body, fragment in cases:
        assert_error(await api.client.post(ALARM_HUB, json=body), 400, fragment)


async def test_matching_alarm_events_reach_their_callbacks_and_others_do_not(api: Served) -> None:
    tag = uuid.uuid4().hex[:8]
    key = f"communicationsAlarm:lossOfSignal:LINK-HUB-{tag}"  # one key: one partition, in order
    async with receiving() as receiver, dispatching(api, "oss") as dispatcher:
        critical = await subscribe(
            api, ALARM_HUB, f"{receiver.url}/critical", "eventType=AlarmRaised&perceivedSeverity=critical"
        )
        everything = await subscribe(api, ALARM_HUB, f"{receiver.url}/all")
        broken = await subscribe(api, ALARM_HUB, f"{receiver.url}/broken", "eventType=AlarmRaised")
        unreachable = await subscribe(api, ALARM_HUB, "http://127.0.0.1:9/nobody-listens")
        try:
            publisher = api.edge.bus.publisher("oss-fault")
            events = [
                new_event(raised(f"ALM-1{tag}", key, PerceivedSeverity.MINOR), source="/oss/fault"),
                new_event(
                    AlarmCleared(
                        alarm_id=f"ALM-1{tag}",
                        reduction_key=key,
                        alarm_cleared_time=datetime.now(UTC),
                        alarmed_object_id="LINK-HUB",
                    ),
                    source="/oss/fault",
                ),
                new_event(raised(f"ALM-2{tag}", key, PerceivedSeverity.CRITICAL), source="/oss/fault"),
            ]
            await publisher.publish(*events)

            async def all_seen() -> bool:
                return len(receiver.got("all")) == 3

            await eventually(all_seen, timeout=30, what=lambda: f"3 events at /all, got {receiver.received}")
            assert [e["eventId"] for e in receiver.got("all")] == [e.id for e in events]
            [delivered] = receiver.got("critical")
            assert delivered["eventId"] == events[2].id
            assert delivered["eventType"] == "AlarmRaised"
            assert datetime.fromisoformat(delivered["eventTime"]) == events[2].time
            assert delivered["event"]["alarmId"] == f"ALM-2{tag}"
            assert delivered["event"]["perceivedSeverity"] == "critical"
            assert delivered["event"]["alarmedObjectType"] == "link"

            # The failing callbacks were tried, given up, and held back nobody.
            async def given_up() -> bool:
                return dispatcher.delivery is not None and dispatcher.delivery.failed >= 2

            await eventually(given_up, what="both failing callbacks given up")
            assert receiver.got("broken") == []
            assert receiver.refused >= 2  # tried (two attempts for the first event), then suspended
        finally:
            for subscription in (critical, everything, broken, unreachable):
                await api.client.delete(f"{ALARM_HUB}/{subscription}")


async def test_order_events_reach_the_product_ordering_hub(api: Served) -> None:
    order_id = f"PO-HUB{uuid.uuid4().hex[:8]}"
    async with receiving() as receiver, dispatching(api, "bss"):
        done = await subscribe(
            api,
            ORDER_HUB,
            f"{receiver.url}/done",
            f"eventType=ProductOrderStateChanged&state=completed,failed&orderId={order_id}",
        )
        mine = await subscribe(api, ORDER_HUB, f"{receiver.url}/mine", f"orderId={order_id}")
        try:
            publisher = api.edge.bus.publisher("bss-ordering")
            for state in (
                ProductOrderState.ACKNOWLEDGED,
                ProductOrderState.IN_PROGRESS,
                ProductOrderState.COMPLETED,
            ):
                await publisher.publish(
                    new_event(
                        ProductOrderStateChanged(
                            order_id=order_id,
                            customer_id="CUST-0001",
                            offering_id="PO-FIBRE-1G",
                            state=state,
                            service_id=f"SVC-{order_id}",
                        ),
                        source="/bss/ordering",
                    )
                )

            async def all_seen() -> bool:
                return len(receiver.got("mine")) == 3

            await eventually(all_seen, timeout=30, what=lambda: f"3 order events, got {receiver.received}")
            assert [e["event"]["state"] for e in receiver.got("mine")] == [
                "acknowledged",
                "inProgress",
                "completed",
            ]
            assert [e["event"]["state"] for e in receiver.got("done")] == ["completed"]
        finally:
            for subscription in (done, mine):
                await api.client.delete(f"{ORDER_HUB}/{subscription}")


async def test_loopback_and_named_callbacks_are_accepted(api: Served) -> None:
    for callback in ("http://127.0.0.1:9/cb", "http://[::1]:9/cb", "https://hooks.example.net/ossbss"):
        subscription = await subscribe(api, ALARM_HUB, callback)
        assert (await api.client.delete(f"{ALARM_HUB}/{subscription}")).status_code == 204


def usage(usage_id: str, service_id: str, start: datetime) -> UsageRecorded:
    return UsageRecorded(
        usage_id=usage_id,
        service_id=service_id,
        usage_kind=UsageKind.VOICE,
        quantity=60,
        start_time=start,
        source_system_id="hub-test",
    )


async def test_a_subscription_gets_what_reaches_the_bus_after_it_whatever_the_event_time(api: Served) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    service = f"SVC-HUB{tag}"  # one key: one partition, in order
    now = datetime.now(UTC)
    publisher = api.edge.bus.publisher("mediation-simulator")
    async with receiving() as receiver, dispatching(api, "bss"):
        # Published before the subscription, though dated after it: not for this subscriber.
        early = usage(f"U-EARLY-{tag}", service, now + timedelta(hours=1))
        await publisher.publish(new_event(early, source="/network/mediation", time=early.start_time))
        subscription = await subscribe(api, USAGE_HUB, f"{receiver.url}/usage", f"serviceId={service}")
        try:
            # A call that started two hours ago, rated now: published after the subscription.
            late = usage(f"U-LATE-{tag}", service, now - timedelta(hours=2))
            await publisher.publish(new_event(late, source="/network/mediation", time=late.start_time))

            async def seen() -> bool:
                return bool(receiver.got("usage"))

            await eventually(seen, timeout=30, what=lambda: f"the late usage, got {receiver.received}")
            assert [e["event"]["usageId"] for e in receiver.got("usage")] == [late.usage_id]
        finally:
            await api.client.delete(f"{USAGE_HUB}/{subscription}")


async def test_a_slow_callback_is_given_up_after_the_batch_budget_and_holds_nobody_up() -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/slow":
            await asyncio.sleep(30)
        return httpx.Response(204)

    policy = hub.DeliveryPolicy(timeout=60.0, batch_budget=0.3, suspend_for=60.0)
    query = hub.SubscriptionQuery(None, {})
    created = datetime.now(UTC)
    slow = hub.Subscription("HUB-SLOW", "alarmManagement", "http://subscriber/slow", query, created)
    fast = hub.Subscription("HUB-FAST", "alarmManagement", "http://subscriber/fast", query, created)
    events = [{"eventId": f"E-{n}", "eventType": "AlarmRaised"} for n in range(5)]
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        delivery = hub.CallbackDelivery(client, policy)
        started = loop.time()
        async with asyncio.timeout(10):  # without a budget the slow one would take minutes
            await asyncio.gather(delivery.deliver_all(slow, events), delivery.deliver_all(fast, events))
        elapsed = loop.time() - started
    assert elapsed < 2.0
    assert (delivery.delivered, delivery.failed) == (5, 5)
    assert delivery.suspended("HUB-SLOW") and not delivery.suspended("HUB-FAST")
