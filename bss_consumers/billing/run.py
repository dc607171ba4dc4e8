"""Bill runs: for every account of a bill cycle, one invoice per bill period, issued in its own
transaction with its lines, its gapless bill number and its InvoiceIssued event (outbox).

A run is idempotent (an account already invoiced for the period is skipped, and the database
refuses a second invoice for it) and resumable (after a crash, running it again bills the
accounts that were not billed yet). Usage of a period already invoiced, because it arrived late,
goes on the account's next invoice; so do SLA credits granted after a period's end.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from bss_consumers.billing.agents import SOURCE
from bss_consumers.billing.invoicing import Line, Totals, held_days, prorate, totals
from events import Envelope, EventPayload, new_event
from events.bss import InvoiceIssued, InvoiceLine, InvoiceLineKind
from runtime.bus import Outbox
from runtime.db import Connection

USAGE_NAMES = {"voice": "Voice calls", "data": "Data", "sms": "SMS"}
PAYMENT_TERMS = timedelta(days=14)


def due_date(bill_date: datetime) -> date:
    """When an invoice issued at ``bill_date`` must be paid."""
    return (bill_date + PAYMENT_TERMS).date()


class BillRunError(ValueError):
    """A bill run that cannot start; the reason is one line."""


def next_period_start(period_start: date) -> date:
    """The day after a monthly bill period ends."""
    year, month = (
        (period_start.year + 1, 1)
        if period_start.month == 12
        else (period_start.year, period_start.month + 1)
    )
    return period_start.replace(year=year, month=month)


def last_ended_period(cycle_day: int, today: date) -> date:
    """The start of the latest period of ``cycle_day`` that has ended by ``today``."""
    if not 1 <= cycle_day <= 28:
        raise BillRunError("bill cycle day must be 1 to 28")
    start = today.replace(day=cycle_day) if today.day >= cycle_day else _previous_month(today, cycle_day)
    return _previous_month(start, cycle_day)


def _previous_month(d: date, day: int) -> date:
    return date(d.year - 1, 12, day) if d.month == 1 else date(d.year, d.month - 1, day)


@dataclass(frozen=True)
class BillRunResult:
    cycle_day: int
    period_start: date
    accounts: int
    issued: int
    already_invoiced: int
    billed_minor: dict[str, int]


async def bill_run(
    pool: asyncpg.Pool,
    outbox: Outbox,
    cycle_day: int,
    period_start: date,
    *,
    today: date | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> BillRunResult:
    """Invoice every account of ``cycle_day`` for the period starting ``period_start``."""
    today = today or datetime.now(UTC).date()
    if period_start.day != cycle_day:
        raise BillRunError(
            f"a period of bill cycle {cycle_day} starts on day {cycle_day}, not {period_start}"
        )
    if next_period_start(period_start) > today:
        raise BillRunError(f"the period starting {period_start} has not ended yet")
    async with pool.acquire() as conn:
        accounts = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM accounts WHERE bill_cycle_day = $1 ORDER BY id", cycle_day
            )
        ]
    issued = already = 0
    billed: dict[str, int] = {}
    for done, account_id in enumerate(accounts, start=1):
        async with pool.acquire() as conn, conn.transaction():
            invoice = await _invoice_account(conn, outbox, account_id, period_start)
        if invoice is None:
            already += 1
        else:
            issued += 1
            billed[invoice[0]] = billed.get(invoice[0], 0) + invoice[1]
        progress(done, len(accounts))
    return BillRunResult(cycle_day, period_start, len(accounts), issued, already, billed)


async def _invoice_account(
    conn: Connection, outbox: Outbox, account_id: str, period_start: date
) -> tuple[str, int] | None:
    account = await conn.fetchrow(
        "SELECT id, customer_id, currency FROM accounts WHERE id = $1 FOR UPDATE", account_id
    )
    assert account is not None
    if await conn.fetchval(
        "SELECT 1 FROM invoices WHERE account_id = $1 AND period_start = $2", account_id, period_start
    ):
        return None
    end = next_period_start(period_start)
    invoice_id = f"INV-{uuid.uuid4().hex[:12]}"
    lines = await _recurring(conn, account["customer_id"], account["currency"], period_start, end)
    lines += await _usage(conn, invoice_id, account_id, period_start)
    lines += await _credits(conn, invoice_id, account_id, end)
    total = totals(lines)
    bill_number = await conn.fetchval("UPDATE bill_numbers SET last_used = last_used + 1 RETURNING last_used")
    bill_date = datetime.now(UTC)
    await conn.execute(
        """
        INSERT INTO invoices (id, bill_number, account_id, period_start, period_end, bill_date, currency,
                              tax_excluded_minor, tax_minor, tax_included_minor, payment_due_date)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        """,
        invoice_id,
        bill_number,
        account_id,
        period_start,
        end - timedelta(days=1),
        bill_date,
        account["currency"],
        total.tax_excluded_minor,
        total.tax_minor,
        total.tax_included_minor,
        due_date(bill_date),
    )
    await conn.executemany(
        "INSERT INTO invoice_lines (invoice_id, line_no, kind, description, amount_minor, offering_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (invoice_id, n, line.kind, line.description, line.amount_minor, line.offering_id)
            for n, line in enumerate(total.lines, 1)
        ],
    )
    await outbox.add(
        conn,
        [
            _issued(
                invoice_id, bill_number, account_id, account["currency"], period_start, end, bill_date, total
            )
        ],
    )
    return account["currency"], total.tax_included_minor


async def _recurring(conn: Connection, customer_id: str, currency: str, start: date, end: date) -> list[Line]:
    """The prorated recurring charge of each service the customer held during the period: from
    its activation day up to, not including, its termination day (see `invoicing.held_days`)."""
    rows = await conn.fetch(
        """
        SELECT cs.service_id, o.id AS offering_id, o.name, o.recurring_price_minor, cs.assigned_at,
               cs.ended_at
        FROM customer_services cs
        JOIN product_offerings o
          ON o.id = cs.offering_id OR (cs.offering_id IS NULL AND o.name = cs.product_name)
        WHERE cs.customer_id = $1 AND o.currency = $2
          AND (cs.ended_at IS NULL OR cs.ended_at >= $3)
        ORDER BY cs.service_id
        """,
        customer_id,
        currency,
        datetime(start.year, start.month, start.day, tzinfo=UTC),
    )
    period_days = (end - start).days
    lines = []
    for r in rows:
        ended_on = None if r["ended_at"] is None else r["ended_at"].astimezone(UTC).date()
        days = held_days(start, end, r["assigned_at"].astimezone(UTC).date(), ended_on)
        if days == 0:
            continue
        what = f"{r['name']} ({r['service_id']})"
        if days < period_days:
            what += f", {days} of {period_days} days"
        if ended_on is not None and ended_on < end:
            what += f", terminated {ended_on.isoformat()}"
        amount = prorate(r["recurring_price_minor"], days, period_days)
        lines.append(Line("recurring", what, amount, r["offering_id"]))
    return lines


async def _usage(conn: Connection, invoice_id: str, account_id: str, period_start: date) -> list[Line]:
    # Takes every rated, not yet invoiced record of this period or an earlier one (late usage).
    rows = await conn.fetch(
        """
        WITH taken AS (
            UPDATE rated_usage SET invoice_id = $1
            WHERE account_id = $2 AND state = 'rated' AND invoice_id IS NULL AND bill_period <= $3
            RETURNING usage_kind, amount_minor, bill_period
        )
        SELECT usage_kind, count(*) AS records, sum(amount_minor)::bigint AS amount,
               count(*) FILTER (WHERE bill_period < $3) AS late
        FROM taken GROUP BY usage_kind ORDER BY usage_kind
        """,
        invoice_id,
        account_id,
        period_start,
    )
    lines = []
    for r in rows:
        what = f"{USAGE_NAMES.get(r['usage_kind'], r['usage_kind'])}: {r['records']} record(s)"
        if r["late"]:
            what += f", {r['late']} from earlier periods"
        lines.append(Line("usage", what, r["amount"]))
    return lines


async def _credits(conn: Connection, invoice_id: str, account_id: str, end: date) -> list[Line]:
    rows = await conn.fetch(
        """
        UPDATE sla_credits SET invoice_id = $1
        WHERE account_id = $2 AND invoice_id IS NULL AND granted_at < $3
        RETURNING service_id, outage_id, outage_seconds, sla_tier, amount_minor
        """,
        invoice_id,
        account_id,
        datetime(end.year, end.month, end.day, tzinfo=UTC),
    )
    return [
        Line(
            "credit",
            f"SLA credit ({r['sla_tier']}): {r['service_id']} down {r['outage_seconds']:.0f} s, outage {r['outage_id']}",
            -r["amount_minor"],
        )
        for r in sorted(rows, key=lambda r: r["outage_id"])
    ]


def _issued(
    invoice_id: str,
    bill_number: int,
    account_id: str,
    currency: str,
    start: date,
    end: date,
    bill_date: datetime,
    total: Totals,
) -> Envelope[EventPayload]:
    return new_event(
        InvoiceIssued(
            invoice_id=invoice_id,
            bill_number=bill_number,
            account_id=account_id,
            bill_date=bill_date,
            billing_period_start=start,
            billing_period_end=end - timedelta(days=1),
            currency=currency,
            tax_excluded_amount_minor=total.tax_excluded_minor,
            tax_amount_minor=total.tax_minor,
            tax_included_amount_minor=total.tax_included_minor,
            amount_due_minor=total.tax_included_minor,
            payment_due_date=due_date(bill_date),
            lines=tuple(
                InvoiceLine(
                    line_no=n,
                    kind=InvoiceLineKind(line.kind),
                    description=line.description,
                    amount_minor=line.amount_minor,
                    offering_id=line.offering_id,
                )
                for n, line in enumerate(total.lines, 1)
            ),
        ),
        source=SOURCE,
        subject=invoice_id,
    )
