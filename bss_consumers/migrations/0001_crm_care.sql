-- CRM: customers (personal data stays here), their SLA tier, the services they hold.
CREATE TABLE customers (
    id                text PRIMARY KEY,
    name              text NOT NULL,
    email             text,
    phone             text,
    sla_tier          text NOT NULL CHECK (sla_tier IN ('platinum', 'gold', 'silver', 'bronze')),
    preferred_channel text NOT NULL DEFAULT 'email',
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE customer_services (
    service_id   text PRIMARY KEY,
    customer_id  text NOT NULL REFERENCES customers (id),
    product_name text NOT NULL,
    assigned_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_services_by_customer ON customer_services (customer_id);

-- Care: one notification per customer, subject and reason, whatever is redelivered and however
-- many of the customer's services one incident takes down. The subject is the incident (its root
-- alarm) for outages, the invoice for payment reminders.
CREATE TABLE notifications (
    id          text PRIMARY KEY,
    customer_id text NOT NULL REFERENCES customers (id),
    subject_id  text NOT NULL,
    outage_id   text,
    service_id  text,
    invoice_id  text,
    reason      text NOT NULL,
    channel     text NOT NULL,
    sent_at     timestamptz NOT NULL,
    UNIQUE (subject_id, customer_id, reason)
);
