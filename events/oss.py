"""Events OSS publishes: alarms (TMF642), trouble tickets (TMF621), service health, work orders
(TMF697)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.registry import EventPayload, register
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType


class AckState(StrEnum):
    """TMF642 ``ackState``."""

    ACKNOWLEDGED = "acknowledged"
    UNACKNOWLEDGED = "unacknowledged"


class _AlarmEvent(EventPayload):
    key_field = "reduction_key"

    alarm_id: str = Field(description="OSS id of the alarm (TMF642 id).")
    reduction_key: str = Field(description="Dedup key: alarmType:probableCause:alarmedObjectId.")


class CrossedThresholdInformation(BaseModel):
    """TMF642 ``crossedThresholdInformation`` of a threshold-crossing alarm."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    indicator_name: str = Field(description="The KPI that crossed, e.g. utilization.")
    observed_value: float = Field(description="The window's average.")
    threshold: float = Field(description="The level crossed.")
    direction: str = Field(description="up or down.")
    granularity: str = Field(description="The window length, ISO 8601, e.g. PT60S.")
    threshold_crossing_description: str = Field(default="", description="The crossing in words.")


@register
class AlarmRaised(_AlarmEvent):
    """OSS has a new active alarm (first raise of its reduction key since the last clear)."""

    event_type = "AlarmRaised"

    alarmed_object_id: str = Field(description="Resource the alarm is on (TMF642 alarmedObject.id).")
    alarmed_object_type: ResourceType = Field(description="TMF642 alarmedObjectType.")
    alarm_type: AlarmType = Field(description="X.733 event type (TMF642 alarmType).")
    probable_cause: ProbableCause = Field(description="X.733 probable cause.")
    specific_problem: str = Field(default="", description="Vendor refinement of the cause.")
    perceived_severity: PerceivedSeverity = Field(description="X.733 perceived severity.")
    alarm_raised_time: AwareDatetime = Field(description="When the probe first observed it.")
    service_affecting: bool = Field(description="TMF642 serviceAffecting.")
    is_root_cause: bool = Field(default=True, description="TMF642 isRootCause.")
    parent_alarm_id: str | None = Field(
        default=None, description="TMF642 parentAlarm: the root-cause alarm that explains this one."
    )
    source_system_id: str = Field(description="Probe that reported it (TMF642 sourceSystemId).")
    crossed_threshold_information: CrossedThresholdInformation | None = Field(
        default=None, description="For a threshold-crossing alarm: what crossed, and how."
    )


@register
class AlarmChanged(_AlarmEvent):
    """An active alarm was reported again with another perceived severity (TMF642 state
    'updated')."""

    event_type = "AlarmChanged"

    perceived_severity: PerceivedSeverity = Field(description="X.733 perceived severity now.")
    previous_severity: PerceivedSeverity = Field(description="Perceived severity before the change.")
    alarm_changed_time: AwareDatetime = Field(description="When the probe reported the change.")
    occurrences: int = Field(ge=1, description="How many times the probe has reported the alarm.")


@register
class AlarmCleared(_AlarmEvent):
    """An active alarm has cleared (TMF642 state 'cleared')."""

    event_type = "AlarmCleared"

    alarm_cleared_time: AwareDatetime = Field(description="When the probe observed the clear.")
    alarmed_object_id: str = Field(description="Resource the alarm was on.")


@register
class AlarmAcknowledged(_AlarmEvent):
    """An operator has acknowledged (or un-acknowledged) an alarm."""

    event_type = "AlarmAcknowledged"

    ack_state: AckState = Field(description="TMF642 ackState after the change.")
    ack_user_id: str = Field(description="Operator who changed the acknowledgement.")
    ack_system_id: str = Field(default="ossbss-cli", description="Console the operator used.")
    ack_time: AwareDatetime = Field(description="When the acknowledgement took effect.")


@register
class AlarmAcknowledgementRequested(EventPayload):
    """An operator asks OSS fault management to acknowledge or un-acknowledge an alarm."""

    event_type = "AlarmAcknowledgementRequested"
    key_field = "alarm_id"

    alarm_id: str = Field(min_length=1, description="Alarm to change.")
    ack_state: AckState = Field(description="Requested TMF642 ackState.")
    ack_user_id: str = Field(min_length=1, max_length=128, description="Operator asking.")


@register
class AlarmClearanceRequested(EventPayload):
    """An operator asks OSS fault management to clear an alarm by hand (TMF642 clearAlarms)."""

    event_type = "AlarmClearanceRequested"
    key_field = "alarm_id"

    alarm_id: str = Field(min_length=1, description="Alarm to clear.")
    clear_user_id: str = Field(min_length=1, max_length=128, description="Operator asking.")


