-- Services provided for BSS orders remember the order and their end sites.
ALTER TABLE services ADD COLUMN order_id text;
ALTER TABLE services ADD COLUMN a_site_id text;
ALTER TABLE services ADD COLUMN z_site_id text;
