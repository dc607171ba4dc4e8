"""Loop 2 through the running system: an order placed with the ``ossbss`` command is validated
by BSS, provisioned by OSS on a working path, completed, and its service assigned to the customer
(which OSS learns); the customer then terminates it: OSS ends the service and releases its path,
the termination order completes, OSS forgets the holder, and sales counts the churn. An order OSS
cannot provide fails with OSS's reason."""

from __future__ import annotations

import asyncpg

from tests.conftest import eventually
from tests.e2e.test_fault_to_notification import Running, running  # noqa: F401


def place(system: Running, customer: str, offering: str, a_site: str, z_site: str) -> str:
    """Place an order with the command line; returns its id."""
    placed = system.cli(
        "order", "place", "--customer", customer, "--offering", offering, "--from", a_site, "--to", z_site
    )
    return placed.split()[1]


async def test_order_is_provisioned_completed_and_assigned(running: Running) -> None:  # noqa: F811
    order_id = place(running, "CUST-0001", "PO-FIBRE-1G", "SITE-LON", "SITE-MAN")

    async def completed() -> bool:
        return any(
            o.order_id == order_id and o.state.value == "completed"
            for o in running.of("ProductOrderStateChanged")
        )

    await eventually(completed, timeout=30, what=lambda: f"order completed; seen {running.summary()}")
    states = [o.state.value for o in running.of("ProductOrderStateChanged") if o.order_id == order_id]
    assert states == ["acknowledged", "inProgress", "completed"]
    [activated] = [a for a in running.of("ServiceActivated") if a.order_id == order_id]
    assert activated.resource_ids[0].startswith("NODE-LON") and activated.resource_ids[-1].startswith(
        "NODE-MAN"
    )
    assert any(
        a.service_id == activated.service_id and a.customer_id == "CUST-0001"
        for a in running.of("CustomerServiceAssigned")
    )
    assert f"{order_id} completed" in " ".join(running.cli("order", "list").split())

    async def counted() -> bool:
        report = [line.split() for line in running.cli("sales", "report").splitlines()]
        return any(row[1:4] == ["PO-FIBRE-1G", "1", "1"] for row in report if len(row) > 3)

    await eventually(counted, what=lambda: "the order in the sales report: " + running.cli("sales", "report"))
    await _terminate(running, activated.service_id, activated.resource_ids)


async def _terminate(system: Running, service_id: str, path: tuple[str, ...]) -> None:
    """The customer ends the service they were just given, with the command line."""
    ordered = system.cli("order", "terminate", service_id, "--customer", "CUST-0001")
    order_id = ordered.split()[1]

    def states() -> list[str]:
        return [o.state.value for o in system.of("ProductOrderStateChanged") if o.order_id == order_id]

    async def completed() -> bool:
        return "completed" in states()

    await eventually(completed, timeout=30, what=lambda: f"termination completed; seen {system.summary()}")
    assert states() == ["acknowledged", "inProgress", "completed"]
    assert {o.action.value for o in system.of("ProductOrderStateChanged") if o.order_id == order_id} == {
        "delete"
    }
    [terminated] = [t for t in system.of("ServiceTerminated") if t.order_id == order_id]
    assert (terminated.service_id, terminated.released_resource_ids) == (service_id, path)

    async def holder_forgotten() -> bool:
        return any(
            a.service_id == service_id and a.ended_at is not None
            for a in system.of("CustomerServiceAssigned")
        )

    await eventually(holder_forgotten, what="the assignment ended on bss.customer-services")
    conn = await asyncpg.connect(system.env["DATABASE_URL"])
    try:

        async def oss_forgot() -> bool:
            held: int = await conn.fetchval(
                "SELECT count(*) FROM oss.customer_services WHERE service_id = $1", service_id
            )
            return held == 0

        await eventually(oss_forgot, what="OSS forgetting the holder")
        service = await conn.fetchrow(
            "SELECT state, terminated_at FROM oss.services WHERE id = $1", service_id
        )
        resources = await conn.fetchval(
            "SELECT count(*) FROM oss.service_resources WHERE service_id = $1", service_id
        )
        ended_at = await conn.fetchval(
            "SELECT ended_at FROM bss.customer_services WHERE service_id = $1", service_id
        )
    finally:
        await conn.close()
    assert service is not None
    assert (service["state"], service["terminated_at"], resources) == (
        "terminated",
        terminated.terminated_at,
        0,
    )
    assert ended_at == terminated.terminated_at  # billing charges the service up to that day
    listed = " ".join(system.cli("order", "list").split())
    assert f"{order_id} completed CUST-0001 PO-FIBRE-1G terminate {service_id}" in listed

    async def churned() -> bool:
        report = [line.split() for line in system.cli("sales", "report").splitlines()]
        return any(row[1:4] == ["PO-FIBRE-1G", "1", "1"] and row[6] == "1" for row in report if len(row) > 6)

    await eventually(churned, what=lambda: "the churn in the sales report: " + system.cli("sales", "report"))


async def test_orders_oss_cannot_provide_fail_with_the_reason(running: Running) -> None:  # noqa: F811
    # Birmingham's two backbone links are down: there is no working path to it.
    running.cli("probe", "raise", "LINK-LDS-BHM")
    running.cli("probe", "raise", "LINK-BHM-LON")

    async def links_down() -> bool:
        return len(running.of("TroubleTicketCreated")) == 2

    await eventually(links_down, timeout=30, what="two link alarms")
    no_path = place(running, "CUST-0002", "PO-SIP-30", "SITE-LON", "SITE-BHM")
    nowhere = place(running, "CUST-0002", "PO-SIP-30", "SITE-LON", "SITE-MARS")
    rejected = place(running, "CUST-9999", "PO-SIP-30", "SITE-LON", "SITE-MAN")

    def final(order_id: str) -> tuple[str, str | None] | None:
        found = [o for o in running.of("ProductOrderStateChanged") if o.order_id == order_id]
        return (
            (found[-1].state.value, found[-1].reason)
            if found and found[-1].state.value in ("failed", "rejected")
            else None
        )

    async def all_final() -> bool:
        return all(final(o) for o in (no_path, nowhere, rejected))

    await eventually(all_final, timeout=30, what=lambda: f"failed orders; seen {running.summary()}")
    assert final(no_path) == ("failed", "noPath: no working path between SITE-LON and SITE-BHM")
    assert final(nowhere) == ("failed", "invalidRequest: unknown site SITE-MARS")
    assert final(rejected) == ("rejected", "unknown customer CUST-9999")
    # The reason is kept with the order, for the customer.
    listed = " ".join(running.cli("order", "list").split())
    assert (
        f"{no_path} failed CUST-0002" in listed
        and "noPath: no working path between SITE-LON and SITE-BHM" in listed
    )
