"""VES event listener: ONAP VES 7.x over HTTP, into alarms and KPI samples.

``POST /eventListener/v7/events`` takes ``{"event": {...}}`` and ``POST /eventListener/v7/eventBatch``
takes ``{"eventList": [...]}``. A body that is not valid VES 7 is refused whole with 400 and a VES
``requestError`` saying why; a valid one is answered 202 once its events are on the broker (503 if
the broker cannot be reached). Within a valid body, an event about a resource the network
description does not know is counted and logged as rejected, and the rest are published.

- ``fault``: raise, or clear when ``eventSeverity`` is NORMAL.
- ``thresholdCrossingAlert``: a quality-of-service alarm (probable cause thresholdCrossed), raised
  by SET and CONT, cleared by CLEAR or a NORMAL severity.
- ``measurement``: utilization, packet loss and latency, from ``nicPerformanceArray``,
  ``additionalMeasurements`` and ``additionalFields``, as KpiSampled.
- every other VES domain (heartbeat, notification, ...) is accepted and ignored.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal, Self

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from events import Envelope, EventPayload, new_event
from events.network import Indicator, KpiSampled, ProbeAlarmCleared, ProbeAlarmRaised
from events.x733 import (
    SERVICE_AFFECTING_SEVERITIES,
    AlarmType,
    PerceivedSeverity,
    ProbableCause,
    ResourceType,
)
from producers.receivers.common import (
    AlarmAction,
    AlarmSpec,
    InputRejected,
    PublisherLike,
    ReceiverCounters,
    Resource,
    ResourceDirectory,
    alarm_event,
    count_rejection,
    invalid_fields,
    stable_event_id,
)
from runtime import http
from runtime.settings import Settings

COMPONENT = "ves-receiver"
HANDLES = ()
PUBLISHES = (ProbeAlarmRaised, ProbeAlarmCleared, KpiSampled)
SOURCE = "/network/ves-receiver"
MAX_BODY = 4 * 1024 * 1024
log = structlog.get_logger(__name__)


# VES 7 event model (the subset this listener reads; other fields are accepted as they are) -----


class _Ves(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Domain(StrEnum):
    """VES 7 ``commonEventHeader.domain``."""

    FAULT = "fault"
    HEARTBEAT = "heartbeat"
    MEASUREMENT = "measurement"
    MOBILE_FLOW = "mobileFlow"
    NOTIFICATION = "notification"
    OTHER = "other"
    PERF3GPP = "perf3gpp"
    PNF_REGISTRATION = "pnfRegistration"
    SIP_SIGNALING = "sipSignaling"
    STATE_CHANGE = "stateChange"
    STND_DEFINED = "stndDefined"
    SYSLOG = "syslog"
    THRESHOLD_CROSSING_ALERT = "thresholdCrossingAlert"
    VOICE_QUALITY = "voiceQuality"


class CommonEventHeader(_Ves):
    """VES 7 ``commonEventHeader``: required fields checked, optional ones kept."""

    domain: Domain
    eventId: str = Field(min_length=1, max_length=256)
    eventName: str = Field(min_length=1, max_length=256)
    eventType: str | None = None
    sourceName: str = Field(min_length=1, max_length=256)
    sourceId: str | None = None
    reportingEntityName: str = Field(min_length=1, max_length=256)
    reportingEntityId: str | None = None
    priority: Literal["High", "Medium", "Normal", "Low"]
    sequence: int = Field(ge=0)
    startEpochMicrosec: int = Field(ge=0, le=10**17)
    lastEpochMicrosec: int = Field(ge=0, le=10**17)
    version: Literal["4.0", "4.0.1", "4.1"]
    vesEventListenerVersion: str = Field(pattern=r"^7\.\d+(\.\d+)?$")
    timeZoneOffset: str | None = None
    nfNamingCode: str | None = None
    nfcNamingCode: str | None = None
    nfVendorName: str | None = None


class EventSeverity(StrEnum):
    CRITICAL = "CRITICAL"
    MAJOR = "MAJOR"
    MINOR = "MINOR"
    WARNING = "WARNING"
    NORMAL = "NORMAL"


SEVERITY = {
    EventSeverity.CRITICAL: PerceivedSeverity.CRITICAL,
    EventSeverity.MAJOR: PerceivedSeverity.MAJOR,
    EventSeverity.MINOR: PerceivedSeverity.MINOR,
    EventSeverity.WARNING: PerceivedSeverity.WARNING,
}
"""VES eventSeverity → X.733 perceived severity; NORMAL is a clear."""


class FaultFields(_Ves):
    """VES 7 ``faultFields``."""

    faultFieldsVersion: Literal["4.0"]
    alarmCondition: str = Field(min_length=1, max_length=256)
    eventSeverity: EventSeverity
    eventSourceType: str = Field(min_length=1, max_length=256)
    specificProblem: str = Field(min_length=1, max_length=1024)
    vfStatus: Literal[
        "Active", "Idle", "Preparing to terminate", "Ready to terminate", "Requesting termination"
    ]
    alarmInterfaceA: str | None = None
    eventCategory: str | None = None
    alarmAdditionalInformation: dict[str, str] | None = None


class NicPerformance(_Ves):
    """One entry of VES 7 ``measurementFields.nicPerformanceArray`` (the counters read here)."""

    nicIdentifier: str = Field(min_length=1, max_length=256)
    valuesAreSuspect: Literal["true", "false"]
    receivedUtilization: float | None = Field(default=None, ge=0)
    transmittedUtilization: float | None = Field(default=None, ge=0)
    receivedPercentDiscard: float | None = Field(default=None, ge=0)
    transmittedPercentDiscard: float | None = Field(default=None, ge=0)
    receivedTotalPacketsDelta: float | None = Field(default=None, ge=0)
    receivedDiscardedPacketsDelta: float | None = Field(default=None, ge=0)
    transmittedTotalPacketsDelta: float | None = Field(default=None, ge=0)
    transmittedDiscardedPacketsDelta: float | None = Field(default=None, ge=0)
    receivedOctetsDelta: float | None = Field(default=None, ge=0)
    transmittedOctetsDelta: float | None = Field(default=None, ge=0)
    speed: float | None = Field(default=None, gt=0, description="Configured speed, Mbit/s.")


class NamedHashMap(_Ves):
    """VES 7 ``namedHashMap``: a named group of string values."""

    name: str = Field(min_length=1, max_length=256)
    hashMap: dict[str, str]


class MeasurementFields(_Ves):
    """VES 7 ``measurementFields``."""

    measurementFieldsVersion: Literal["4.0"]
    measurementInterval: float = Field(gt=0)
    nicPerformanceArray: list[NicPerformance] = Field(default_factory=list)
    additionalMeasurements: list[NamedHashMap] = Field(default_factory=list)
    additionalFields: dict[str, str] | None = None


class CounterParameter(_Ves):
    """One entry of VES 7 ``thresholdCrossingAlertFields.additionalParameters``."""

    criticality: Literal["CRIT", "MAJ"]
    hashMap: dict[str, str]
    thresholdCrossed: str = Field(min_length=1, max_length=256)


class ThresholdCrossingAlertFields(_Ves):
    """VES 7 ``thresholdCrossingAlertFields``."""

    thresholdCrossingFieldsVersion: Literal["4.0"]
    additionalParameters: list[CounterParameter]
    alertAction: Literal["SET", "CONT", "CLEAR"]
    alertDescription: str = Field(min_length=1, max_length=1024)
    alertType: Literal["CARD-ANOMALY", "ELEMENT-ANOMALY", "INTERFACE-ANOMALY", "SERVICE-ANOMALY"]
    collectionTimestamp: str
    eventSeverity: EventSeverity
    eventStartTimestamp: str
    interfaceName: str | None = None
    alertValue: str | None = None
    elementType: str | None = None
    networkService: str | None = None
    possibleRootCause: str | None = None


_DOMAIN_FIELDS = {
    Domain.FAULT: "faultFields",
    Domain.MEASUREMENT: "measurementFields",
    Domain.THRESHOLD_CROSSING_ALERT: "thresholdCrossingAlertFields",
}


class VesEvent(_Ves):
    """One VES 7 event: its header and the fields of its domain."""

    commonEventHeader: CommonEventHeader
    faultFields: FaultFields | None = None
    measurementFields: MeasurementFields | None = None
    thresholdCrossingAlertFields: ThresholdCrossingAlertFields | None = None

    @model_validator(mode="after")
    def _domain_fields_present(self) -> Self:
        needed = _DOMAIN_FIELDS.get(self.commonEventHeader.domain)
        if needed is not None and getattr(self, needed) is None:
            raise ValueError(f"domain {self.commonEventHeader.domain.value} needs {needed}")
        return self


class SingleEvent(BaseModel):
    """Body of ``POST /eventListener/v7/events``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event: VesEvent


