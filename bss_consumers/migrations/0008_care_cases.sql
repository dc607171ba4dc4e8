-- Care cases: one support case per customer and incident whose services it took down, opened
-- before the customer calls and resolved when the last of those services is back.
CREATE TABLE care_cases (
    id            text PRIMARY KEY,
    customer_id   text NOT NULL REFERENCES customers (id),
    incident_id   text NOT NULL,
    services_down text[] NOT NULL,
    state         text NOT NULL CHECK (state IN ('acknowledged', 'resolved')),
    opened_at     timestamptz NOT NULL,
    resolved_at   timestamptz,
    UNIQUE (customer_id, incident_id)
);
CREATE INDEX care_cases_open ON care_cases (incident_id) WHERE state = 'acknowledged';
