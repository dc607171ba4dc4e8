"""The CloudEvents binary-mode codec and the catalog's models."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from events import REGISTRY, InvalidEvent, UnknownEventType, decode, encode, new_event
from events.network import ProbeAlarmRaised, reduction_key
from events.oss import TroubleTicketCreated
from events.schema import event_schema, write_schemas
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def raised(**overrides: object) -> ProbeAlarmRaised:
    fields: dict[str, object] = dict(
        notification_id="n-1",
        reduction_key=reduction_key("communicationsAlarm", "lossOfSignal", "LINK-A-B"),
        alarmed_object_id="LINK-A-B",
        alarmed_object_type=ResourceType.LINK,
        alarm_type=AlarmType.COMMUNICATIONS,
        probable_cause=ProbableCause.LOSS_OF_SIGNAL,
        event_time=T0,
        source_system_id="probe-1",
        perceived_severity=PerceivedSeverity.CRITICAL,
        service_affecting=True,
    )
    fields.update(overrides)
    return ProbeAlarmRaised.model_validate(fields)


def test_round_trip_keeps_every_attribute() -> None:
    cause = new_event(raised(), source="/network/probe-1", subject="LINK-A-B")
    event = new_event(raised(notification_id="n-2"), source="/network/probe-1", cause=cause)
    key, value, headers = encode(event)
    assert key == b"communicationsAlarm:lossOfSignal:LINK-A-B"
    names = dict(headers)
    assert names["ce_type"] == b"ProbeAlarmRaised"
    assert names["ce_specversion"] == b"1.0"
    assert names["content-type"] == b"application/json"
    assert json.loads(value)["alarmed_object_id"] == "LINK-A-B"
    back = decode(headers, value, ("network.alarms", 2, 7))
    assert back.id == event.id
    assert back.data == event.data
    assert back.correlationid == cause.id
    assert back.causationid == cause.id
    assert back.time == event.time
    assert back.dataschema == "urn:ossbss:event:ProbeAlarmRaised:v1"
    assert back.origin == ("network.alarms", 2, 7)


def test_unknown_type_is_rejected_with_a_typed_error() -> None:
    event = new_event(raised(), source="/p")
    _, value, headers = encode(event)
    headers = [(n, b"AlarmExploded" if n == "ce_type" else v) for n, v in headers]
    with pytest.raises(UnknownEventType, match="AlarmExploded"):
        decode(headers, value)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda v: b"{not json", "invalid ProbeAlarmRaised payload"),
        (
            lambda v: json.dumps({**json.loads(v), "perceived_severity": "apocalyptic"}).encode(),
            "perceived_severity",
        ),
        (lambda v: json.dumps({**json.loads(v), "perceived_severity": "cleared"}).encode(), "cleared"),
        (lambda v: json.dumps({**json.loads(v), "surprise": 1}).encode(), "surprise"),
        (lambda v: json.dumps({**json.loads(v), "event_time": "2026-11-27T10:00:00"}).encode(), "event_time"),
    ],
)
def test_invalid_payloads_are_rejected_with_the_field(mutate: object, reason: str) -> None:
    _, value, headers = encode(new_event(raised(), source="/p"))
    with pytest.raises(InvalidEvent, match=reason):
        decode(headers, mutate(value))  # type: ignore[operator]


def test_missing_attributes_are_named() -> None:
    _, value, headers = encode(new_event(raised(), source="/p"))
    stripped = [(n, v) for n, v in headers if n not in ("ce_id", "ce_source")]
    with pytest.raises(InvalidEvent, match="id, source"):
        decode(stripped, value)
    with pytest.raises(InvalidEvent, match="ce_type"):
        decode([], value)


def test_naive_time_header_is_rejected() -> None:
    _, value, headers = encode(new_event(raised(), source="/p"))
    naive = [(n, b"2026-11-27T10:00:00" if n == "ce_time" else v) for n, v in headers]
    with pytest.raises(InvalidEvent, match="UTC offset"):
        decode(naive, value)


def test_payloads_are_frozen() -> None:
    payload = raised()
    with pytest.raises(Exception, match="frozen"):
        payload.alarmed_object_id = "other"  # type: ignore[misc]


def test_every_field_of_every_event_is_described() -> None:
    undocumented = [
        f"{name}.{field}"
        for name, model in REGISTRY.items()
        for field, info in model.model_fields.items()
        if not info.description
    ]
    assert undocumented == []


def test_every_event_type_is_past_tense_or_an_explicit_request() -> None:
    for name in REGISTRY:
        assert name.endswith(("ed", "Sent", "Requested")), name


def test_schema_export_writes_one_document_per_type(tmp_path) -> None:  # type: ignore[no-untyped-def]
    written = write_schemas(tmp_path)
    assert len(written) == len(REGISTRY)
    schema = json.loads((tmp_path / "TroubleTicketCreated.v1.json").read_text())
    assert schema["properties"]["type"] == {
        "const": "TroubleTicketCreated",
        "description": "CloudEvents type.",
    }
    data = schema["properties"]["data"]
    assert data["properties"]["status"]["$ref"].endswith("TroubleTicketStatus")
    assert "inProgress" in schema["$defs"]["TroubleTicketStatus"]["enum"]
    assert event_schema("ProbeAlarmRaised")["x-partition-key"] == "reduction_key"


def test_ticket_follows_tmf621_vocabulary() -> None:
    ticket = TroubleTicketCreated.model_json_schema()
    assert {"ticket_id", "severity", "priority", "status", "related_entity", "creation_date"} <= set(
        ticket["properties"]
    )
