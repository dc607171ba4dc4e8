-- Sales figures by day and product, kept up to date from the order and invoice events.
CREATE TABLE sales_daily (
    day              date NOT NULL,
    offering_id      text NOT NULL,
    currency         text NOT NULL DEFAULT '',
    orders_placed    integer NOT NULL DEFAULT 0,
    orders_completed integer NOT NULL DEFAULT 0,
    orders_failed    integer NOT NULL DEFAULT 0,
    orders_cancelled integer NOT NULL DEFAULT 0,
    revenue_minor    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, offering_id, currency)
);
