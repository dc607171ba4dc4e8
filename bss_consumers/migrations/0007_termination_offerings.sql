-- Termination orders (TMF622 orderItem action delete). A delete order keeps the sites of the
-- order that provided its service, or '' for a service BSS did not order (the demo's seeded ones).
ALTER TABLE product_orders ADD COLUMN action text NOT NULL DEFAULT 'add' CHECK (action IN ('add', 'delete'));
-- One termination of a service at a time, and none after it has succeeded.
CREATE UNIQUE INDEX product_orders_one_termination ON product_orders (service_id)
    WHERE action = 'delete' AND state IN ('acknowledged', 'inProgress', 'completed');

-- The offering a service was ordered with (none for the demo's seeded services), and when the
-- customer stopped holding it: recurring charges run from assigned_at up to ended_at.
ALTER TABLE customer_services ADD COLUMN offering_id text REFERENCES product_offerings (id);
ALTER TABLE customer_services ADD COLUMN ended_at timestamptz;

-- Offerings carry the usage tariff plan and the SLA tier of the services ordered with them;
-- without one, the account's plan and the customer's tier apply.
ALTER TABLE product_offerings ADD COLUMN tariff_plan text;
ALTER TABLE product_offerings ADD COLUMN sla_tier text CHECK (sla_tier IN ('platinum', 'gold', 'silver', 'bronze'));

-- Allowances are per tariff plan as well: an account's services may be rated by several plans,
-- and each plan's included quantity is drawn only by the usage it rates.
ALTER TABLE allowance_balances ADD COLUMN tariff_plan text;
UPDATE allowance_balances b SET tariff_plan = a.tariff_plan FROM accounts a WHERE a.id = b.account_id;
ALTER TABLE allowance_balances ALTER COLUMN tariff_plan SET NOT NULL;
ALTER TABLE allowance_balances DROP CONSTRAINT allowance_balances_pkey;
ALTER TABLE allowance_balances ADD PRIMARY KEY (account_id, period_start, usage_kind, tariff_plan);

-- Churn: services terminated, by the product they were and the day.
ALTER TABLE sales_daily ADD COLUMN services_terminated integer NOT NULL DEFAULT 0;
