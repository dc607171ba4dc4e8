"""Bill runs and SLA credits against the real PostgreSQL: recurring charges, rated usage and
credits on one invoice; runs that are idempotent; late usage on the next bill; gapless numbers;
issued invoices that cannot change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from bss_consumers.billing import agents as billing
from bss_consumers.billing.run import bill_run
from bss_consumers.catalog.offerings import seed_offerings
from events import new_event
from events.oss import ServiceRestored
from runtime.bus import Bus, Outbox
from runtime.infra import Endpoints
from runtime.settings import Settings
from runtime.topology import Topology
from tests.conftest import domain_pool

CYCLE = 17
PERIOD = date(2026, 9, 17)
NEXT = date(2026, 10, 17)
TODAY = date(2026, 11, 27)


@pytest_asyncio.fixture(loop_scope="session")
async def bss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with domain_pool(endpoints, settings, "bss") as pool:
        await seed_offerings(pool)
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM accounts WHERE bill_cycle_day = $1 AND id NOT LIKE 'ACC-%'", CYCLE
            )
            await conn.execute(
                "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Billed Ltd', 'platinum')",
                f"CUST-{tag}",
            )
            await conn.execute(
                "INSERT INTO accounts (id, customer_id, currency, tariff_plan, bill_cycle_day) "
                "VALUES ($1, $2, 'GBP', 'UK-PAYG', $3)",
                f"ACC-{tag}",
                f"CUST-{tag}",
                CYCLE,
            )
            await conn.execute(
                "INSERT INTO customer_services (service_id, customer_id, product_name, assigned_at) "
                "VALUES ($1, $2, 'Business Fibre 1G', $3)",
                f"SVC-{tag}",
                f"CUST-{tag}",
                datetime(2026, 1, 1, tzinfo=UTC),
            )
        yield pool, tag


async def add_usage(pool: asyncpg.Pool, tag: str, amount: int, period: date) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO rated_usage (usage_id, service_id, account_id, usage_kind, quantity, start_time,
                                     state, charged_quantity, allowance_used, amount_minor, currency, band,
                                     bill_period)
            VALUES ($1, $2, $3, 'voice', 60, $4, 'rated', 60, 0, $5, 'GBP', 'peak', $6)
            """,
            f"U-{uuid.uuid4().hex}",
            f"SVC-{tag}",
            f"ACC-{tag}",
            datetime(2026, 9, 20, tzinfo=UTC),
            amount,
            period,
        )


async def invoices_of(pool: asyncpg.Pool, tag: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT * FROM invoices WHERE account_id = $1 ORDER BY period_start", f"ACC-{tag}"
        )


async def lines_of(pool: asyncpg.Pool, invoice_id: str) -> list[tuple[str, str, int]]:
    async with pool.acquire() as conn:
        return [
            (r["kind"], r["description"], r["amount_minor"])
            for r in await conn.fetch(
                "SELECT * FROM invoice_lines WHERE invoice_id = $1 ORDER BY line_no", invoice_id
            )
        ]


