"""Rating's consumer: every usage record ends in one state, once. A record of a service no
account holds, of a kind its plan does not rate, or that started after the service was
terminated, is rejected with the reason; the others are rated, drawing on the allowances of the
bill period first.

Plan rule: a service ordered with an offering that names a tariff plan is rated by that plan;
any other service (the demo's seeded ones, say) by its account's plan. An offering's plan must be
in the account's currency, or its usage is rejected. Allowances are kept per account, bill
period, usage kind and plan: a plan's included quantity is drawn only by the usage it rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from bss_consumers.rating.engine import RatingError, Usage, rate
from bss_consumers.rating.periods import bill_period_start
from bss_consumers.rating.tariff import TariffPlan, UsageKind
from events import Envelope, EventPayload
from events.network import UsageRecorded
from runtime.consumer import Rejected
from runtime.db import Connection

COMPONENT = "bss-rating"
HANDLES = (UsageRecorded,)
PUBLISHES = ()

_COLUMNS = (
    "usage_id",
    "service_id",
    "account_id",
    "usage_kind",
    "quantity",
    "start_time",
    "state",
    "reason",
    "charged_quantity",
    "allowance_used",
    "amount_minor",
    "currency",
    "band",
    "bill_period",
)


@dataclass(frozen=True)
class _Account:
    account_id: str
    plan: TariffPlan
    cycle_day: int
    ended_at: datetime | None = None  # when the service was terminated, if it was


@dataclass(frozen=True)
class _Refused:
    account_id: str
    reason: str


def choose_plan(
    plans: dict[str, TariffPlan],
    account_plan_id: str,
    account_currency: str,
    offering_id: str | None = None,
    offering_plan_id: str | None = None,
) -> TariffPlan | str | None:
    """The plan that rates a service's usage (see the module's plan rule): the plan, the reason
    its usage is rejected, or None when the account's own plan is unknown."""
    if offering_plan_id is None:
        return plans.get(account_plan_id)
    plan = plans.get(offering_plan_id)
    if plan is None:
        return f"unknown tariff plan {offering_plan_id} of offering {offering_id}"
    if plan.currency != account_currency:
        return (
            f"tariff plan {offering_plan_id} of offering {offering_id} is in {plan.currency}, "
            f"the account is billed in {account_currency}"
        )
    return plan


def terminated_before(account: _Account, start_time: datetime) -> bool:
    """Whether usage starting at ``start_time`` began after its service was terminated."""
    return account.ended_at is not None and start_time >= account.ended_at


