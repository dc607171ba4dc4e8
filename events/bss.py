"""Events BSS publishes: customer-service assignments (for OSS) and customer notifications."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

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
    ended_at: AwareDatetime | None = Field(
        default=None,
        description=(
            "When the customer stopped holding the service (it was terminated); unset while they hold "
            "it. The latest record of a service with this set tells OSS to forget the holder."
        ),
    )


class NotificationReason(StrEnum):
    """Why a customer was told something."""

    SERVICE_OUTAGE = "serviceOutage"
    SERVICE_RESTORED = "serviceRestored"
    SERVICE_REROUTED = "serviceRerouted"
    INVOICE_OVERDUE = "invoiceOverdue"


@register
class CustomerNotificationSent(EventPayload):
    """BSS care told a customer about something that affects them."""

    event_type = "CustomerNotificationSent"
    key_field = "customer_id"

    notification_id: str = Field(description="Id of the notification.")
    customer_id: str = Field(description="Customer notified.")
    reason: NotificationReason = Field(description="What the notification is about.")
    incident_id: str | None = Field(
        default=None,
        description="For outages, the network incident (its root alarm): a customer hears once per incident.",
    )
    service_id: str | None = Field(default=None, description="Service whose outage triggered it, if any.")
    outage_id: str | None = Field(default=None, description="Outage concerned, if any.")
    invoice_id: str | None = Field(default=None, description="Overdue invoice concerned, if any.")
    channel: str = Field(description="Preferred contact channel used: email, sms, ...")
    sent_at: AwareDatetime = Field(description="When it was sent.")


class CaseState(StrEnum):
    """State of a customer care case (TMF621 status, the subset care uses)."""

    OPEN = "acknowledged"
    RESOLVED = "resolved"


@register
class CustomerCaseOpened(EventPayload):
    """BSS care opened a support case for a customer whose service is down, before the customer
    calls: one case per customer and incident, however many of their services it takes down."""

    event_type = "CustomerCaseOpened"
    key_field = "customer_id"

    case_id: str = Field(description="Id of the case (a customer-facing TMF621 ticket).")
    customer_id: str = Field(description="Customer the case is for.")
    incident_id: str = Field(description="The network incident (its root alarm).")
    service_ids: tuple[str, ...] = Field(description="The customer's services down when it opened.")
    state: CaseState = Field(description="State at opening: acknowledged.")
    opened_at: AwareDatetime = Field(description="When it was opened.")


@register
class CustomerCaseResolved(EventPayload):
    """Every service of the customer that the incident took down is back: the case is resolved."""

    event_type = "CustomerCaseResolved"
    key_field = "customer_id"

    case_id: str = Field(description="Id of the case.")
    customer_id: str = Field(description="Customer the case is for.")
    incident_id: str = Field(description="The network incident (its root alarm).")
    state: CaseState = Field(description="State now: resolved.")
    resolved_at: AwareDatetime = Field(description="When the last service came back.")
    resolution: str = Field(description="What happened, in words.")


@register
class SlaCreditGranted(EventPayload):
    """A customer is owed a credit for an outage of one of their services, by their SLA tier; it
    goes on the account's next invoice."""

    event_type = "SlaCreditGranted"
    key_field = "account_id"

    credit_id: str = Field(description="Id of the credit.")
    account_id: str = Field(description="Billing account credited.")
    customer_id: str = Field(description="Customer holding the service.")
    service_id: str = Field(description="Service that was down.")
    outage_id: str = Field(description="The outage the credit is for.")
    sla_tier: SlaTier = Field(
        description="The SLA tier that set the credit rule: the ordered offering's, else the customer's."
    )
    outage_seconds: float = Field(ge=0, description="Length of the outage.")
    amount_minor: int = Field(ge=0, description="Credit in minor units of the currency.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency.")
    granted_at: AwareDatetime = Field(description="When the credit was granted.")