async def test_outage_credit_usage_and_recurring_charge_make_one_invoice(
    bss: tuple[asyncpg.Pool, str], settings: Settings
) -> None:
    pool, tag = bss
    bus = Bus("127.0.0.1:1", Topology.load(settings.topology_path))  # routes only, never started
    outbox = Outbox(bus, billing.COMPONENT)
    # OSS restored the customer's service after 20 minutes down: platinum earns 10 % per started hour.
    started = datetime(2026, 9, 25, 10, 0, tzinfo=UTC)
    restored = new_event(
        ServiceRestored(
            outage_id=f"OUT-{tag}",
            service_id=f"SVC-{tag}",
            alarm_id="ALM-1",
            started_at=started,
            restored_at=started + timedelta(minutes=20),
            duration_seconds=1200.0,
            customer_ids=(f"CUST-{tag}",),
        ),
        source="/oss/fault",
    )
    granted = []
    for _ in range(2):  # redelivered: one credit
        async with pool.acquire() as conn, conn.transaction():
            granted.append(await billing.handle(conn, restored))
            await conn.execute(
                "UPDATE sla_credits SET granted_at = $1 WHERE outage_id = $2", started, f"OUT-{tag}"
            )
    assert [[c.data.amount_minor for c in credits] for credits in granted] == [[4_500], []]  # type: ignore[attr-defined]
    await add_usage(pool, tag, 1_234, PERIOD)

    first = await bill_run(pool, outbox, CYCLE, PERIOD, today=TODAY)
    again = await bill_run(pool, outbox, CYCLE, PERIOD, today=TODAY)
    assert again.issued == 0 and again.already_invoiced == first.accounts

    [invoice] = await invoices_of(pool, tag)
    lines = await lines_of(pool, invoice["id"])
    assert [(kind, amount) for kind, _, amount in lines] == [
        ("recurring", 45_000),
        ("usage", 1_234),
        ("credit", -4_500),
    ]
    assert invoice["tax_excluded_minor"] == 45_000 + 1_234 - 4_500 == sum(a for _, _, a in lines)
    assert invoice["tax_minor"] == round((45_000 + 1_234 - 4_500) * 0.2)
    assert invoice["tax_included_minor"] == invoice["tax_excluded_minor"] + invoice["tax_minor"]
    assert invoice["period_end"] == NEXT - timedelta(days=1)

    # Usage of the invoiced period that arrives late goes on the next bill.
    await add_usage(pool, tag, 500, PERIOD)
    await bill_run(pool, outbox, CYCLE, NEXT, today=TODAY)
    late = (await invoices_of(pool, tag))[1]
    assert ("usage", "Voice calls: 1 record(s), 1 from earlier periods", 500) in await lines_of(
        pool, late["id"]
    )

    async with pool.acquire() as conn:
        numbers = [r["bill_number"] for r in await conn.fetch("SELECT bill_number FROM invoices ORDER BY 1")]
        assert numbers == list(range(1, len(numbers) + 1))  # no gaps
        await conn.execute(
            "UPDATE invoices SET paid_minor = 100 WHERE id = $1", invoice["id"]
        )  # payments may move
        with pytest.raises(asyncpg.RaiseError, match="cannot change"):
            await conn.execute("UPDATE invoices SET tax_minor = 0 WHERE id = $1", invoice["id"])
        with pytest.raises(asyncpg.RaiseError, match="cannot change"):
            await conn.execute("DELETE FROM invoice_lines WHERE invoice_id = $1", invoice["id"])
        queued = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'bss.invoices' AND convert_from(value, 'UTF8') LIKE $1",
            f"%ACC-{tag}%",
        )
    assert queued == 2


async def test_a_period_that_has_not_ended_is_refused(
    bss: tuple[asyncpg.Pool, str], settings: Settings
) -> None:
    from bss_consumers.billing.run import BillRunError

    pool, _ = bss
    outbox = Outbox(Bus("127.0.0.1:1", Topology.load(settings.topology_path)), billing.COMPONENT)
    with pytest.raises(BillRunError, match="has not ended"):
        await bill_run(pool, outbox, CYCLE, date(2026, 11, 17), today=TODAY)
    with pytest.raises(BillRunError, match="starts on day 17"):
        await bill_run(pool, outbox, CYCLE, date(2026, 11, 1), today=TODAY)