class UsageRating:
    """Rates batches of usage records with the given tariff plans (by plan id)."""

    def __init__(self, plans: dict[str, TariffPlan]):
        self.plans = plans

    async def handle_batch(
        self, conn: Connection, events: Sequence[Envelope[EventPayload]]
    ) -> Sequence[Envelope[EventPayload]]:
        """Rate a batch in the caller's transaction; publishes nothing."""
        usages: dict[str, UsageRecorded] = {}
        for event in events:
            if not isinstance(event.data, UsageRecorded):
                raise Rejected(f"{COMPONENT} does not handle {event.type}")
            usages.setdefault(event.data.usage_id, event.data)  # the same usage twice: once
        known = {
            r["usage_id"]
            for r in await conn.fetch(
                "SELECT usage_id FROM rated_usage WHERE usage_id = ANY($1::text[])", list(usages)
            )
        }
        fresh = [u for usage_id, u in usages.items() if usage_id not in known]
        if not fresh:
            return []
        accounts = await self._accounts(conn, {u.service_id for u in fresh})
        balances = await self._balances(conn, fresh, accounts)
        rows = []
        for u in fresh:
            account = accounts.get(u.service_id)
            if account is None:
                rows.append(_rejected(u, None, f"no account holds service {u.service_id}"))
                continue
            if isinstance(account, _Refused):
                rows.append(_rejected(u, account.account_id, account.reason))
                continue
            if terminated_before(account, u.start_time) and account.ended_at is not None:
                reason = f"service {u.service_id} was terminated at {account.ended_at.isoformat()}"
                rows.append(_rejected(u, account.account_id, reason))
                continue
            period = bill_period_start(u.start_time, account.cycle_day, account.plan.timezone)
            balance_key = (account.account_id, period, u.usage_kind.value, account.plan.plan_id)
            try:
                result = rate(
                    Usage(UsageKind(u.usage_kind.value), u.quantity, u.start_time),
                    account.plan,
                    balances.get(balance_key, 0),
                )
            except RatingError as exc:
                rows.append(_rejected(u, account.account_id, exc.reason))
                continue
            if balance_key in balances:
                balances[balance_key] -= result.allowance_used
            rows.append(
                (
                    u.usage_id,
                    u.service_id,
                    account.account_id,
                    u.usage_kind.value,
                    u.quantity,
                    u.start_time,
                    "rated",
                    None,
                    result.charged_quantity,
                    result.allowance_used,
                    result.amount.minor,
                    result.amount.currency,
                    result.band,
                    period,
                )
            )
        await conn.copy_records_to_table("rated_usage", records=rows, columns=_COLUMNS)
        if balances:
            await conn.execute(
                """
                UPDATE allowance_balances b SET remaining = u.remaining
                FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[])
                     AS u(account_id, period_start, usage_kind, tariff_plan, remaining)
                WHERE (b.account_id, b.period_start, b.usage_kind, b.tariff_plan)
                    = (u.account_id, u.period_start, u.usage_kind, u.tariff_plan)
                """,
                *(list(column) for column in zip(*((*k, v) for k, v in balances.items()), strict=True)),
            )
        return []

    async def _accounts(self, conn: Connection, service_ids: set[str]) -> dict[str, _Account | _Refused]:
        rows = await conn.fetch(
            """
            SELECT cs.service_id, cs.ended_at, a.id, a.currency, a.tariff_plan, a.bill_cycle_day,
                   o.id AS offering_id, o.tariff_plan AS offering_plan
            FROM customer_services cs JOIN accounts a ON a.customer_id = cs.customer_id
            LEFT JOIN product_offerings o ON o.id = cs.offering_id
            WHERE cs.service_id = ANY($1::text[])
            """,
            list(service_ids),
        )
        found: dict[str, _Account | _Refused] = {}
        for r in rows:
            plan = choose_plan(
                self.plans, r["tariff_plan"], r["currency"], r["offering_id"], r["offering_plan"]
            )
            if isinstance(plan, str):
                found[r["service_id"]] = _Refused(r["id"], plan)
            elif plan is not None:  # an account on an unknown plan: its usage is rejected
                found[r["service_id"]] = _Account(r["id"], plan, r["bill_cycle_day"], r["ended_at"])
        return found

    async def _balances(
        self, conn: Connection, usages: list[UsageRecorded], accounts: dict[str, _Account | _Refused]
    ) -> dict[tuple[str, date, str, str], int]:
        """Lock (creating at the plan's allowance) the balances this batch draws on."""
        wanted: dict[tuple[str, date, str, str], int] = {}
        for u in usages:
            account = accounts.get(u.service_id)
            if not isinstance(account, _Account) or terminated_before(account, u.start_time):
                continue
            allowance = account.plan.allowance_for(UsageKind(u.usage_kind.value))
            if allowance <= 0:
                continue
            period = bill_period_start(u.start_time, account.cycle_day, account.plan.timezone)
            wanted[(account.account_id, period, u.usage_kind.value, account.plan.plan_id)] = allowance
        if not wanted:
            return {}
        keys = list(wanted)
        await conn.execute(
            """
            INSERT INTO allowance_balances (account_id, period_start, usage_kind, tariff_plan, remaining)
            SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::text[], $5::bigint[])
            ON CONFLICT DO NOTHING
            """,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
            list(wanted.values()),
        )
        rows = await conn.fetch(
            """
            SELECT b.account_id, b.period_start, b.usage_kind, b.tariff_plan, b.remaining
            FROM allowance_balances b
            JOIN unnest($1::text[], $2::date[], $3::text[], $4::text[])
                 AS k(account_id, period_start, usage_kind, tariff_plan)
              ON (b.account_id, b.period_start, b.usage_kind, b.tariff_plan)
               = (k.account_id, k.period_start, k.usage_kind, k.tariff_plan)
            FOR UPDATE OF b
            """,
            [k[0] for k in keys],
            [k[1] for k in keys],
            [k[2] for k in keys],
            [k[3] for k in keys],
        )
        return {
            (r["account_id"], r["period_start"], r["usage_kind"], r["tariff_plan"]): r["remaining"]
            for r in rows
        }


def _rejected(u: UsageRecorded, account_id: str | None, reason: str) -> tuple[object, ...]:
    return (
        u.usage_id,
        u.service_id,
        account_id,
        u.usage_kind.value,
        u.quantity,
        u.start_time,
        "rejected",
        reason,
        None,
        None,
        None,
        None,
        None,
        None,
    )


async def rating_summary(conn: Connection) -> dict[str, int]:
    """How many usage records are rated and rejected."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE state = 'rated') AS rated, "
        "count(*) FILTER (WHERE state = 'rejected') AS rejected FROM rated_usage"
    )
    assert row is not None
    return dict(row)
