"""Technicians in the field: their reports (from `ossbss workorder report`), and, for the demo, a
simulated crew that travels to each job it is dispatched, works on it and reports.

The simulated visits are kept in the database, so a restart neither loses nor repeats a report.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from events import Envelope, EventPayload, new_event
from events.oss import (
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderEscalated,
    WorkOrderProgressReported,
    WorkOrderSlaBreached,
    WorkOrderState,
    WorkOrderStateChanged,
)
from runtime.bus import Publisher
from runtime.db import Connection

COMPONENT = "field-technicians"
SOURCE = "/oss/field"
HANDLES = (
    WorkOrderCreated,
    WorkOrderDispatched,
    WorkOrderStateChanged,
    WorkOrderEscalated,
    WorkOrderSlaBreached,
)
PUBLISHES = (WorkOrderProgressReported,)


def progress(
    work_order_id: str, technician_id: str, state: WorkOrderState, note: str = "", at: datetime | None = None
) -> Envelope[EventPayload]:
    """A technician's report on a work order."""
    return new_event(
        WorkOrderProgressReported(
            work_order_id=work_order_id,
            technician_id=technician_id,
            state=state,
            note=note,
            reported_at=at or datetime.now(UTC),
        ),
        source=SOURCE,
        subject=work_order_id,
    )


async def report(
    publisher: Publisher, work_order_id: str, technician_id: str, state: WorkOrderState, note: str = ""
) -> None:
    """Publish a technician's report (the field app's side)."""
    await publisher.publish(progress(work_order_id, technician_id, state, note))


@dataclass
class SimulatedCrew:
    """Plans a visit for every dispatched work order: travel, then work, then a report. A visit
    takes about ``visit_seconds``; ``failure_ratio`` of them end in failed."""

    visit_seconds: float
    failure_ratio: float = 0.05
    rng: random.Random = field(default_factory=random.Random)

    async def handle(
        self, conn: Connection, event: Envelope[EventPayload]
    ) -> Sequence[Envelope[EventPayload]]:
        data = event.data
        if isinstance(data, WorkOrderDispatched):
            now = datetime.now(UTC)
            arrive = now + timedelta(seconds=self.visit_seconds * self.rng.uniform(0.2, 0.4))
            finish = arrive + timedelta(seconds=self.visit_seconds * self.rng.uniform(0.6, 1.0))
            outcome = (
                WorkOrderState.FAILED if self.rng.random() < self.failure_ratio else WorkOrderState.COMPLETED
            )
            await conn.execute(
                """
                INSERT INTO field_visits (work_order_id, technician_id, arrive_at, finish_at, outcome)
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (work_order_id) DO NOTHING
                """,
                data.work_order_id,
                data.technician_id,
                arrive,
                finish,
                outcome.value,
            )
        elif isinstance(data, WorkOrderStateChanged) and data.state is WorkOrderState.CANCELLED:
            await conn.execute("DELETE FROM field_visits WHERE work_order_id = $1", data.work_order_id)
        return []


async def due_reports(conn: Connection, now: datetime) -> list[Envelope[EventPayload]]:
    """Periodic: the reports of the simulated visits that are due, each once."""
    arrived = await conn.fetch(
        """
        UPDATE field_visits SET arrived = true
        WHERE NOT arrived AND arrive_at <= $1 RETURNING work_order_id, technician_id, arrive_at
        """,
        now,
    )
    finished = await conn.fetch(
        """
        UPDATE field_visits SET finished = true
        WHERE arrived AND NOT finished AND finish_at <= $1
          AND work_order_id <> ALL($2::text[])
        RETURNING work_order_id, technician_id, finish_at, outcome
        """,
        now,
        [r["work_order_id"] for r in arrived],
    )
    await conn.execute("DELETE FROM field_visits WHERE finished")
    out = [
        progress(
            r["work_order_id"], r["technician_id"], WorkOrderState.IN_PROGRESS, "on site", r["arrive_at"]
        )
        for r in arrived
    ]
    for r in finished:
        state = WorkOrderState(r["outcome"])
        note = "repaired and tested" if state is WorkOrderState.COMPLETED else "part needed, could not repair"
        out.append(progress(r["work_order_id"], r["technician_id"], state, note, r["finish_at"]))
    return out
