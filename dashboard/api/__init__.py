"""TM Forum Open API resources, one module per domain."""