class EventBatch(BaseModel):
    """Body of ``POST /eventListener/v7/eventBatch``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    eventList: list[VesEvent] = Field(min_length=1, max_length=10_000)


# Mapping ----------------------------------------------------------------------------------------

_CONDITIONS: tuple[tuple[str, AlarmType, ProbableCause], ...] = (
    ("lossofsignal", AlarmType.COMMUNICATIONS, ProbableCause.LOSS_OF_SIGNAL),
    ("lossofframe", AlarmType.COMMUNICATIONS, ProbableCause.LOSS_OF_FRAME),
    ("linkdown", AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE),
    ("linkfail", AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE),
    ("interfacedown", AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE),
    ("degraded", AlarmType.COMMUNICATIONS, ProbableCause.DEGRADED_SIGNAL),
    ("temperature", AlarmType.ENVIRONMENTAL, ProbableCause.HIGH_TEMPERATURE),
    ("overheat", AlarmType.ENVIRONMENTAL, ProbableCause.HIGH_TEMPERATURE),
    ("fan", AlarmType.EQUIPMENT, ProbableCause.COOLING_FAN_FAILURE),
    ("power", AlarmType.EQUIPMENT, ProbableCause.POWER_PROBLEM),
    ("memory", AlarmType.PROCESSING_ERROR, ProbableCause.OUT_OF_MEMORY),
    ("cpu", AlarmType.PROCESSING_ERROR, ProbableCause.PROCESSOR_PROBLEM),
    ("congestion", AlarmType.QUALITY_OF_SERVICE, ProbableCause.CONGESTION),
)
"""Fault classification by a word in ``alarmCondition`` (lower case, letters and digits only),
checked in order; the first hit wins."""

_CATEGORIES: Mapping[str, tuple[AlarmType, ProbableCause]] = {
    "link": (AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE),
    "interface": (AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE),
    "routing": (AlarmType.COMMUNICATIONS, ProbableCause.COMMUNICATIONS_SUBSYSTEM_FAILURE),
    "signaling": (AlarmType.COMMUNICATIONS, ProbableCause.COMMUNICATIONS_SUBSYSTEM_FAILURE),
    "equipment": (AlarmType.EQUIPMENT, ProbableCause.EQUIPMENT_MALFUNCTION),
    "hardware": (AlarmType.EQUIPMENT, ProbableCause.EQUIPMENT_MALFUNCTION),
    "environmental": (AlarmType.ENVIRONMENTAL, ProbableCause.HIGH_TEMPERATURE),
    "power": (AlarmType.EQUIPMENT, ProbableCause.POWER_PROBLEM),
    "software": (AlarmType.PROCESSING_ERROR, ProbableCause.SOFTWARE_ERROR),
    "processing": (AlarmType.PROCESSING_ERROR, ProbableCause.SOFTWARE_ERROR),
    "license": (AlarmType.PROCESSING_ERROR, ProbableCause.CONFIGURATION_OR_CUSTOMIZATION_ERROR),
    "configuration": (AlarmType.PROCESSING_ERROR, ProbableCause.CONFIGURATION_OR_CUSTOMIZATION_ERROR),
}
"""Fault classification by ``eventCategory`` when ``alarmCondition`` says nothing known."""

DEFAULT_FAULT_CLASS = (AlarmType.EQUIPMENT, ProbableCause.EQUIPMENT_MALFUNCTION)


def classify_fault(fault: FaultFields) -> tuple[AlarmType, ProbableCause]:
    """The X.733 alarm type and probable cause of a VES fault: a raise and its clear carry the
    same condition and category, so they land on the same alarm."""
    condition = re.sub(r"[^a-z0-9]", "", fault.alarmCondition.lower())
    for word, alarm_type, cause in _CONDITIONS:
        if word in condition:
            return alarm_type, cause
    category = (fault.eventCategory or "").strip().lower()
    return _CATEGORIES.get(category, DEFAULT_FAULT_CLASS)


def _epoch(microseconds: int) -> datetime:
    return datetime.fromtimestamp(microseconds / 1_000_000, UTC)


def resource_of(header: CommonEventHeader, interface: str | None, directory: ResourceDirectory) -> Resource:
    """What an event is about: ``sourceName`` as a node or link (id, name, hostname or management
    address), narrowed to the link that ``interface`` terminates when the source is a node."""
    source = directory.named(header.sourceName)
    if source is None:
        raise InputRejected("unknown sourceName", event_id=header.eventId)
    if interface and source.type is ResourceType.NODE:
        link = directory.link_at_interface(source, interface)
        if link is None:
            raise InputRejected("unknown interface", event_id=header.eventId, node=source.id)
        return link
    return source


def _header_details(header: CommonEventHeader) -> dict[str, Any]:
    return {
        "vesDomain": header.domain.value,
        "eventId": header.eventId,
        "eventName": header.eventName,
        "reportingEntityName": header.reportingEntityName,
        "priority": header.priority,
        "sequence": header.sequence,
    }


ALARM_INFORMATION_KEYS: tuple[str, ...] = (
    "alarmId",
    "eventTime",
    "eventType",
    "equipType",
    "vendor",
    "model",
    "hardwareVersion",
    "softwareVersion",
    "serialNumber",
    "rack",
    "shelf",
    "slot",
    "card",
    "port",
    "interfaceName",
    "ifIndex",
    "nfType",
    "probableCause",
)
"""The ``alarmAdditionalInformation`` keys copied into an alarm's details (names compared without
regard to case): equipment and its place, nothing else. The other keys are free text an EMS fills
as it likes, which may carry a subscriber's number or a customer's words, so they are dropped."""

_ALARM_INFORMATION = {key.lower(): key for key in ALARM_INFORMATION_KEYS}
_INFORMATION_VALUE_MAX = 256


def technical_information(information: Mapping[str, str]) -> dict[str, str]:
    """The technical part of a fault's ``alarmAdditionalInformation``: the keys of
    :data:`ALARM_INFORMATION_KEYS`, under their usual spelling, with values of reasonable length."""
    kept: dict[str, str] = {}
    for key, value in information.items():
        name = _ALARM_INFORMATION.get(key.lower())
        if name is not None and len(value) <= _INFORMATION_VALUE_MAX:
            kept[name] = value
    return kept


def fault_event(event: VesEvent, directory: ResourceDirectory) -> Envelope[EventPayload]:
    """The alarm raise or clear of a fault event."""
    header, fault = event.commonEventHeader, event.faultFields
    assert fault is not None
    resource = resource_of(header, fault.alarmInterfaceA, directory)
    alarm_type, cause = classify_fault(fault)
    clear = fault.eventSeverity is EventSeverity.NORMAL
    severity = SEVERITY.get(fault.eventSeverity, PerceivedSeverity.INDETERMINATE)
    spec = AlarmSpec(
        alarm_type,
        cause,
        severity,
        severity in SERVICE_AFFECTING_SEVERITIES and fault.vfStatus == "Active",
        fault.specificProblem,
    )
    details = _header_details(header) | {
        "alarmCondition": fault.alarmCondition,
        "eventSourceType": fault.eventSourceType,
        "vfStatus": fault.vfStatus,
    }
    if fault.alarmInterfaceA:
        details["alarmInterfaceA"] = fault.alarmInterfaceA
    technical = technical_information(fault.alarmAdditionalInformation or {})
    if technical:
        details["alarmAdditionalInformation"] = technical
    return _alarm(event, AlarmAction.CLEAR if clear else AlarmAction.RAISE, resource, spec, details)


def threshold_event(event: VesEvent, directory: ResourceDirectory) -> Envelope[EventPayload]:
    """The quality-of-service alarm raise or clear of a threshold crossing alert."""
    header, tca = event.commonEventHeader, event.thresholdCrossingAlertFields
    assert tca is not None
    resource = resource_of(header, tca.interfaceName, directory)
    clear = tca.alertAction == "CLEAR" or tca.eventSeverity is EventSeverity.NORMAL
    spec = AlarmSpec(
        AlarmType.QUALITY_OF_SERVICE,
        ProbableCause.THRESHOLD_CROSSED,
        SEVERITY.get(tca.eventSeverity, PerceivedSeverity.INDETERMINATE),
        False,
        tca.alertDescription,
    )
    details = _header_details(header) | {
        "alertAction": tca.alertAction,
        "alertType": tca.alertType,
        "thresholdsCrossed": [p.thresholdCrossed for p in tca.additionalParameters][:50],
    }
    details |= {k: v for k, v in (("alertValue", tca.alertValue), ("interfaceName", tca.interfaceName)) if v}
    return _alarm(event, AlarmAction.CLEAR if clear else AlarmAction.RAISE, resource, spec, details)


def _alarm(
    event: VesEvent, action: AlarmAction, resource: Resource, spec: AlarmSpec, details: dict[str, Any]
) -> Envelope[EventPayload]:
    header = event.commonEventHeader
    return alarm_event(
        action,
        resource,
        spec,
        at=_epoch(header.lastEpochMicrosec if action is AlarmAction.CLEAR else header.startEpochMicrosec),
        source=SOURCE,
        source_system_id=header.reportingEntityName,
        notification_id=f"ves:{header.eventId}",
        details=details,
        event_id=stable_event_id(
            "ves",
            header.sourceName,
            header.eventId,
            str(header.sequence),
            str(header.lastEpochMicrosec),
            action.value,
        ),
    )


_INDICATOR_KEYS: Mapping[str, Indicator] = {
    "utilization": Indicator.UTILIZATION,
    "utilisation": Indicator.UTILIZATION,
    "utilizationpercent": Indicator.UTILIZATION,
    "bandwidthutilization": Indicator.UTILIZATION,
    "packetloss": Indicator.PACKET_LOSS,
    "packetlosspercent": Indicator.PACKET_LOSS,
    "latency": Indicator.LATENCY,
    "latencyms": Indicator.LATENCY,
    "roundtriptime": Indicator.LATENCY,
    "rtt": Indicator.LATENCY,
}
"""``additionalMeasurements`` / ``additionalFields`` keys read as indicators (compared in lower
case without separators); their values are percent, percent and milliseconds."""


def _indicator(key: str) -> Indicator | None:
    return _INDICATOR_KEYS.get(re.sub(r"[^a-z0-9]", "", key.lower()))


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def nic_samples(nic: NicPerformance, interval: float) -> Iterator[tuple[Indicator, float]]:
    """Utilization and packet loss of one NIC: the reported percentages when present, else
    computed from the deltas of the interval (octets against ``speed``, discards against totals)."""
    utilization = [v for v in (nic.receivedUtilization, nic.transmittedUtilization) if v is not None]
    if utilization:
        yield Indicator.UTILIZATION, max(utilization)
    elif nic.speed:
        octets = max(nic.receivedOctetsDelta or 0.0, nic.transmittedOctetsDelta or 0.0)
        if nic.receivedOctetsDelta is not None or nic.transmittedOctetsDelta is not None:
            yield Indicator.UTILIZATION, 100.0 * octets * 8 / (nic.speed * 1_000_000 * interval)
    discard = [v for v in (nic.receivedPercentDiscard, nic.transmittedPercentDiscard) if v is not None]
    if discard:
        yield Indicator.PACKET_LOSS, max(discard)
    else:
        total = (nic.receivedTotalPacketsDelta or 0.0) + (nic.transmittedTotalPacketsDelta or 0.0)
        lost = (nic.receivedDiscardedPacketsDelta or 0.0) + (nic.transmittedDiscardedPacketsDelta or 0.0)
        if total > 0:
            yield Indicator.PACKET_LOSS, 100.0 * lost / total


def _group_resource(name: str, source: Resource, directory: ResourceDirectory) -> Resource:
    """What an ``additionalMeasurements`` group is about: the resource it names, else the link of
    the source node's interface it names, else the event's source."""
    if not name:
        return source
    named = directory.named(name)
    if named is None and source.type is ResourceType.NODE:
        named = directory.link_at_interface(source, name)
    return named or source


def measurement_events(
    event: VesEvent, directory: ResourceDirectory, rejected: list[InputRejected]
) -> list[Envelope[EventPayload]]:
    """The KPI samples of a measurement event. A sample whose interface or value cannot be used is
    appended to ``rejected``, and the others are kept."""
    header, fields = event.commonEventHeader, event.measurementFields
    assert fields is not None
    source = resource_of(header, None, directory)
    samples: list[tuple[Resource, Indicator, float]] = []
    for nic in fields.nicPerformanceArray:
        if nic.valuesAreSuspect == "true":
            rejected.append(InputRejected("values suspect", event_id=header.eventId))
            continue
        try:
            link = resource_of(header, nic.nicIdentifier, directory)
        except InputRejected as exc:
            rejected.append(exc)
            continue
        samples += [(link, i, v) for i, v in nic_samples(nic, fields.measurementInterval)]
    groups = [(group.name, group.hashMap) for group in fields.additionalMeasurements]
    groups.append(("", fields.additionalFields or {}))
    for name, values in groups:
        resource = _group_resource(name, source, directory)
        for key, text in values.items():
            indicator = _indicator(key)
            if indicator is None:
                continue
            value = _number(text)
            if value is None:
                rejected.append(InputRejected("not a number", event_id=header.eventId, key=key[:64]))
                continue
            samples.append((resource, indicator, value))
    at = _epoch(header.lastEpochMicrosec)
    events: list[Envelope[EventPayload]] = []
    for position, (resource, indicator, value) in enumerate(samples):
        if not 0 <= value <= 1e9:
            rejected.append(InputRejected("value out of range", event_id=header.eventId))
            continue
        payload = KpiSampled(
            resource_id=resource.id,
            resource_type=resource.type,
            indicator=indicator,
            value=round(value, 3),
            measured_at=at,
            source_system_id=header.reportingEntityName[:128],
        )
        event_id = stable_event_id(
            "ves",
            header.sourceName,
            header.eventId,
            str(header.sequence),
            str(header.lastEpochMicrosec),
            str(position),
        )
        events.append(new_event(payload, source=SOURCE, subject=resource.id, time=at, event_id=event_id))
    return events


def events_of(
    event: VesEvent, directory: ResourceDirectory
) -> tuple[list[Envelope[EventPayload]], list[InputRejected]]:
    """What one VES event becomes: the events to publish, and what was rejected on the way (an
    event of an unmapped domain gives neither)."""
    rejected: list[InputRejected] = []
    domain = event.commonEventHeader.domain
    try:
        if domain is Domain.FAULT:
            return [fault_event(event, directory)], rejected
        if domain is Domain.THRESHOLD_CROSSING_ALERT:
            return [threshold_event(event, directory)], rejected
        if domain is Domain.MEASUREMENT:
            return measurement_events(event, directory, rejected), rejected
    except InputRejected as exc:
        rejected.append(exc)
    return [], rejected


# HTTP -------------------------------------------------------------------------------------------


def request_error(status: int, message_id: str, text: str, *variables: str) -> JSONResponse:
    """A VES ``requestError`` response (``SVC...`` service or ``POL...`` policy exception)."""
    kind = "policyException" if message_id.startswith("POL") else "serviceException"
    return JSONResponse(
        {"requestError": {kind: {"messageId": message_id, "text": text, "variables": list(variables)}}},
        status_code=status,
    )


def _validation_reason(exc: ValidationError) -> str:
    """Where and why a body is not VES, without echoing the values it holds."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


