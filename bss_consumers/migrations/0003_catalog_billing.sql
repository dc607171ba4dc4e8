-- Product catalog: the recurring price of each offering, per month.
CREATE TABLE product_offerings (
    id                    text PRIMARY KEY,
    name                  text NOT NULL UNIQUE,
    recurring_price_minor bigint NOT NULL CHECK (recurring_price_minor >= 0),
    currency              text NOT NULL
);

-- SLA credits owed to customers for outages, put on their next invoice.
CREATE TABLE sla_credits (
    id             text PRIMARY KEY,
    account_id     text NOT NULL REFERENCES accounts (id),
    service_id     text NOT NULL,
    outage_id      text NOT NULL,
    sla_tier       text NOT NULL,
    outage_seconds double precision NOT NULL,
    amount_minor   bigint NOT NULL CHECK (amount_minor >= 0),
    currency       text NOT NULL,
    granted_at     timestamptz NOT NULL,
    invoice_id     text,
    UNIQUE (outage_id, service_id)
);

-- Invoices (TMF678 customer bills): immutable once issued, numbered without gaps.
CREATE TABLE bill_numbers (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    last_used bigint NOT NULL
);
INSERT INTO bill_numbers (last_used) VALUES (0);

CREATE TABLE invoices (
    id                  text PRIMARY KEY,
    bill_number         bigint NOT NULL UNIQUE,
    account_id          text NOT NULL REFERENCES accounts (id),
    period_start        date NOT NULL,
    period_end          date NOT NULL,
    bill_date           timestamptz NOT NULL,
    payment_due_date    date NOT NULL,
    currency            text NOT NULL,
    tax_excluded_minor  bigint NOT NULL,
    tax_minor           bigint NOT NULL,
    tax_included_minor  bigint NOT NULL,
    paid_minor          bigint NOT NULL DEFAULT 0,
    state               text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'partiallyPaid', 'settled')),
    dunned_at           timestamptz,
    UNIQUE (account_id, period_start),
    CHECK (tax_included_minor = tax_excluded_minor + tax_minor)
);

CREATE TABLE invoice_lines (
    invoice_id   text NOT NULL REFERENCES invoices (id),
    line_no      integer NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('recurring', 'usage', 'credit')),
    description  text NOT NULL,
    offering_id  text,
    amount_minor bigint NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);

-- What an invoice has taken up, so nothing is billed twice.
ALTER TABLE rated_usage ADD COLUMN invoice_id text;
CREATE INDEX rated_usage_unbilled ON rated_usage (account_id) WHERE state = 'rated' AND invoice_id IS NULL;

-- Payments received, and how much of each went to which invoice.
CREATE TABLE payments (
    id           text PRIMARY KEY,
    account_id   text NOT NULL REFERENCES accounts (id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    currency     text NOT NULL,
    received_at  timestamptz NOT NULL,
    unapplied_minor bigint NOT NULL CHECK (unapplied_minor >= 0)
);
CREATE TABLE payment_allocations (
    payment_id   text NOT NULL REFERENCES payments (id),
    invoice_id   text NOT NULL REFERENCES invoices (id),
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    PRIMARY KEY (payment_id, invoice_id)
);

-- Issued invoices never change: only payment and dunning columns may move.
CREATE FUNCTION invoices_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.bill_number, NEW.account_id, NEW.period_start, NEW.period_end, NEW.bill_date,
        NEW.payment_due_date, NEW.currency, NEW.tax_excluded_minor, NEW.tax_minor, NEW.tax_included_minor)
       IS DISTINCT FROM
       (OLD.id, OLD.bill_number, OLD.account_id, OLD.period_start, OLD.period_end, OLD.bill_date,
        OLD.payment_due_date, OLD.currency, OLD.tax_excluded_minor, OLD.tax_minor, OLD.tax_included_minor) THEN
        RAISE EXCEPTION 'invoice % is issued and cannot change', OLD.id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER invoices_immutable BEFORE UPDATE ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoices_immutable();
CREATE FUNCTION invoice_lines_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'invoice lines cannot change';
END $$;
CREATE TRIGGER invoice_lines_immutable BEFORE UPDATE OR DELETE ON invoice_lines
    FOR EACH ROW EXECUTE FUNCTION invoice_lines_immutable();
