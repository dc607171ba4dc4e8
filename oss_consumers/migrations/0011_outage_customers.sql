-- The customers an outage affected when it started: its restoration names the same ones, even
-- if a service ended (and OSS forgot its holder) while it was down.
ALTER TABLE service_outages ADD COLUMN customer_ids jsonb;
