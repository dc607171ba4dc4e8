"""OSS: the network side. Stream processors per bounded context (fault, inventory); talks to BSS
only through the event catalog and the topics of topology.yaml."""

DOMAIN = "oss"