class TroubleTicketStatus(StrEnum):
    """TMF621 trouble ticket ``status``."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    CLOSED = "closed"
    RESOLVED = "resolved"


class RelatedEntity(BaseModel):
    """TMF621 ``relatedEntity``: something the ticket is about."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Id of the related entity.")
    role: str = Field(description="Why it is related: rootCauseAlarm, affectedResource, ...")
    referred_type: str = Field(description="TMF @referredType: Alarm, Resource, Service.")


@register
class TroubleTicketCreated(EventPayload):
    """OSS opened a trouble ticket for a service-affecting alarm."""

    event_type = "TroubleTicketCreated"
    key_field = "ticket_id"

    ticket_id: str = Field(description="TMF621 id.")
    name: str = Field(description="Short title.")
    description: str = Field(description="What is wrong, in words.")
    severity: PerceivedSeverity = Field(description="Severity of the alarm behind the ticket.")
    priority: int = Field(ge=1, le=4, description="1 (highest) to 4.")
    ticket_type: str = Field(default="networkIncident", description="TMF621 ticketType.")
    status: TroubleTicketStatus = Field(description="TMF621 status at creation.")
    creation_date: AwareDatetime = Field(description="When the ticket was opened.")
    related_entity: tuple[RelatedEntity, ...] = Field(description="Alarm, resource and services.")
    field_work_required: bool = Field(
        default=False,
        description="Whether the fault needs a technician on site: workforce then opens a work order.",
    )


@register
class TroubleTicketEscalated(EventPayload):
    """A trouble ticket is still open past the time limit of its severity."""

    event_type = "TroubleTicketEscalated"
    key_field = "ticket_id"

    ticket_id: str = Field(description="TMF621 id.")
    severity: PerceivedSeverity = Field(description="Severity of the alarm behind the ticket.")
    priority: int = Field(ge=1, le=4, description="Priority after the escalation (1 highest).")
    open_seconds: float = Field(ge=0, description="How long the ticket has been open.")
    limit_seconds: float = Field(ge=0, description="The time limit of its severity.")
    escalated_at: AwareDatetime = Field(description="When it was escalated.")


@register
class TroubleTicketResolved(EventPayload):
    """A trouble ticket is resolved: the alarm behind it has cleared, and its work order, if any,
    is done or was never started."""

    event_type = "TroubleTicketResolved"
    key_field = "ticket_id"

    ticket_id: str = Field(description="TMF621 id.")
    status: TroubleTicketStatus = Field(description="TMF621 status after the change: resolved.")
    resolution_date: AwareDatetime = Field(description="When it was resolved.")
    status_change_reason: str = Field(description="Why the status changed.")


class OperationalState(StrEnum):
    """TMF639 resource ``operationalState``."""

    ENABLE = "enable"
    DISABLE = "disable"


@register
class ResourceStateChanged(EventPayload):
    """A resource's TMF639 operational state changed: disabled while a service-affecting major or
    critical alarm is active on it, enabled again when none is."""

    event_type = "ResourceStateChanged"
    key_field = "resource_id"

    resource_id: str = Field(description="TMF639 resource id.")
    resource_type: ResourceType = Field(description="Kind of resource.")
    operational_state: OperationalState = Field(description="State now.")
    previous_state: OperationalState = Field(description="State before.")
    changed_at: AwareDatetime = Field(description="When fault management changed it.")


class AdministrativeState(StrEnum):
    """TMF639 resource ``administrativeState``."""

    LOCKED = "locked"  # taken out of use, e.g. for planned maintenance
    UNLOCKED = "unlocked"


@register
class ResourceAdministrationRequested(EventPayload):
    """An operator asks OSS inventory to lock a resource (planned maintenance) or unlock it."""

    event_type = "ResourceAdministrationRequested"
    key_field = "resource_id"

    resource_id: str = Field(min_length=1, max_length=128, description="TMF639 resource id.")
    administrative_state: AdministrativeState = Field(description="Requested administrativeState.")
    requested_by: str = Field(min_length=1, max_length=128, description="Operator asking.")
    reason: str = Field(default="", max_length=500, description="Why, e.g. a maintenance window.")


@register
class ResourceAdministrativeStateChanged(EventPayload):
    """A resource was locked or unlocked (TMF639 administrativeState). A locked resource carries no
    new service and no rerouted traffic, and its alarms open no trouble ticket."""

    event_type = "ResourceAdministrativeStateChanged"
    key_field = "resource_id"

    resource_id: str = Field(description="TMF639 resource id.")
    resource_type: ResourceType = Field(description="Kind of resource.")
    administrative_state: AdministrativeState = Field(description="State now.")
    previous_state: AdministrativeState = Field(description="State before.")
    changed_by: str = Field(description="Operator who asked.")
    reason: str = Field(default="", description="Why.")
    changed_at: AwareDatetime = Field(description="When inventory changed it.")