class _BadRequest(InputRejected):
    """A body refused whole: ``status`` and ``detail`` go back to the sender."""

    def __init__(self, status: int, reason: str, detail: str, **context: Any):
        super().__init__(reason, **context)
        self.status = status
        self.detail = detail


def _too_large() -> _BadRequest:
    return _BadRequest(413, "body too large", f"body larger than {MAX_BODY // 1024 // 1024} MiB")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """A request's body, refused (413) without reading it when its ``Content-Length`` says it is
    larger than ``limit``, and read no further than ``limit`` when it does not say (chunked) or
    says less than it sends; a ``Content-Length`` that is not a number is refused (400)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        size = declared.strip()
        if not (size.isascii() and size.isdigit()):
            raise _BadRequest(400, "bad content-length", "Content-Length is not a number of bytes")
        if len(size) > 18 or int(size) > limit:
            raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large()
    return bytes(body)


class VesListener:
    """Serves the VES 7 event listener on ``host:port`` (port 0 picks a free port)."""

    kind = "ves"

    def __init__(
        self,
        publisher: PublisherLike,
        directory: ResourceDirectory,
        *,
        host: str = "127.0.0.1",
        port: int = 8081,
    ):
        self.publisher = publisher
        self.directory = directory
        self.host = host
        self.port = port
        self.counters = ReceiverCounters()
        self.app = self.create_app()
        self._sock: socket.socket | None = None
        self._bound: tuple[str, int] | None = None

    @property
    def bound(self) -> str | None:
        """``http://host:port`` once listening."""
        if self._bound is None:
            return None
        host, port = self._bound
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def create_app(self) -> FastAPI:
        """The FastAPI application of the listener (its own, apart from the dashboard's)."""
        app = FastAPI(title="ossbss VES event listener", version="7.2", docs_url=None, redoc_url=None)

        @app.post("/eventListener/v7/events", status_code=202)
        async def post_event(request: Request) -> Response:
            return await self.receive(request, SingleEvent)

        @app.post("/eventListener/v7/eventBatch", status_code=202)
        async def post_batch(request: Request) -> Response:
            return await self.receive(request, EventBatch)

        @app.get("/eventListener/v7/status")
        async def status() -> dict[str, Any]:
            return self.counters.snapshot()

        return app

    async def receive(self, request: Request, model: type[SingleEvent] | type[EventBatch]) -> Response:
        """Read a request's body, no further than :data:`MAX_BODY`, and :meth:`accept` it."""
        try:
            body = await read_body(request)
        except _BadRequest as bad:
            return self._refuse(bad, None)
        return await self.accept(body, model)

    def _refuse(self, bad: _BadRequest, body: bytes | None) -> Response:
        """Count and log a body refused whole, and answer with its VES ``requestError``."""
        self.counters.received += 1
        count_rejection(self.counters, COMPONENT, bad.reason, body, **bad.context)
        return request_error(bad.status, "SVC0002", "Bad Parameter: %1", bad.detail)

    async def accept(self, body: bytes, model: type[SingleEvent] | type[EventBatch]) -> Response:
        """Validate a request body, publish what it means, and answer as VES does."""
        try:
            parsed = self._parse(body, model)
        except _BadRequest as bad:
            return self._refuse(bad, body)
        received = [parsed.event] if isinstance(parsed, SingleEvent) else parsed.eventList
        self.counters.received += len(received)
        publish: list[Envelope[EventPayload]] = []
        for event in received:
            try:
                events, rejected = events_of(event, self.directory)
            except Exception as exc:  # one malformed event must not fail the others, nor the listener
                events, rejected = [], [InputRejected("malformed event", error=type(exc).__name__)]
            for reason in rejected:
                count_rejection(self.counters, COMPONENT, reason.reason, **reason.context)
            if not events and not rejected:
                self.counters.ignored += 1
            publish += events
        if publish:
            try:
                await self.publisher.publish(*publish)
            except Exception as exc:
                log.warning(
                    "publish failed", receiver=COMPONENT, events=len(publish), error=type(exc).__name__
                )
                return request_error(
                    503, "SVC1000", "Service unavailable: %1", "the event bus cannot be reached"
                )
            self.counters.published += len(publish)
        return Response(status_code=202)

    @staticmethod
    def _parse(body: bytes, model: type[SingleEvent] | type[EventBatch]) -> SingleEvent | EventBatch:
        if len(body) > MAX_BODY:
            raise _too_large()
        try:
            return model.model_validate(json.loads(body))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(400, "not JSON", f"body is not JSON: {exc}") from None
        except ValidationError as exc:
            raise _BadRequest(400, "not VES 7", _validation_reason(exc), fields=invalid_fields(exc)) from None

    async def start(self) -> str:
        """Bind the listening socket; returns :attr:`bound`."""
        if self._sock is not None and self.bound is not None:
            return self.bound
        sock = http.listen(self.host, self._bound[1] if self._bound else self.port, "VES")
        self._sock = sock
        self._bound = sock.getsockname()[:2]
        log.info("ves event listener listening", address=self.bound)
        return self.bound or ""

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        assert self._sock is not None
        try:
            await http.serve(self.app, self._sock)
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening (the bound port is kept for a restart)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def from_settings(settings: Settings, publisher: PublisherLike, network: Mapping[str, Any]) -> VesListener:
    """The listener ``settings`` describe (``receiver_host``, ``ves_port``)."""
    return VesListener(
        publisher,
        ResourceDirectory.from_network(network),
        host=settings.receiver_host,
        port=settings.ves_port,
    )
