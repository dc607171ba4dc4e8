"""CloudEvents 1.0 envelope with the ``correlationid``/``causationid`` and ``partitionkey``
extensions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from events.registry import EventPayload

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

P = TypeVar("P", bound=EventPayload)


@dataclass(frozen=True, slots=True)
class Envelope(Generic[P]):
    """One event: CloudEvents context attributes around a typed payload (``data``).

    A frozen dataclass rather than a pydantic model: attributes are checked once by the codec,
    and hot consumers build thousands of these per second.
    """

    id: str
    source: str
    type: str
    time: datetime
    data: P
    correlationid: str
    partitionkey: str
    dataschema: str
    subject: str | None = None
    causationid: str | None = None
    specversion: str = SPEC_VERSION
    datacontenttype: str = CONTENT_TYPE
    # Where the event was read from, when it was read from Kafka (not part of the event).
    origin: tuple[str, int, int] | None = field(default=None, compare=False)


def new_event(
    data: P,
    *,
    source: str,
    subject: str | None = None,
    cause: Envelope[EventPayload] | None = None,
    time: datetime | None = None,
    event_id: str | None = None,
) -> Envelope[P]:
    """Wrap a payload in a new envelope.

    ``cause`` is the event this one reacts to: its id becomes ``causationid`` and its
    ``correlationid`` is carried on, so a whole loop (alarm, ticket, outage, notification) shares
    one correlation id.
    """
    eid = event_id or str(uuid.uuid4())
    return Envelope(
        id=eid,
        source=source,
        type=data.event_type,
        time=time or datetime.now(UTC),
        data=data,
        correlationid=cause.correlationid if cause is not None else eid,
        causationid=cause.id if cause is not None else None,
        partitionkey=data.partition_key(),
        dataschema=data.dataschema(),
        subject=subject,
    )
