"""Service termination against the real PostgreSQL: ordering validates and completes termination
orders and ends the assignment; OSS inventory terminates the service, releases its resources and
forgets the holder; billing charges the service up to its termination day; sales counts churn."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest
import pytest_asyncio

from bss_consumers.billing import agents as billing
from bss_consumers.billing.run import bill_run
from bss_consumers.catalog.offerings import seed_offerings
from bss_consumers.ordering import agents as ordering
from bss_consumers.sales import agents as sales
from events import Envelope, EventPayload, new_event
from events.bss import (
    CustomerServiceAssigned,
    OrderItemAction,
    ProductOrderCancellationRequested,
    ProductOrderState,
    ProductOrderStateChanged,
    ProductTerminationRequested,
    ServiceProvisioningRequested,
    ServiceTerminationRequested,
    SlaTier,
)
from events.oss import ServiceTerminated, ServiceTerminationFailed
from oss_consumers.fault.store import services_on
from oss_consumers.inventory import agents as inventory
from runtime.bus import Bus, Outbox
from runtime.consumer import Rejected
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology
from tests.conftest import domain_pool

CYCLE = 21  # a bill cycle no other test uses: a run bills every account of it
PERIOD = date(2026, 9, 21)
NEXT = date(2026, 10, 21)
TODAY = date(2026, 11, 27)
ENDED = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def bss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    """A customer with an account and two services, one seeded (no offering), one ordered with
    PO-FIBRE-1G; and another customer."""
    async with domain_pool(endpoints, settings, "bss") as pool:
        await seed_offerings(pool)
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Leaving Ltd', 'platinum'), "
                "($2, 'Other Ltd', 'bronze')",
                f"CUST-{tag}",
                f"CUST-{tag}-OTHER",
            )
            await conn.execute(
                "INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day) "
                "VALUES ($1, $2, 'GBP', 'UK-PAYG', $3)",
                f"ACC-{tag}",
                f"CUST-{tag}",
                CYCLE,
            )
            await conn.execute(
                "INSERT INTO customer_services (service_id, customer_id, product_name, assigned_at, offering_id) "
                "VALUES ($1, $3, 'Business Fibre 1G', $4, NULL), ($2, $3, 'Business Fibre 1G', $4, 'PO-FIBRE-1G')",
                f"SVC-{tag}-SEEDED",
                f"SVC-{tag}-ORDERED",
                f"CUST-{tag}",
                datetime(2026, 1, 1, tzinfo=UTC),
            )
        yield pool, tag


@pytest_asyncio.fixture(loop_scope="session")
async def oss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with domain_pool(endpoints, settings, "oss") as pool:
        yield pool


async def apply(pool: asyncpg.Pool, event: Envelope[EventPayload]) -> list[Envelope[EventPayload]]:
    async with pool.acquire() as conn, conn.transaction():
        return list(await ordering.handle(conn, event))


def summary(events: list[Envelope[EventPayload]]) -> list[str]:
    return [f"{e.type}:{getattr(e.data, 'state', '')}" for e in events]


def terminate(tag: str, service: str, customer: str | None = None) -> Envelope[EventPayload]:
    return new_event(
        ProductTerminationRequested(
            order_id=f"PO-{uuid.uuid4().hex[:8]}",
            customer_id=customer or f"CUST-{tag}",
            service_id=service,
            requested_at=datetime.now(UTC),
        ),
        source="/bss/order-portal",
    )


def order_id_of(event: Envelope[EventPayload]) -> str:
    assert isinstance(event.data, ProductTerminationRequested)
    return event.data.order_id


async def test_a_termination_order_is_validated_sent_to_oss_and_completed(
    bss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = bss
    service = f"SVC-{tag}-ORDERED"
    # Somebody else's service, or one that does not exist: rejected, with the reason.
    [stranger] = await apply(pool, terminate(tag, service, customer=f"CUST-{tag}-OTHER"))
    assert isinstance(stranger.data, ProductOrderStateChanged)
    assert (stranger.data.state, stranger.data.reason) == (
        ProductOrderState.REJECTED,
        f"customer CUST-{tag}-OTHER holds no service {service}",
    )
    [nothing] = await apply(pool, terminate(tag, f"SVC-{tag}-NOWHERE"))
    assert nothing.data.reason == f"customer CUST-{tag} holds no service SVC-{tag}-NOWHERE"  # type: ignore[attr-defined]

    request = terminate(tag, service)
    order_id = order_id_of(request)
    out = await apply(pool, request)
    assert summary(out) == [
        "ProductOrderStateChanged:acknowledged",
        "ServiceTerminationRequested:",
        "ProductOrderStateChanged:inProgress",
    ]
    assert {e.data.action for e in out if isinstance(e.data, ProductOrderStateChanged)} == {
        OrderItemAction.DELETE
    }
    assert {e.data.offering_id for e in out if isinstance(e.data, ProductOrderStateChanged)} == {
        "PO-FIBRE-1G"
    }
    asked = out[1].data
    assert isinstance(asked, ServiceTerminationRequested) and (asked.service_id, asked.order_id) == (
        service,
        order_id,
    )
    assert await apply(pool, request) == []  # the same order again: handled once
    [again] = await apply(pool, terminate(tag, service))
    assert again.data.reason == f"service {service} is already being terminated by order {order_id}"  # type: ignore[attr-defined]
    with pytest.raises(Rejected, match="a termination cannot be cancelled"):
        await apply(pool, new_event(ProductOrderCancellationRequested(order_id=order_id), source="/t"))

    done: Envelope[EventPayload] = new_event(
        ServiceTerminated(
            service_id=service, order_id=order_id, released_resource_ids=("N",), terminated_at=ENDED
        ),
        source="/oss/inventory",
    )
    out = await apply(pool, done)
    assert summary(out) == ["ProductOrderStateChanged:completed", "CustomerServiceAssigned:"]
    ended = out[1].data
    assert isinstance(ended, CustomerServiceAssigned)
    # The holder and the tier of the ordered offering (gold), not the customer's (platinum).
    assert (ended.customer_id, ended.sla_tier, ended.ended_at) == (f"CUST-{tag}", SlaTier.GOLD, ENDED)
    assert await apply(pool, done) == []  # OSS answering twice changes nothing
    [late] = await apply(pool, terminate(tag, service))
    assert late.data.reason == f"service {service} was terminated on 2026-10-01"  # type: ignore[attr-defined]
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT state, action, service_id FROM product_orders WHERE id = $1", order_id
        )
    assert row is not None
    assert dict(row) == {"state": "completed", "action": "delete", "service_id": service}


async def test_a_termination_oss_refuses_fails_with_its_reason(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss
    service = f"SVC-{tag}-SEEDED"
    request = terminate(tag, service)
    order_id = order_id_of(request)
    out = await apply(pool, request)
    # A seeded service has no offering of its own: the catalog's offering of the same name counts.
    assert [e.data.offering_id for e in out if isinstance(e.data, ProductOrderStateChanged)] == [
        "PO-FIBRE-1G"
    ] * 2
    failed: Envelope[EventPayload] = new_event(
        ServiceTerminationFailed(service_id=service, order_id=order_id, reason=f"unknown service {service}"),
        source="/oss/inventory",
    )
    out = await apply(pool, failed)
    assert [(e.data.state.value, e.data.reason) for e in out] == [("failed", f"unknown service {service}")]  # type: ignore[attr-defined]
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT ended_at FROM customer_services WHERE service_id = $1", service)
            is None
        )
    # A failed termination can be asked again.
    assert summary(await apply(pool, terminate(tag, service)))[-1] == "ProductOrderStateChanged:inProgress"


async def test_inventory_terminates_releases_and_forgets_the_holder(oss: asyncpg.Pool) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    a, z, link = f"SITE-{tag}-A", f"SITE-{tag}-Z", f"LINK-{tag}"
    node_a, node_z = f"NODE-{tag}-A", f"NODE-{tag}-Z"
    service = f"SVC-PO-{tag}"
    async with oss.acquire() as conn:
        await conn.executemany(
            "INSERT INTO resources (id, resource_type, name, site_id) VALUES ($1, $2, $1, $3)",
            [(a, "site", a), (z, "site", z), (node_a, "node", a), (node_z, "node", z)],
        )
        await conn.execute(
            "INSERT INTO resources (id, resource_type, name, a_end, z_end) VALUES ($1, 'link', $1, $2, $3)",
            link,
            node_a,
            node_z,
        )

    async def handle(data: EventPayload) -> list[EventPayload]:
        async with oss.acquire() as conn, conn.transaction():
            return [e.data for e in await inventory.handle(conn, new_event(data, source="/bss/ordering"))]

    await handle(
        ServiceProvisioningRequested(
            service_id=service, order_id=f"PO-{tag}", service_name="test", a_site_id=a, z_site_id=z
        )
    )
    held = CustomerServiceAssigned(
        service_id=service, customer_id=f"CUST-{tag}", sla_tier=SlaTier.GOLD, product_name="p"
    )
    await handle(held)
    async with oss.acquire() as conn:
        state = await conn.fetchrow("SELECT state, activated_at FROM services WHERE id = $1", service)
        impact = await services_on(conn, [link])
    assert state is not None and state["state"] == "active" and state["activated_at"] is not None
    assert impact == {link: [(service, [f"CUST-{tag}"])]}

    ask = ServiceTerminationRequested(
        service_id=service, order_id=f"PO-{tag}-END", requested_at=datetime.now(UTC)
    )
    [first] = await handle(ask)
    assert isinstance(first, ServiceTerminated)
    assert first.released_resource_ids == (node_a, link, node_z)
    [repeat] = await handle(ask)  # idempotent: the same time, nothing more released
    assert repeat == first.model_copy(update={"released_resource_ids": ()})
    [unknown] = await handle(ask.model_copy(update={"service_id": f"SVC-{tag}-NONE"}))
    assert (
        isinstance(unknown, ServiceTerminationFailed) and unknown.reason == f"unknown service SVC-{tag}-NONE"
    )

    async with oss.acquire() as conn:
        row = await conn.fetchrow("SELECT state, terminated_at FROM services WHERE id = $1", service)
        assert row is not None
        assert (row["state"], row["terminated_at"]) == ("terminated", first.terminated_at)
        assert (
            await conn.fetchval("SELECT count(*) FROM service_resources WHERE service_id = $1", service) == 0
        )
        assert await services_on(conn, [link, node_a]) == {}  # no fault impact any more
    # BSS ends the assignment: OSS forgets the holder, and an older assignment redelivered later
    # does not bring it back.
    await handle(held.model_copy(update={"ended_at": first.terminated_at}))
    await handle(held)
    async with oss.acquire() as conn:
        assert (
            await conn.fetchval("SELECT count(*) FROM customer_services WHERE service_id = $1", service) == 0
        )


async def test_billing_charges_a_terminated_service_up_to_its_termination_day(
    bss: tuple[asyncpg.Pool, str], settings: Settings
) -> None:
    pool, tag = bss
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE customer_services SET ended_at = $2 WHERE service_id = $1", f"SVC-{tag}-ORDERED", ENDED
        )
        await conn.execute(
            "UPDATE customer_services SET ended_at = NULL WHERE service_id = $1", f"SVC-{tag}-SEEDED"
        )
    outbox = Outbox(Bus("127.0.0.1:1", Topology.load(settings.topology_path)), billing.COMPONENT)
    await bill_run(pool, outbox, CYCLE, PERIOD, today=TODAY)
    await bill_run(pool, outbox, CYCLE, NEXT, today=TODAY)
    async with pool.acquire() as conn:
        lines = await conn.fetch(
            """
            SELECT i.period_start, l.description, l.amount_minor FROM invoices i
            JOIN invoice_lines l ON l.invoice_id = i.id
            WHERE i.account_id = $1 AND l.kind = 'recurring' ORDER BY i.period_start, l.line_no
            """,
            f"ACC-{tag}",
        )
    assert [(r["period_start"], r["description"], r["amount_minor"]) for r in lines] == [
        # 21 to 30 September: 10 of 30 days, the termination day (1 October) not charged.
        (PERIOD, f"Business Fibre 1G (SVC-{tag}-ORDERED), 10 of 30 days, terminated 2026-10-01", 15_000),
        (PERIOD, f"Business Fibre 1G (SVC-{tag}-SEEDED)", 45_000),
        (NEXT, f"Business Fibre 1G (SVC-{tag}-SEEDED)", 45_000),  # nothing more for the ended one
    ]


async def test_churn_is_counted_by_product_and_day(bss: tuple[asyncpg.Pool, str]) -> None:
    pool, tag = bss

    def changed(state: ProductOrderState, action: OrderItemAction) -> Envelope[EventPayload]:
        return new_event(
            ProductOrderStateChanged(
                order_id=f"PO-{tag}",
                customer_id=f"CUST-{tag}",
                offering_id="PO-EVPN-100M",
                state=state,
                action=action,
            ),
            source="/bss/ordering",
        )

    async def figures() -> dict[str, object]:
        async with pool.acquire() as conn:
            rows = {r["offering_id"]: r for r in await sales.report(conn, 1)}
        return dict(rows.get("PO-EVPN-100M") or {"placed": 0, "completed": 0, "terminated": 0})

    before = await figures()
    async with pool.acquire() as conn, conn.transaction():
        for state in (
            ProductOrderState.ACKNOWLEDGED,
            ProductOrderState.IN_PROGRESS,
            ProductOrderState.COMPLETED,
        ):
            await sales.handle(conn, changed(state, OrderItemAction.DELETE))
        await sales.handle(conn, changed(ProductOrderState.REJECTED, OrderItemAction.DELETE))
    after = await figures()
    assert [after[k] - before[k] for k in ("placed", "completed", "terminated")] == [0, 0, 1]  # type: ignore[operator]
