"""The event catalog: the only contract between the network, OSS and BSS.

Contracts only: CloudEvents envelope, frozen pydantic payload models per domain, the registry
from event type to model, and the Kafka binary-mode codec. Nothing here performs I/O.
"""

from events.codec import DecodeError, InvalidEvent, UnknownEventType, decode, encode
from events.envelope import Envelope, new_event
from events.registry import REGISTRY, EventPayload, payload_model

# Importing the domain modules registers their event types.
from events import bss, network, oss  # noqa: F401  isort: skip

__all__ = [
    "REGISTRY",
    "DecodeError",
    "Envelope",
    "EventPayload",
    "InvalidEvent",
    "UnknownEventType",
    "decode",
    "encode",
    "new_event",
    "payload_model",
]
