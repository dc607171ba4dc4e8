"""VES 7: what a body must hold, and what faults, threshold crossings and measurements become."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml

from events import Envelope, EventPayload
from producers.receivers.common import ResourceDirectory
from producers.receivers.ves import (
    MAX_BODY,
    EventBatch,
    FaultFields,
    NicPerformance,
    SingleEvent,
    VesEvent,
    VesListener,
    classify_fault,
    events_of,
    nic_samples,
)
from runtime.settings import PROJECT_ROOT

START, END = 1_764_244_800_000_000, 1_764_244_860_000_000  # 2025-11-27 12:00 and 12:01 UTC


@pytest.fixture(scope="module")
def directory() -> ResourceDirectory:
    network: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    return ResourceDirectory.from_network(network)


def header(domain: str, source: str = "lon-cr1", event_id: str = "ev-1", **fields: Any) -> dict[str, Any]:
    return {
        "domain": domain,
        "eventId": event_id,
        "eventName": f"{domain}_router_alarm",
        "sourceName": source,
        "reportingEntityName": "ems-north",
        "priority": "High",
        "sequence": 3,
        "startEpochMicrosec": START,
        "lastEpochMicrosec": END,
        "version": "4.1",
        "vesEventListenerVersion": "7.2.1",
        **fields,
    }


def fault(severity: str = "CRITICAL", **fields: Any) -> dict[str, Any]:
    return {
        "commonEventHeader": header("fault"),
        "faultFields": {
            "faultFieldsVersion": "4.0",
            "alarmCondition": "linkDown",
            "eventSeverity": severity,
            "eventSourceType": "router",
            "specificProblem": "loss of light on GigabitEthernet0/2",
            "vfStatus": "Active",
            "alarmInterfaceA": "GigabitEthernet0/2",
            **fields,
        },
    }


def tca(action: str = "SET", severity: str = "MAJOR") -> dict[str, Any]:
    return {
        "commonEventHeader": header("thresholdCrossingAlert", source="LINK-MAN-LDS", event_id="tca-1"),
        "thresholdCrossingAlertFields": {
            "thresholdCrossingFieldsVersion": "4.0",
            "additionalParameters": [
                {"criticality": "MAJ", "hashMap": {"latency": "62"}, "thresholdCrossed": "latency"}
            ],
            "alertAction": action,
            "alertDescription": "round-trip latency above 50 ms",
            "alertType": "INTERFACE-ANOMALY",
            "collectionTimestamp": "Thu, 27 Nov 2025 12:01:00 GMT",
            "eventSeverity": severity,
            "eventStartTimestamp": "Thu, 27 Nov 2025 12:00:00 GMT",
            "alertValue": "62",
        },
    }


def measurement(**fields: Any) -> dict[str, Any]:
    return {
        "commonEventHeader": header("measurement", source="man-cr1", event_id="meas-1"),
        "measurementFields": {"measurementFieldsVersion": "4.0", "measurementInterval": 60, **fields},
    }


def one(body: dict[str, Any], directory: ResourceDirectory) -> list[Envelope[EventPayload]]:
    events, rejected = events_of(VesEvent.model_validate(body), directory)
    assert rejected == []
    return events


def test_a_fault_raises_an_alarm_on_the_link_of_its_interface_and_normal_clears_it(
    directory: ResourceDirectory,
) -> None:
    [raised] = one(fault(), directory)
    [cleared] = one(fault("NORMAL"), directory)
    assert (raised.type, cleared.type) == ("ProbeAlarmRaised", "ProbeAlarmCleared")
    data: Any = raised.data
    assert data.alarmed_object_id == "LINK-LON-MAN"
    assert data.reduction_key == cleared.data.reduction_key == "communicationsAlarm:linkFailure:LINK-LON-MAN"  # type: ignore[attr-defined]
    assert data.perceived_severity.value == "critical" and data.service_affecting
    assert data.event_time.timestamp() * 1_000_000 == START
    assert cleared.data.event_time.timestamp() * 1_000_000 == END  # type: ignore[attr-defined]
    assert data.source_system_id == "ems-north" and data.alarm_details["alarmCondition"] == "linkDown"
    assert raised.id != cleared.id


def test_the_same_fault_sent_twice_is_the_same_event(directory: ResourceDirectory) -> None:
    assert one(fault(), directory)[0].id == one(fault(), directory)[0].id


def test_a_fault_on_an_idle_function_or_of_low_severity_is_not_service_affecting(
    directory: ResourceDirectory,
) -> None:
    assert not one(fault(vfStatus="Idle"), directory)[0].data.service_affecting  # type: ignore[attr-defined]
    assert not one(fault("MINOR"), directory)[0].data.service_affecting  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("condition", "category", "expected"),
    [
        ("linkDown", None, ("communicationsAlarm", "linkFailure")),
        ("LOSS_OF_SIGNAL", None, ("communicationsAlarm", "lossOfSignal")),
        ("chassisTemperatureHigh", None, ("environmentalAlarm", "highTemperature")),
        ("fanTrayFailure", None, ("equipmentAlarm", "coolingFanFailure")),
        ("vnfcRestart", "software", ("processingErrorAlarm", "softwareError")),
        ("bgpPeerDown", "routing", ("communicationsAlarm", "communicationsSubsystemFailure")),
        ("somethingOdd", None, ("equipmentAlarm", "equipmentMalfunction")),
    ],
)
def test_faults_are_classified_by_condition_then_category(
    condition: str, category: str | None, expected: tuple[str, str]
) -> None:
    fields = FaultFields.model_validate(
        {
            "faultFieldsVersion": "4.0",
            "alarmCondition": condition,
            "eventSeverity": "MAJOR",
            "eventSourceType": "x",
            "specificProblem": "x",
            "vfStatus": "Active",
            "eventCategory": category,
        }
    )
    alarm_type, cause = classify_fault(fields)
    assert (alarm_type.value, cause.value) == expected


def test_threshold_crossings_set_and_clear_a_quality_of_service_alarm(directory: ResourceDirectory) -> None:
    [raised] = one(tca(), directory)
    [again] = one(tca("CONT"), directory)
    [cleared] = one(tca("CLEAR", "NORMAL"), directory)
    assert [e.type for e in (raised, again, cleared)] == [
        "ProbeAlarmRaised",
        "ProbeAlarmRaised",
        "ProbeAlarmCleared",
    ]
    data: Any = raised.data
    assert data.reduction_key == "qualityOfServiceAlarm:thresholdCrossed:LINK-MAN-LDS"
    assert data.perceived_severity.value == "major" and not data.service_affecting
    assert data.alarm_details["thresholdsCrossed"] == ["latency"]


def test_measurements_become_kpi_samples_of_links(directory: ResourceDirectory) -> None:
    events = one(
        measurement(
            nicPerformanceArray=[
                {
                    "nicIdentifier": "GigabitEthernet0/3",
                    "valuesAreSuspect": "false",
                    "receivedUtilization": 35.5,
                    "transmittedUtilization": 71.25,
                    "receivedTotalPacketsDelta": 10000,
                    "receivedDiscardedPacketsDelta": 20,
                    "transmittedTotalPacketsDelta": 10000,
                    "transmittedDiscardedPacketsDelta": 0,
                }
            ],
            additionalMeasurements=[
                {"name": "LINK-LON-MAN", "hashMap": {"latency": "4.25", "jitter": "0.3"}},
                {"name": "GigabitEthernet0/1", "hashMap": {"packet-loss": "0.5"}},
            ],
            additionalFields={"rtt": "7"},
        ),
        directory,
    )
    samples = {(e.data.resource_id, e.data.indicator.value): e.data.value for e in events}  # type: ignore[attr-defined]
    assert samples == {
        ("LINK-MAN-LDS", "utilization"): 71.25,
        ("LINK-MAN-LDS", "packetLoss"): 0.1,
        ("LINK-LON-MAN", "latency"): 4.25,
        ("LINK-MAN-CR1-AG1", "packetLoss"): 0.5,
        ("NODE-MAN-CR1", "latency"): 7.0,
    }
    assert {e.data.measured_at.timestamp() * 1_000_000 for e in events} == {END}  # type: ignore[attr-defined]
    assert len({e.id for e in events}) == len(events)


def test_utilization_is_computed_from_octets_when_not_reported() -> None:
    nic = NicPerformance.model_validate(
        {
            "nicIdentifier": "x",
            "valuesAreSuspect": "false",
            "receivedOctetsDelta": 3_750_000_000,
            "speed": 1000,
        }
    )
    assert dict(nic_samples(nic, 60)) == {"utilization": 50.0}


def test_unusable_samples_are_rejected_and_the_rest_kept(directory: ResourceDirectory) -> None:
    events, rejected = events_of(
        VesEvent.model_validate(
            measurement(
                nicPerformanceArray=[
                    {"nicIdentifier": "eth7", "valuesAreSuspect": "false", "receivedUtilization": 10},
                    {
                        "nicIdentifier": "GigabitEthernet0/1",
                        "valuesAreSuspect": "true",
                        "receivedUtilization": 10,
                    },
                    {
                        "nicIdentifier": "GigabitEthernet0/2",
                        "valuesAreSuspect": "false",
                        "receivedUtilization": 10,
                    },
                ],
                additionalFields={"latency": "fast"},
            )
        ),
        directory,
    )
    assert sorted(r.reason for r in rejected) == ["not a number", "unknown interface", "values suspect"]
    assert [e.data.resource_id for e in events] == ["LINK-LON-MAN"]  # type: ignore[attr-defined]


def test_an_unknown_source_is_rejected_and_other_domains_are_ignored(directory: ResourceDirectory) -> None:
    body = fault()
    body["commonEventHeader"]["sourceName"] = "vnf-nobody-knows"
    events, rejected = events_of(VesEvent.model_validate(body), directory)
    assert events == [] and [r.reason for r in rejected] == ["unknown sourceName"]
    heartbeat = {
        "commonEventHeader": header("heartbeat"),
        "heartbeatFields": {"heartbeatFieldsVersion": "3.0"},
    }
    assert events_of(VesEvent.model_validate(heartbeat), directory) == ([], [])


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["event"]["commonEventHeader"].pop("sourceName"),
        lambda b: b["event"]["commonEventHeader"].update(vesEventListenerVersion="5.4.1"),
        lambda b: b["event"]["commonEventHeader"].update(domain="weather"),
        lambda b: b["event"]["faultFields"].update(eventSeverity="SEVERE"),
        lambda b: b["event"].pop("faultFields"),
        lambda b: b.update(extra=1),
    ],
)
def test_bodies_that_are_not_ves_7_are_invalid(mutate: Any) -> None:
    body = {"event": fault()}
    mutate(body)
    with pytest.raises(ValueError):
        SingleEvent.model_validate(body)


class _Recorder:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.events: list[Envelope[EventPayload]] = []

    async def publish(self, *events: Envelope[EventPayload]) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.events.extend(events)


async def test_the_listener_answers_202_400_and_503_as_ves_does(directory: ResourceDirectory) -> None:
    recorder = _Recorder()
    listener = VesListener(recorder, directory)
    accepted = await listener.accept(json.dumps({"eventList": [fault(), tca()]}).encode(), EventBatch)
    assert accepted.status_code == 202 and len(recorder.events) == 2
    bad = await listener.accept(b'{"event": {"commonEventHeader": {}}}', SingleEvent)
    assert bad.status_code == 400
    error = json.loads(bytes(bad.body))["requestError"]["serviceException"]
    assert error["messageId"] == "SVC0002" and "commonEventHeader" in error["variables"][0]
    assert (await listener.accept(b"not json", SingleEvent)).status_code == 400
    assert listener.counters.snapshot() == {
        "received": 4,
        "published": 2,
        "ignored": 0,
        "rejected": {"not JSON": 1, "not VES 7": 1},
    }
    down = VesListener(_Recorder(fail=True), directory)
    unavailable = await down.accept(json.dumps({"event": fault()}).encode(), SingleEvent)
    assert unavailable.status_code == 503 and down.counters.published == 0


def test_only_technical_additional_information_reaches_the_alarm(directory: ResourceDirectory) -> None:
    body = fault(
        alarmAdditionalInformation={
            "equipType": "router",
            "Vendor": "Acme",
            "slot": "3",
            "callingNumber": "+441632960001",
            "operatorNote": "Mrs Smith at 12 High St says the line is dead",
        }
    )
    [event] = one(body, directory)
    details = event.data.alarm_details  # type: ignore[attr-defined]
    assert details["alarmAdditionalInformation"] == {"equipType": "router", "vendor": "Acme", "slot": "3"}
    assert "+441632960001" not in event.data.model_dump_json()
    assert "Smith" not in event.data.model_dump_json()
    only_words = fault(alarmAdditionalInformation={"comment": "call Bob on 07700 900123"})
    [bare] = one(only_words, directory)
    assert "alarmAdditionalInformation" not in bare.data.alarm_details  # type: ignore[attr-defined]


class _Body:
    """A request body of ``chunks`` chunks of 1 MiB, counting how many the server took."""

    def __init__(self, chunks: int):
        self.chunks = chunks
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.taken += 1
            yield b" " * (1 << 20)


async def test_a_body_too_large_is_refused_without_being_read_whole(directory: ResourceDirectory) -> None:
    listener = VesListener(_Recorder(), directory)
    transport = httpx.ASGITransport(app=listener.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ves") as client:
        declared = _Body(64)
        refused = await client.post(
            "/eventListener/v7/events", content=declared, headers={"content-length": str(64 << 20)}
        )
        chunked = _Body(64)
        cut = await client.post("/eventListener/v7/eventBatch", content=chunked)
        bad = await client.post("/eventListener/v7/events", content=b"{}", headers={"content-length": "12ab"})
    assert refused.status_code == 413 and declared.taken == 0
    assert refused.json()["requestError"]["serviceException"]["messageId"] == "SVC0002"
    assert cut.status_code == 413 and chunked.taken <= MAX_BODY // (1 << 20) + 1
    assert bad.status_code == 400
    assert listener.counters.rejected == {"body too large": 2, "bad content-length": 1}
