"""The payment gateway's side of the bus: payments received, published for billing to apply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events import new_event
from events.bss import PaymentReceived
from runtime.bus import Publisher

COMPONENT = "payment-gateway"
SOURCE = "/bss/payment-gateway"
HANDLES = ()
PUBLISHES = (PaymentReceived,)


async def record_payment(
    publisher: Publisher, account_id: str, amount_minor: int, currency: str, payment_id: str | None = None
) -> PaymentReceived:
    """Publish a payment received for an account; returns it."""
    payment = PaymentReceived(
        payment_id=payment_id or f"PAY-{uuid.uuid4().hex[:12]}",
        account_id=account_id,
        amount_minor=amount_minor,
        currency=currency,
        received_at=datetime.now(UTC),
    )
    await publisher.publish(new_event(payment, source=SOURCE, subject=account_id))
    return payment
