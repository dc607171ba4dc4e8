"""Kafka binary content mode for CloudEvents: ``ce_*`` headers, JSON payload as the value,
record key = ``partitionkey``."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from events.envelope import CONTENT_TYPE, SPEC_VERSION, Envelope
from events.registry import REGISTRY, EventPayload

Headers = list[tuple[str, bytes]]


class DecodeError(ValueError):
    """A record that is not a valid event of the catalog; ``reason`` says why in one line."""

    def __init__(self, reason: str, event_type: str | None = None, event_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.event_type = event_type
        self.event_id = event_id


class UnknownEventType(DecodeError):
    """The ``ce_type`` header names no event type of the catalog."""


class InvalidEvent(DecodeError):
    """Missing or malformed CloudEvents attributes, or a payload that fails its schema."""


_OPTIONAL = ("subject", "causationid")


def encode(event: Envelope[EventPayload]) -> tuple[bytes, bytes, Headers]:
    """Return ``(key, value, headers)`` for a Kafka record carrying ``event``."""
    headers: Headers = [
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("ce_dataschema", event.dataschema.encode()),
        ("ce_correlationid", event.correlationid.encode()),
        ("ce_partitionkey", event.partitionkey.encode()),
        ("content-type", event.datacontenttype.encode()),
    ]
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    if event.causationid is not None:
        headers.append(("ce_causationid", event.causationid.encode()))
    return event.partitionkey.encode(), event.data.model_dump_json().encode(), headers


def decode(
    headers: Headers | tuple[tuple[str, bytes], ...],
    value: bytes | None,
    origin: tuple[str, int, int] | None = None,
) -> Envelope[EventPayload]:
    """Decode a Kafka record into an envelope; raise :class:`DecodeError` when it is not one."""
    attrs: dict[str, str] = {}
    try:
        for name, raw in headers:
            if name.startswith("ce_"):
                attrs[name[3:]] = raw.decode()
            elif name == "content-type":
                attrs["datacontenttype"] = raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidEvent(f"header is not UTF-8: {exc}") from None
    event_type = attrs.get("type")
    event_id = attrs.get("id")
    if event_type is None:
        raise InvalidEvent("missing ce_type header (not a CloudEvent in binary mode)", None, event_id)
    model = REGISTRY.get(event_type)
    if model is None:
        raise UnknownEventType(f"unknown event type {event_type!r}", event_type, event_id)
    missing = [a for a in ("id", "source", "time", "specversion") if not attrs.get(a)]
    if missing:
        raise InvalidEvent(f"missing CloudEvents attribute(s): {', '.join(missing)}", event_type, event_id)
    if attrs["specversion"] != SPEC_VERSION:
        raise InvalidEvent(f"unsupported specversion {attrs['specversion']!r}", event_type, event_id)
    content_type = attrs.get("datacontenttype", CONTENT_TYPE)
    if content_type.split(";")[0].strip() != CONTENT_TYPE:
        raise InvalidEvent(f"unsupported content type {content_type!r}", event_type, event_id)
    try:
        time = datetime.fromisoformat(attrs["time"])
    except ValueError:
        raise InvalidEvent(
            f"ce_time is not an RFC 3339 time: {attrs['time']!r}", event_type, event_id
        ) from None
    if time.tzinfo is None:
        raise InvalidEvent("ce_time has no UTC offset", event_type, event_id)
    if value is None:
        raise InvalidEvent("empty value (tombstone) where a payload is required", event_type, event_id)
    try:
        data = model.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise InvalidEvent(
            f"invalid {event_type} payload: {where}: {first['msg']} ({exc.error_count()} error(s))",
            event_type,
            event_id,
        ) from None
    key = data.partition_key()
    return Envelope(
        id=attrs["id"],
        source=attrs["source"],
        type=event_type,
        time=time,
        data=data,
        correlationid=attrs.get("correlationid") or attrs["id"],
        partitionkey=attrs.get("partitionkey") or key,
        dataschema=attrs.get("dataschema") or model.dataschema(),
        subject=attrs.get("subject"),
        causationid=attrs.get("causationid"),
        specversion=attrs["specversion"],
        datacontenttype=content_type,
        origin=origin,
    )