@register
class ServiceOutageStarted(EventPayload):
    """A service is down because a resource it runs on failed; BSS reacts for the customers."""

    event_type = "ServiceOutageStarted"
    key_field = "service_id"

    outage_id: str = Field(description="Id of this outage of this service.")
    service_id: str = Field(description="TMF638 service id.")
    resource_id: str = Field(description="Failed resource the service depends on.")
    alarm_id: str = Field(description="Alarm that revealed the failure.")
    started_at: AwareDatetime = Field(description="When the service went down.")
    customer_ids: tuple[str, ...] = Field(description="Customers holding the service.")


@register
class ServiceRerouted(EventPayload):
    """A resource a service ran over failed, and OSS moved the service to a path around it: the
    service stays up. It keeps the new path after the repair (no second move back)."""

    event_type = "ServiceRerouted"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 service id.")
    alarm_id: str = Field(description="Alarm of the failed resource.")
    failed_resource_id: str = Field(description="The resource the service was moved off.")
    previous_path: tuple[str, ...] = Field(description="Nodes and links before, in order.")
    new_path: tuple[str, ...] = Field(description="Nodes and links now, in order.")
    rerouted_at: AwareDatetime = Field(description="When the service was moved.")
    customer_ids: tuple[str, ...] = Field(description="Customers holding the service.")


@register
class ServiceRestored(EventPayload):
    """A service that was down is up again."""

    event_type = "ServiceRestored"
    key_field = "service_id"

    outage_id: str = Field(description="The outage that ended.")
    service_id: str = Field(description="TMF638 service id.")
    alarm_id: str = Field(description="Alarm that started the outage.")
    started_at: AwareDatetime = Field(description="When the outage started.")
    restored_at: AwareDatetime = Field(description="When the service was up again.")
    duration_seconds: float = Field(ge=0, description="Length of the outage.")
    customer_ids: tuple[str, ...] = Field(description="Customers holding the service.")


class ActivationFailure(StrEnum):
    """Why OSS could not provide a service, in terms a BSS user can act on."""

    NO_CAPACITY = "noCapacity"
    NO_PATH = "noPath"
    INVALID_REQUEST = "invalidRequest"


@register
class ServiceActivated(EventPayload):
    """OSS placed a requested service on the network and it is active (TMF638 state active)."""

    event_type = "ServiceActivated"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 id.")
    order_id: str = Field(description="The order that asked for it.")
    resource_ids: tuple[str, ...] = Field(description="Nodes and links the service runs over, in order.")
    activated_at: AwareDatetime = Field(description="When it became active.")


@register
class ServiceActivationFailed(EventPayload):
    """OSS could not provide a requested service."""

    event_type = "ServiceActivationFailed"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 id.")
    order_id: str = Field(description="The order that asked for it.")
    failure: ActivationFailure = Field(description="Kind of failure.")
    reason: str = Field(description="What went wrong, for a BSS user to act on.")


@register
class ServiceTerminated(EventPayload):
    """OSS ended a service (TMF638 state terminated) and released the resources it ran over: it no
    longer counts for fault impact or capacity. A repeated request for a service already
    terminated gets this event again, with the original time and nothing more released."""

    event_type = "ServiceTerminated"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 id.")
    order_id: str = Field(description="The order that asked for the termination.")
    released_resource_ids: tuple[str, ...] = Field(
        description="Nodes and links the service ran over, in order, released now (empty on a repeat)."
    )
    terminated_at: AwareDatetime = Field(description="When the service was terminated.")


@register
class ServiceTerminationFailed(EventPayload):
    """OSS could not end a requested service, for example because the inventory has no such
    service."""

    event_type = "ServiceTerminationFailed"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 id.")
    order_id: str = Field(description="The order that asked for the termination.")
    reason: str = Field(description="What went wrong, for a BSS user to act on.")


class CrossingDirection(StrEnum):
    """TMF642 crossedThresholdInformation.direction."""

    UP = "up"
    DOWN = "down"


@register
class ThresholdCrossed(EventPayload):
    """A windowed KPI crossed its threshold (TMF642 crossedThresholdInformation): going up raises
    a threshold-crossing alarm, coming back below the clear level (hysteresis) clears it."""

    event_type = "ThresholdCrossed"
    key_field = "resource_id"

    resource_id: str = Field(description="Resource whose indicator crossed.")
    resource_type: ResourceType = Field(description="Kind of resource.")
    indicator: str = Field(description="TMF642 indicatorName.")
    observed_value: float = Field(description="TMF642 observedValue: the window's average.")
    threshold: float = Field(
        description="The level crossed: the raise level going up, the clear level going down."
    )
    direction: CrossingDirection = Field(description="TMF642 direction.")
    granularity_seconds: int = Field(gt=0, description="TMF642 granularity: the window length.")
    window_start: AwareDatetime = Field(description="Start of the window that crossed.")


