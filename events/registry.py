"""Payload base class and the registry from CloudEvents ``type`` to payload model."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

SCHEMA_URN = "urn:ossbss:event"


class EventPayload(BaseModel):
    """Base of every event payload: frozen, strict about unknown fields, versioned.

    Subclasses set ``event_type`` (past tense, or an explicit ``...Requested`` for a request from
    one domain to the other), ``schema_version`` and ``key_field``, the payload field whose value
    is the Kafka record key (the CloudEvents ``partitionkey``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    key_field: ClassVar[str]

    def partition_key(self) -> str:
        """The record key that orders this event among its peers."""
        return str(getattr(self, self.key_field))

    @classmethod
    def dataschema(cls) -> str:
        """The CloudEvents ``dataschema`` URI of this payload version."""
        return f"{SCHEMA_URN}:{cls.event_type}:v{cls.schema_version}"


REGISTRY: dict[str, type[EventPayload]] = {}

P = TypeVar("P", bound=type[EventPayload])


def register(model: P) -> P:
    """Class decorator: add a payload model to the registry under its ``event_type``."""
    name = model.event_type
    if name in REGISTRY:
        raise ValueError(f"event type {name!r} registered twice")
    if model.key_field not in model.__pydantic_fields__:
        raise ValueError(f"{name}: key_field {model.key_field!r} is not a field")
    REGISTRY[name] = model
    return model


def payload_model(event_type: str) -> type[EventPayload]:
    """The payload model registered for ``event_type``; KeyError when there is none."""
    return REGISTRY[event_type]
