"""The rules of service termination and of offering-level tariffs and SLA tiers, without I/O:
TMF638 state moves, who may end a service, the days a terminated service is charged, churn in the
sales figures, the plan that rates a service, and old events that still validate."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest

from bss_consumers.billing.invoicing import held_days, prorate
from bss_consumers.ordering.termination import Holding, refusal
from bss_consumers.rating.agents import choose_plan
from bss_consumers.rating.tariff import demo_plans
from bss_consumers.sales.agents import order_columns
from events import Envelope, EventPayload, decode, encode, new_event
from events.bss import (
    CustomerServiceAssigned,
    OrderItemAction,
    ProductOrderStateChanged,
    ProductTerminationRequested,
    SlaTier,
)
from events.oss import ServiceTerminated
from oss_consumers.inventory.lifecycle import PROVISIONING, ServiceState, may_move, preceding

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def test_a_provided_service_walks_designed_reserved_active_and_terminated_is_final() -> None:
    assert PROVISIONING == (ServiceState.DESIGNED, ServiceState.RESERVED, ServiceState.ACTIVE)
    for before, after in itertools.pairwise(PROVISIONING):
        assert may_move(before, after)
    assert not may_move("designed", ServiceState.ACTIVE)  # not without reserving its resources
    for state in ("designed", "reserved", "inactive", "active"):
        assert may_move(state, ServiceState.TERMINATED)
    assert not any(may_move("terminated", target) for target in ServiceState)
    assert not may_move("bogus", ServiceState.TERMINATED)
    assert "terminated" not in preceding(ServiceState.ACTIVE)
    assert set(preceding(ServiceState.TERMINATED)) == {s.value for s in ServiceState} - {"terminated"}


@pytest.mark.parametrize(
    ("customer_known", "holding", "pending", "offering", "reason"),
    [
        (False, None, None, None, "unknown customer CUST-1"),
        (True, None, None, None, "customer CUST-1 holds no service SVC-1"),
        (True, Holding("CUST-2", None), None, "PO-X", "customer CUST-1 holds no service SVC-1"),
        (True, Holding("CUST-1", T0), None, "PO-X", "service SVC-1 was terminated on 2026-11-27"),
        (
            True,
            Holding("CUST-1", None),
            "PO-9",
            "PO-X",
            "service SVC-1 is already being terminated by order PO-9",
        ),
        (True, Holding("CUST-1", None), None, None, "service SVC-1 has no product offering in the catalog"),
        (True, Holding("CUST-1", None), None, "PO-X", None),
    ],
)
def test_only_the_holder_of_a_live_service_may_end_it(
    customer_known: bool,
    holding: Holding | None,
    pending: str | None,
    offering: str | None,
    reason: str | None,
) -> None:
    assert (
        refusal(
            "CUST-1",
            "SVC-1",
            customer_known=customer_known,
            holding=holding,
            pending_order_id=pending,
            offering_id=offering,
        )
        == reason
    )


def test_a_service_is_charged_from_its_activation_day_up_to_its_termination_day() -> None:
    start, end = date(2026, 9, 21), date(2026, 10, 21)  # 30 days
    assert held_days(start, end, date(2026, 1, 1), None) == 30
    assert held_days(start, end, date(2026, 1, 1), date(2026, 10, 1)) == 10  # 21 Sep to 30 Sep
    assert held_days(start, end, date(2026, 9, 25), date(2026, 10, 1)) == 6
    assert held_days(start, end, date(2026, 9, 25), date(2026, 9, 25)) == 0  # same day: nothing
    assert held_days(start, end, date(2026, 1, 1), date(2026, 9, 1)) == 0  # ended before the period
    assert held_days(start, end, date(2026, 1, 1), date(2026, 12, 1)) == 30  # ends after it
    assert prorate(45_000, held_days(start, end, date(2026, 1, 1), date(2026, 10, 1)), 30) == 15_000


def test_churn_counts_completed_terminations_only_and_orders_count_new_services() -> None:
    delete, add = OrderItemAction.DELETE, OrderItemAction.ADD
    assert order_columns("completed", delete) == ["services_terminated"]
    assert [order_columns(s, delete) for s in ("acknowledged", "inProgress", "rejected", "failed")] == [
        []
    ] * 4
    assert order_columns("acknowledged", add) == ["orders_placed"]
    assert order_columns("rejected", add) == ["orders_placed", "orders_failed"]
    assert order_columns("completed", add) == ["orders_completed"]
    assert order_columns("inProgress", add) == []


def test_the_offering_plan_rates_ordered_services_and_the_account_plan_the_others() -> None:
    plans = demo_plans()
    assert choose_plan(plans, "UK-PAYG", "GBP") == plans["UK-PAYG"]
    assert choose_plan(plans, "UK-PAYG", "GBP", "PO-FIBRE-1G", None) == plans["UK-PAYG"]
    assert choose_plan(plans, "UK-PAYG", "GBP", "PO-FIBRE-1G", "UK-BIZ-300") == plans["UK-BIZ-300"]
    assert choose_plan(plans, "NOPE", "GBP") is None
    assert choose_plan(plans, "UK-PAYG", "GBP", "PO-X", "NOPE") == "unknown tariff plan NOPE of offering PO-X"
    assert (
        choose_plan(plans, "UK-PAYG", "GBP", "PO-X", "DE-BIZ-FLEX")
        == "tariff plan DE-BIZ-FLEX of offering PO-X is in EUR, the account is billed in GBP"
    )


def test_events_from_before_termination_still_validate() -> None:
    old_state = ProductOrderStateChanged.model_validate(
        {"order_id": "PO-1", "customer_id": "C", "offering_id": "PO-X", "state": "completed"}
    )
    assert old_state.action is OrderItemAction.ADD
    old_assignment = CustomerServiceAssigned.model_validate(
        {"service_id": "S", "customer_id": "C", "sla_tier": "gold", "product_name": "p"}
    )
    assert old_assignment.ended_at is None


def test_termination_events_round_trip_through_the_codec() -> None:
    for payload in (
        ProductTerminationRequested(order_id="PO-1", customer_id="C", service_id="S", requested_at=T0),
        ServiceTerminated(
            service_id="S", order_id="PO-1", released_resource_ids=("N1", "L1"), terminated_at=T0
        ),
        CustomerServiceAssigned(
            service_id="S", customer_id="C", sla_tier=SlaTier.GOLD, product_name="p", ended_at=T0
        ),
    ):
        event: Envelope[EventPayload] = new_event(payload, source="/test")
        key, value, headers = encode(event)
        assert decode(headers, value).data == payload
        assert key == payload.partition_key().encode()
