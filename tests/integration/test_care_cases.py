"""Care cases against the real PostgreSQL: one case per customer and incident, however many of
their services the incident takes down and however often the outage is delivered; resolved when
the last of them is back; none for a rerouted service."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest_asyncio

from bss_consumers.care import agents as care
from events import Envelope, EventPayload, new_event
from events.bss import CustomerCaseOpened, CustomerCaseResolved
from events.oss import ServiceOutageStarted, ServiceRerouted, ServiceRestored
from runtime.infra import Endpoints
from runtime.settings import Settings
from tests.conftest import domain_pool

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def bss(endpoints: Endpoints, settings: Settings) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    async with domain_pool(endpoints, settings, "bss") as pool:
        tag = uuid.uuid4().hex[:6].upper()
        async with pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO customers (id, name, sla_tier) VALUES ($1, 'Cared Ltd', 'gold')",
                [(f"CUST-{tag}-{n}",) for n in (1, 2)],
            )
        yield pool, tag


async def apply(pool: asyncpg.Pool, event: Envelope[EventPayload]) -> Sequence[Envelope[EventPayload]]:
    async with pool.acquire() as conn, conn.transaction():
        return await care.handle(conn, event)


def cases(out: Sequence[Envelope[EventPayload]]) -> list[EventPayload]:
    return [e.data for e in out if isinstance(e.data, CustomerCaseOpened | CustomerCaseResolved)]


def outage(incident: str, service: str, customers: tuple[str, ...]) -> Envelope[EventPayload]:
    return new_event(
        ServiceOutageStarted(
            outage_id=f"OUT-{service}",
            service_id=service,
            resource_id="LINK-X",
            alarm_id=incident,
            started_at=T0,
            customer_ids=customers,
        ),
        source="/t",
        subject=service,
    )


def restored(incident: str, service: str, customers: tuple[str, ...], minutes: int) -> Envelope[EventPayload]:
    return new_event(
        ServiceRestored(
            outage_id=f"OUT-{service}",
            service_id=service,
            alarm_id=incident,
            started_at=T0,
            restored_at=T0 + timedelta(minutes=minutes),
            duration_seconds=minutes * 60.0,
            customer_ids=customers,
        ),
        source="/t",
        subject=service,
    )


async def test_one_case_per_customer_and_incident_resolved_when_all_is_back(
    bss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = bss
    one, two = f"CUST-{tag}-1", f"CUST-{tag}-2"
    incident = f"ALM-{tag}"

    first = cases(await apply(pool, outage(incident, f"SVC-{tag}-A", (one, two))))
    assert sorted((c.customer_id, c.service_ids) for c in first) == [  # type: ignore[attr-defined]
        (one, (f"SVC-{tag}-A",)),
        (two, (f"SVC-{tag}-A",)),
    ]
    # A second service of customer one in the same incident, and a redelivery: no new case.
    assert cases(await apply(pool, outage(incident, f"SVC-{tag}-B", (one,)))) == []
    assert cases(await apply(pool, outage(incident, f"SVC-{tag}-A", (one, two)))) == []
    # A rerouted service stayed up: a notice, no case.
    rerouted = new_event(
        ServiceRerouted(
            service_id=f"SVC-{tag}-C",
            alarm_id=incident,
            failed_resource_id="LINK-X",
            previous_path=("A", "B"),
            new_path=("A", "C", "B"),
            rerouted_at=T0,
            customer_ids=(one,),
        ),
        source="/t",
        subject="x",
    )
    assert cases(await apply(pool, rerouted)) == []

    # A back: customer two's case is resolved, customer one still has B down.
    back = cases(await apply(pool, restored(incident, f"SVC-{tag}-A", (one, two), 42)))
    assert [(c.customer_id, c.resolution) for c in back] == [  # type: ignore[attr-defined]
        (two, "every service back after 42 minutes; any SLA credit goes on the next invoice")
    ]
    last = cases(await apply(pool, restored(incident, f"SVC-{tag}-B", (one,), 61)))
    assert [(c.customer_id, c.resolved_at) for c in last] == [(one, T0 + timedelta(minutes=61))]  # type: ignore[attr-defined]
    assert cases(await apply(pool, restored(incident, f"SVC-{tag}-B", (one,), 61))) == []  # redelivered


async def test_a_case_reopens_for_a_service_that_goes_down_after_the_others_came_back(
    bss: tuple[asyncpg.Pool, str],
) -> None:
    pool, tag = bss
    one = f"CUST-{tag}-1"
    incident = f"ALM-{tag}-R"
    first, second = f"SVC-{tag}-R1", f"SVC-{tag}-R2"
    [opened] = cases(await apply(pool, outage(incident, first, (one,))))
    # Its restoration names nobody: the service ended while down, and OSS forgot its holder.
    [closed] = cases(await apply(pool, restored(incident, first, (), 5)))
    assert closed.case_id == opened.case_id  # type: ignore[attr-defined]
    # The incident's other service reaches care later (another partition): the case reopens.
    [again] = cases(await apply(pool, outage(incident, second, (one,))))
    assert again.case_id == opened.case_id and again.service_ids == (second,)  # type: ignore[attr-defined]
    # A republished outage of the service already back changes nothing.
    assert cases(await apply(pool, outage(incident, first, (one,)))) == []
    [resolved] = cases(await apply(pool, restored(incident, second, (one,), 9)))
    assert resolved.case_id == opened.case_id  # type: ignore[attr-defined]
