"""BSS: the business side. Stream processors per bounded context (crm, care); talks to OSS only
through the event catalog and the topics of topology.yaml."""

DOMAIN = "bss"
