"""Shared plumbing: settings, logging, Kafka clients, topology, PostgreSQL, embedded servers.

It knows no domain: OSS and BSS code plug into it, never the other way round.
"""