@register
class CapacityForecastChanged(EventPayload):
    """The capacity forecast of a resource moved materially: its trend over the KPI windows, and
    when it reaches the planning threshold (time to exhaustion)."""

    event_type = "CapacityForecastChanged"
    key_field = "resource_id"

    resource_id: str = Field(description="Resource forecast.")
    indicator: str = Field(description="Indicator forecast, e.g. utilization.")
    level: float = Field(description="Trend level now, in the indicator's unit.")
    slope_per_day: float = Field(description="Trend growth per day, in the indicator's unit.")
    planning_threshold: float = Field(description="Level at which the resource counts as exhausted.")
    exhaustion_at: AwareDatetime | None = Field(
        description="When the trend reaches the threshold; none if it does not rise."
    )
    windows: int = Field(ge=2, description="How many windows the trend is fitted over.")


class WorkOrderState(StrEnum):
    """TMF697 work order ``state``."""

    ACKNOWLEDGED = "acknowledged"  # created, a technician may already be assigned
    PENDING = "pending"  # waiting for a technician with the skill in the region on shift
    IN_PROGRESS = "inProgress"  # the technician is on site
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the fault went away before anyone started


class _WorkOrderEvent(EventPayload):
    key_field = "work_order_id"

    work_order_id: str = Field(description="TMF697 id.")
    ticket_id: str = Field(description="TMF621 ticket the work order is for.")


@register
class WorkOrderCreated(_WorkOrderEvent):
    """OSS workforce opened a work order (TMF697) for a ticket that needs field work."""

    event_type = "WorkOrderCreated"

    alarm_id: str = Field(description="TMF642 alarm behind the ticket.")
    resource_id: str = Field(description="Resource to work on.")
    site_id: str | None = Field(description="Site the technician goes to, if the inventory knows it.")
    region: str | None = Field(description="Workforce region of the site.")
    required_skill: str = Field(description="Skill the job needs (fibre, router, power, ...).")
    priority: int = Field(ge=1, le=4, description="1 (highest) to 4, the ticket's priority.")
    state: WorkOrderState = Field(
        description="TMF697 state at creation: acknowledged, or pending when nobody can take it now."
    )
    state_reason: str = Field(default="", description="Why it is in that state, e.g. why it waits.")
    creation_date: AwareDatetime = Field(description="When the work order was opened.")
    due_date: AwareDatetime = Field(description="When it must be completed: creation plus the SLA.")


@register
class WorkOrderDispatched(_WorkOrderEvent):
    """A technician was assigned to a work order."""

    event_type = "WorkOrderDispatched"

    technician_id: str = Field(description="Technician assigned.")
    dispatched_at: AwareDatetime = Field(description="When the technician was assigned.")
    due_date: AwareDatetime = Field(description="When the work must be completed.")
    load: int = Field(ge=1, description="Open work orders of the technician, this one included.")


@register
class WorkOrderStateChanged(_WorkOrderEvent):
    """A work order moved to another TMF697 state."""

    event_type = "WorkOrderStateChanged"

    state: WorkOrderState = Field(description="State now.")
    previous_state: WorkOrderState = Field(description="State before.")
    technician_id: str | None = Field(description="Technician assigned, if any.")
    changed_at: AwareDatetime = Field(description="When the state changed.")
    reason: str = Field(default="", description="Why, in words.")


@register
class WorkOrderEscalated(_WorkOrderEvent):
    """The ticket behind a work order was escalated: the work order takes its higher priority and
    the shorter SLA that comes with it."""

    event_type = "WorkOrderEscalated"

    priority: int = Field(ge=1, le=4, description="Priority now (1 highest).")
    due_date: AwareDatetime = Field(description="When it must be completed now.")
    escalated_at: AwareDatetime = Field(description="When it was escalated.")


@register
class WorkOrderSlaBreached(_WorkOrderEvent):
    """A work order was not completed by its due date."""

    event_type = "WorkOrderSlaBreached"

    priority: int = Field(ge=1, le=4, description="Priority of the work order.")
    due_date: AwareDatetime = Field(description="When it was due.")
    technician_id: str | None = Field(description="Technician assigned, if any.")
    breached_at: AwareDatetime = Field(description="When the breach was detected.")


@register
class WorkOrderProgressReported(EventPayload):
    """A technician reports from the field: on site (inProgress), done (completed), or unable to
    fix it (failed)."""

    event_type = "WorkOrderProgressReported"
    key_field = "work_order_id"

    work_order_id: str = Field(min_length=1, description="TMF697 id.")
    technician_id: str = Field(min_length=1, max_length=64, description="Technician reporting.")
    state: WorkOrderState = Field(description="inProgress, completed or failed.")
    note: str = Field(default="", max_length=500, description="What was found or done.")
    reported_at: AwareDatetime = Field(description="When the technician reported.")
