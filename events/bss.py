"""Events BSS publishes: customer-service assignments (for OSS) and customer notifications."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, Field

from events.registry import EventPayload, register


class SlaTier(StrEnum):
    """Service level agreement tier of a customer."""

    PLATINUM = "platinum"
    GOLD = "gold"
    SILVER = "silver"
    BRONZE = "bronze"


@register
class CustomerServiceAssigned(EventPayload):
    """A customer holds a service: the fact OSS needs to know whom a fault impacts.

    Published on a compacted topic keyed by service id; the latest record per service is the
    current assignment.
    """

    event_type = "CustomerServiceAssigned"
    key_field = "service_id"

    service_id: str = Field(min_length=1, description="TMF638 service id.")
    customer_id: str = Field(min_length=1, description="Customer holding the service.")
    sla_tier: SlaTier = Field(description="SLA tier of the customer for this service.")
    product_name: str = Field(description="Commercial name of the product behind the service.")


class NotificationReason(StrEnum):
    """Why a customer was told something."""

    SERVICE_OUTAGE = "serviceOutage"
    SERVICE_RESTORED = "serviceRestored"


@register
class CustomerNotificationSent(EventPayload):
    """BSS care told a customer about something that affects them."""

    event_type = "CustomerNotificationSent"
    key_field = "customer_id"

    notification_id: str = Field(description="Id of the notification.")
    customer_id: str = Field(description="Customer notified.")
    reason: NotificationReason = Field(description="What the notification is about.")
    incident_id: str = Field(
        description="The network incident (its root alarm): a customer hears once per incident."
    )
    service_id: str = Field(description="Service whose outage triggered the notification.")
    outage_id: str = Field(description="Outage concerned.")
    channel: str = Field(description="Preferred contact channel used: email, sms, ...")
    sent_at: AwareDatetime = Field(description="When it was sent.")
