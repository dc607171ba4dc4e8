"""Workforce management: work orders from tickets, dispatch to technicians, SLA timers."""
