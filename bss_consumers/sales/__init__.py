"""Sales: revenue and orders by product and day, a read model fed by events."""
