"""Events the network itself puts on the bus (probes, element managers, mediation).

Owned by the ``network`` domain in ``topology.yaml``: neither OSS nor BSS publishes these.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, Field, field_validator

from events.registry import EventPayload, register
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


def reduction_key(alarm_type: str, probable_cause: str, alarmed_object_id: str) -> str:
    """The key that identifies one alarm across repeats: same object, type and cause."""
    return f"{alarm_type}:{probable_cause}:{alarmed_object_id}"


class _ProbeAlarm(EventPayload):
    key_field = "reduction_key"

    notification_id: str = Field(
        min_length=1, max_length=128, description="Probe's own id of this notification."
    )
    reduction_key: str = Field(
        min_length=1,
        max_length=400,
        description="Identifies the alarm across repeats: alarmType:probableCause:alarmedObjectId.",
    )
    alarmed_object_id: str = Field(pattern=_ID, description="Id of the resource the alarm is on.")
    alarmed_object_type: ResourceType = Field(description="Kind of resource the alarm is on.")
    alarm_type: AlarmType = Field(description="X.733 event type (TMF642 alarmType).")
    probable_cause: ProbableCause = Field(description="X.733 probable cause.")
    specific_problem: str = Field(
        default="", max_length=500, description="Vendor-specific refinement of the probable cause."
    )
    event_time: AwareDatetime = Field(description="When the probe observed the condition.")
    source_system_id: str = Field(
        min_length=1, max_length=128, description="Probe or element manager that reported it."
    )


@register
class ProbeAlarmRaised(_ProbeAlarm):
    """A probe reports an alarm condition on a resource (X.733 notification, not cleared)."""

    event_type = "ProbeAlarmRaised"

    perceived_severity: PerceivedSeverity = Field(
        description="X.733 perceived severity; never 'cleared' on a raise."
    )
    service_affecting: bool = Field(
        description="Whether the condition interrupts the traffic carried by the resource."
    )
    alarm_details: dict[str, Any] = Field(
        default_factory=dict, description="Free-form vendor details, kept with the alarm."
    )

    @field_validator("perceived_severity")
    @classmethod
    def _not_cleared(cls, value: PerceivedSeverity) -> PerceivedSeverity:
        if value == PerceivedSeverity.CLEARED:
            raise ValueError("a raise cannot carry perceived_severity 'cleared'")
        return value


@register
class ProbeAlarmCleared(_ProbeAlarm):
    """A probe reports that an alarm condition has ended (X.733 severity 'cleared')."""

    event_type = "ProbeAlarmCleared"


class UsageKind(StrEnum):
    """What a usage record measures, and so its unit (TMF635 usage type)."""

    VOICE = "voice"  # seconds
    DATA = "data"  # bytes
    SMS = "sms"  # messages


@register
class UsageRecorded(EventPayload):
    """Network mediation recorded one usage of a service (TMF635 usage, state 'received').

    No calling or called numbers: rating needs the service, the kind, the quantity and when.
    """

    event_type = "UsageRecorded"
    key_field = "service_id"

    usage_id: str = Field(
        min_length=1, max_length=128, description="Mediation's unique id: the same usage sent again keeps it."
    )
    service_id: str = Field(pattern=_ID, description="TMF638 service the usage was made on.")
    usage_kind: UsageKind = Field(description="voice (seconds), data (bytes) or sms (messages).")
    quantity: int = Field(ge=0, le=10**15, description="Amount used, in the kind's unit.")
    start_time: AwareDatetime = Field(description="When the usage started.")
    source_system_id: str = Field(
        min_length=1, max_length=128, description="Mediation system that recorded it."
    )


class Indicator(StrEnum):
    """Performance indicators the probes measure per resource."""

    UTILIZATION = "utilization"  # percent of capacity
    PACKET_LOSS = "packetLoss"  # percent
    LATENCY = "latency"  # milliseconds


@register
class KpiSampled(EventPayload):
    """A probe measured one performance indicator of a resource (a VES measurement)."""

    event_type = "KpiSampled"
    key_field = "resource_id"

    resource_id: str = Field(pattern=_ID, description="Resource measured.")
    resource_type: ResourceType = Field(description="Kind of resource measured.")
    indicator: Indicator = Field(description="What was measured.")
    value: float = Field(
        ge=0, le=1e9, allow_inf_nan=False, description="Measured value, in the indicator's unit."
    )
    measured_at: AwareDatetime = Field(description="When it was measured.")
    source_system_id: str = Field(min_length=1, max_length=128, description="Probe that measured it.")
