-- Product orders (TMF622) and what became of them.
CREATE TABLE product_orders (
    id           text PRIMARY KEY,
    customer_id  text NOT NULL,
    offering_id  text NOT NULL,
    a_site_id    text NOT NULL,
    z_site_id    text NOT NULL,
    state        text NOT NULL,
    service_id   text,
    reason       text,
    requested_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX product_orders_by_state ON product_orders (state);