class InvoiceLineKind(StrEnum):
    """What an invoice line charges or credits."""

    RECURRING = "recurring"
    USAGE = "usage"
    CREDIT = "credit"


class InvoiceLine(BaseModel):
    """One line of a customer bill (TMF678 appliedCustomerBillingRate)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line_no: int = Field(ge=1, description="Position on the invoice.")
    kind: InvoiceLineKind = Field(description="recurring, usage or credit.")
    description: str = Field(description="What the line is for.")
    amount_minor: int = Field(description="Tax-excluded amount in minor units; credits are negative.")
    offering_id: str | None = Field(default=None, description="Product offering a recurring line is for.")


@register
class InvoiceIssued(EventPayload):
    """A bill run issued an invoice (TMF678 customer bill). Invoices never change once issued."""

    event_type = "InvoiceIssued"
    key_field = "account_id"

    invoice_id: str = Field(description="TMF678 id.")
    bill_number: int = Field(ge=1, description="Gapless number across all invoices.")
    account_id: str = Field(description="Billing account billed.")
    bill_date: AwareDatetime = Field(description="When the invoice was issued.")
    billing_period_start: date = Field(description="First day of the billing period.")
    billing_period_end: date = Field(description="Last day of the billing period.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency.")
    tax_excluded_amount_minor: int = Field(ge=0, description="TMF678 taxExcludedAmount, minor units.")
    tax_amount_minor: int = Field(ge=0, description="Tax, minor units.")
    tax_included_amount_minor: int = Field(ge=0, description="TMF678 taxIncludedAmount, minor units.")
    amount_due_minor: int = Field(ge=0, description="TMF678 amountDue, minor units.")
    payment_due_date: date = Field(description="TMF678 paymentDueDate.")
    lines: tuple[InvoiceLine, ...] = Field(description="The invoice's lines.")


@register
class PaymentReceived(EventPayload):
    """A payment reached the operator for a billing account (TMF676 payment)."""

    event_type = "PaymentReceived"
    key_field = "account_id"

    payment_id: str = Field(min_length=1, max_length=128, description="Payment gateway's unique id.")
    account_id: str = Field(min_length=1, description="Billing account paid for.")
    amount_minor: int = Field(gt=0, description="Amount in minor units.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency.")
    received_at: AwareDatetime = Field(description="When the payment was received.")
    payment_method: str = Field(default="bankTransfer", description="How the customer paid.")


class InvoiceState(StrEnum):
    """TMF678 customer bill state, as payments move it."""

    NEW = "new"
    PARTIALLY_PAID = "partiallyPaid"
    SETTLED = "settled"


@register
class PaymentApplied(EventPayload):
    """Part or all of a payment settled (part of) an invoice."""

    event_type = "PaymentApplied"
    key_field = "account_id"

    payment_id: str = Field(description="The payment.")
    account_id: str = Field(description="Billing account.")
    invoice_id: str = Field(description="Invoice the amount went to.")
    amount_minor: int = Field(gt=0, description="Amount applied, minor units.")
    invoice_state: InvoiceState = Field(description="The invoice's state after it.")
    remaining_due_minor: int = Field(ge=0, description="What is still due on the invoice.")


@register
class InvoiceOverdueDetected(EventPayload):
    """An invoice was not settled by its due date: the customer is to be reminded (dunning)."""

    event_type = "InvoiceOverdueDetected"
    key_field = "account_id"

    invoice_id: str = Field(description="The overdue invoice.")
    account_id: str = Field(description="Billing account.")
    customer_id: str = Field(description="Customer to remind.")
    payment_due_date: date = Field(description="When it was due.")
    remaining_due_minor: int = Field(gt=0, description="What is still due, minor units.")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 currency.")


class ProductOrderState(StrEnum):
    """TMF622 product order state."""

    ACKNOWLEDGED = "acknowledged"
    REJECTED = "rejected"
    PENDING = "pending"
    HELD = "held"
    IN_PROGRESS = "inProgress"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIAL = "partial"
    ASSESSING_CANCELLATION = "assessingCancellation"
    PENDING_CANCELLATION = "pendingCancellation"


class OrderItemAction(StrEnum):
    """TMF622 ``productOrderItem.action``: what an order does to a product."""

    ADD = "add"
    DELETE = "delete"


@register
class ProductOrderRequested(EventPayload):
    """A customer asks for a product offering between two sites (a sales channel's request)."""

    event_type = "ProductOrderRequested"
    key_field = "order_id"

    order_id: str = Field(min_length=1, max_length=64, description="TMF622 id, chosen by the channel.")
    customer_id: str = Field(min_length=1, description="Customer ordering.")
    offering_id: str = Field(min_length=1, description="Product offering ordered.")
    a_site_id: str = Field(min_length=1, description="Site where the service starts.")
    z_site_id: str = Field(min_length=1, description="Site where the service ends.")
    requested_at: AwareDatetime = Field(description="When the customer ordered.")


@register
class ProductOrderCancellationRequested(EventPayload):
    """A customer asks to cancel an order before it is completed (TMF622 cancelProductOrder)."""

    event_type = "ProductOrderCancellationRequested"
    key_field = "order_id"

    order_id: str = Field(min_length=1, description="Order to cancel.")
    cancellation_reason: str = Field(default="", max_length=500, description="Why, in the customer's words.")


@register
class ProductTerminationRequested(EventPayload):
    """A customer asks to end a service they hold: a TMF622 product order whose item action is
    ``delete`` (a sales channel's request). BSS finds the offering and checks the holder."""

    event_type = "ProductTerminationRequested"
    key_field = "order_id"

    order_id: str = Field(min_length=1, max_length=64, description="TMF622 id, chosen by the channel.")
    customer_id: str = Field(min_length=1, description="Customer asking; must hold the service.")
    service_id: str = Field(min_length=1, description="TMF638 id of the service to end.")
    requested_at: AwareDatetime = Field(description="When the customer asked.")
    termination_reason: str = Field(default="", max_length=500, description="Why, in the customer's words.")


@register
class ProductOrderStateChanged(EventPayload):
    """A product order moved to another TMF622 state."""

    event_type = "ProductOrderStateChanged"
    key_field = "order_id"

    order_id: str = Field(description="TMF622 id.")
    customer_id: str = Field(description="Customer who ordered.")
    offering_id: str = Field(description="Product offering ordered.")
    state: ProductOrderState = Field(description="TMF622 state now.")
    service_id: str | None = Field(default=None, description="Service being provided, once known.")
    reason: str | None = Field(default=None, description="Why it failed or was rejected, for the customer.")
    action: OrderItemAction = Field(
        default=OrderItemAction.ADD,
        description="TMF622 orderItem action: add (provide a new service) or delete (terminate one).",
    )


@register
class ServiceProvisioningRequested(EventPayload):
    """BSS asks OSS to provide a service for an order (TMF641 service order)."""

    event_type = "ServiceProvisioningRequested"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 id of the service to provide.")
    order_id: str = Field(description="The product order behind it.")
    service_name: str = Field(description="What the service is, e.g. 'Business Fibre 1G LON-MAN'.")
    a_site_id: str = Field(description="Site where the service starts.")
    z_site_id: str = Field(description="Site where the service ends.")


@register
class ServiceTerminationRequested(EventPayload):
    """BSS asks OSS to end a service for a delete order (TMF641 service order, action delete):
    TMF638 state terminated, and its resources released."""

    event_type = "ServiceTerminationRequested"
    key_field = "service_id"

    service_id: str = Field(description="TMF638 id of the service to end.")
    order_id: str = Field(description="The product order behind it.")
    requested_at: AwareDatetime = Field(description="When the customer asked for the termination.")
