-- Billing accounts: currency, tariff plan and bill cycle (the day of the month a bill period
-- starts). A customer's services are billed to the customer's account.
CREATE TABLE accounts (
    id             text PRIMARY KEY,
    customer_id    text NOT NULL UNIQUE REFERENCES customers (id),
    currency       text NOT NULL,
    tariff_plan    text NOT NULL,
    bill_cycle_day integer NOT NULL CHECK (bill_cycle_day BETWEEN 1 AND 28)
);

-- What is left of each included allowance in a bill period.
CREATE TABLE allowance_balances (
    account_id   text NOT NULL REFERENCES accounts (id),
    period_start date NOT NULL,
    usage_kind   text NOT NULL,
    remaining    bigint NOT NULL CHECK (remaining >= 0),
    PRIMARY KEY (account_id, period_start, usage_kind)
);

-- Every usage record ends here in one TMF635 state, once: rated, or rejected with its reason.
CREATE TABLE rated_usage (
    usage_id         text PRIMARY KEY,
    service_id       text NOT NULL,
    account_id       text REFERENCES accounts (id),
    usage_kind       text NOT NULL,
    quantity         bigint NOT NULL,
    start_time       timestamptz NOT NULL,
    state            text NOT NULL CHECK (state IN ('rated', 'rejected')),
    reason           text,
    charged_quantity bigint,
    allowance_used   bigint,
    amount_minor     bigint CHECK (amount_minor >= 0),
    currency         text,
    band             text,
    bill_period      date,
    received_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((state = 'rated') = (amount_minor IS NOT NULL)),
    CHECK ((state = 'rejected') = (reason IS NOT NULL))
);
CREATE INDEX rated_usage_by_account_period ON rated_usage (account_id, bill_period) WHERE state = 'rated';
