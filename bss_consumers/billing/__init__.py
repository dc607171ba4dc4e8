"""Billing: SLA credits, bill runs and invoices (TMF678)."""
