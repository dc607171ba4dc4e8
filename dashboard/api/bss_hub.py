"""The BSS side of the TMF688 event hub: the component that delivers product order (TMF622),
customer bill (TMF678) and usage (TMF635) events to the callbacks subscribed through ``/hub``,
and the events each API's subscribers can ask for."""

from __future__ import annotations

from events import EventPayload
from events.bss import InvoiceIssued, InvoiceOverdueDetected, PaymentApplied, ProductOrderStateChanged
from events.network import UsageRecorded

COMPONENT = "bss-event-hub"
DOMAIN = "bss"
APIS: dict[str, tuple[type[EventPayload], ...]] = {
    "productOrderingManagement": (ProductOrderStateChanged,),
    "customerBillManagement": (InvoiceIssued, PaymentApplied, InvoiceOverdueDetected),
    "usageManagement": (UsageRecorded,),
}
"""API name (as in ``/tmf-api/{name}/v5/hub``) to the event types its subscribers receive."""
HANDLES = tuple(t for types in APIS.values() for t in types)
PUBLISHES = ()