async def test_payments_settle_invoices_and_overdue_ones_are_reminded_once(
    bss: tuple[asyncpg.Pool, str], settings: Settings
) -> None:
    from bss_consumers.care import agents as care
    from events.bss import PaymentReceived

    pool, tag = bss
    outbox = Outbox(Bus("127.0.0.1:1", Topology.load(settings.topology_path)), billing.COMPONENT)
    await bill_run(pool, outbox, CYCLE, PERIOD, today=TODAY)
    [invoice] = await invoices_of(pool, tag)
    due = invoice["tax_included_minor"]

    # Unpaid past its due date (14 days after the bill date): dunned once, the customer reminded once.
    async with pool.acquire() as conn, conn.transaction():
        overdue = await billing.dun_overdue(conn, date(2027, 1, 31))
        again = await billing.dun_overdue(conn, date(2027, 1, 31))
        mine = [e for e in overdue if e.data.account_id == f"ACC-{tag}"]  # type: ignore[attr-defined]
        assert len(mine) == 1 and not [e for e in again if e.data.account_id == f"ACC-{tag}"]  # type: ignore[attr-defined]
        reminders = [*await care.handle(conn, mine[0]), *await care.handle(conn, mine[0])]
    assert [(n.data.customer_id, n.data.reason.value) for n in reminders] == [
        (f"CUST-{tag}", "invoiceOverdue")
    ]  # type: ignore[attr-defined]

    def paid(amount: int, payment_id: str) -> object:
        return new_event(
            PaymentReceived(
                payment_id=payment_id,
                account_id=f"ACC-{tag}",
                amount_minor=amount,
                currency="GBP",
                received_at=datetime.now(UTC),
            ),
            source="/bss/payment-gateway",
        )

    async with pool.acquire() as conn, conn.transaction():
        first = await billing.handle(conn, paid(1_000, f"PAY-{tag}-1"))  # type: ignore[arg-type]
        replay = await billing.handle(conn, paid(1_000, f"PAY-{tag}-1"))  # type: ignore[arg-type]
        rest = await billing.handle(conn, paid(due - 1_000 + 50, f"PAY-{tag}-2"))  # type: ignore[arg-type]
        state = await conn.fetchrow("SELECT state, paid_minor FROM invoices WHERE id = $1", invoice["id"])
        left_over = await conn.fetchval("SELECT unapplied_minor FROM payments WHERE id = $1", f"PAY-{tag}-2")
    assert [e.data.invoice_state.value for e in first] == ["partiallyPaid"]  # type: ignore[attr-defined]
    assert replay == []
    assert [e.data.invoice_state.value for e in rest] == ["settled"]  # type: ignore[attr-defined]
    assert (state["state"], state["paid_minor"], left_over) == ("settled", due, 50)

    async with pool.acquire() as conn, conn.transaction():
        from runtime.consumer import Rejected

        with pytest.raises(Rejected, match="billed in GBP"):
            wrong = new_event(
                PaymentReceived(
                    payment_id=f"PAY-{tag}-3",
                    account_id=f"ACC-{tag}",
                    amount_minor=5,
                    currency="EUR",
                    received_at=datetime.now(UTC),
                ),
                source="/bss/payment-gateway",
            )
            await billing.handle(conn, wrong)


async def test_invoiced_revenue_is_booked_by_product_and_day(bss: tuple[asyncpg.Pool, str]) -> None:
    from bss_consumers.sales import agents as sales
    from events.bss import InvoiceIssued, InvoiceLine, InvoiceLineKind

    pool, tag = bss
    bill_date = datetime.now(UTC)
    lines = (
        InvoiceLine(
            line_no=1,
            kind=InvoiceLineKind.RECURRING,
            description="fibre",
            amount_minor=45_000,
            offering_id="PO-FIBRE-1G",
        ),
        InvoiceLine(line_no=2, kind=InvoiceLineKind.USAGE, description="calls", amount_minor=1_234),
        InvoiceLine(line_no=3, kind=InvoiceLineKind.CREDIT, description="outage", amount_minor=-4_500),
    )
    issued = new_event(
        InvoiceIssued(
            invoice_id=f"INV-{tag}",
            bill_number=1,
            account_id=f"ACC-{tag}",
            bill_date=bill_date,
            billing_period_start=PERIOD,
            billing_period_end=NEXT - timedelta(days=1),
            currency="GBP",
            tax_excluded_amount_minor=41_734,
            tax_amount_minor=8_347,
            tax_included_amount_minor=50_081,
            amount_due_minor=50_081,
            payment_due_date=bill_date.date() + timedelta(days=14),
            lines=lines,
        ),
        source="/bss/billing",
    )
    async with pool.acquire() as conn:
        before = {(r["offering_id"]): r["revenue"] for r in await sales.report(conn, 1)}
        async with conn.transaction():
            await sales.handle(conn, issued)
        after = {(r["offering_id"]): r["revenue"] for r in await sales.report(conn, 1)}
    booked = {k: after[k] - before.get(k, 0) for k in after}
    assert booked == {"PO-FIBRE-1G": 45_000, "usage": 1_234, "sla-credits": -4_500}
