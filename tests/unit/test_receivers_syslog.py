"""Syslog: parsing RFC 5424 and RFC 3164, TCP framing (RFC 6587), the rules file, and what the
shipped rules make of real device messages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from producers.receivers.common import InputRejected, ResourceDirectory
from producers.receivers.syslog import (
    SyslogFormat,
    SyslogReceiver,
    SyslogRule,
    interpret,
    load_rules,
    parse,
    read_frame,
)
from runtime.settings import PROJECT_ROOT

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
RULES_FILE = PROJECT_ROOT / "demo" / "syslog-rules.yaml"


@pytest.fixture(scope="module")
def directory() -> ResourceDirectory:
    network: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    return ResourceDirectory.from_network(network)


@pytest.fixture(scope="module")
def rules() -> tuple[SyslogRule, ...]:
    return load_rules(RULES_FILE)


def test_rfc5424_header_structured_data_and_message() -> None:
    message = parse(
        b"<165>1 2003-08-24T05:14:15.000003-07:00 lon-cr1.example.net evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="App\\"lication"][meta seq="1"] \xef\xbb\xbfAn application event'
    )
    assert message.format is SyslogFormat.RFC5424
    assert (message.facility, message.severity) == (20, 5)
    assert message.timestamp == datetime(2003, 8, 24, 5, 14, 15, 3, tzinfo=timezone(timedelta(hours=-7)))
    assert (message.hostname, message.app_name, message.procid, message.msgid) == (
        "lon-cr1.example.net",
        "evntslog",
        None,
        "ID47",
    )
    assert message.structured_data == {
        "exampleSDID@32473": {"iut": "3", "eventSource": 'App"lication'},
        "meta": {"seq": "1"},
    }
    assert message.text == "An application event"


def test_rfc5424_with_every_field_nil() -> None:
    message = parse(b"<13>1 - - - - - -")
    assert message.timestamp is None and message.hostname is None and message.text == ""


def test_rfc3164_as_the_rfc_writes_it_and_as_cisco_sends_it() -> None:
    bsd = parse(b"<34>Oct 11 22:14:15 man-cr1 su[230]: 'su root' failed for lonvick on /dev/pts/8\n")
    assert bsd.format is SyslogFormat.RFC3164
    assert (bsd.facility, bsd.severity) == (4, 2)
    assert (bsd.hostname, bsd.app_name, bsd.procid) == ("man-cr1", "su", "230")
    assert bsd.timestamp is None  # no year, no zone: the receiver's clock dates it
    cisco = parse(
        b"<187>34: *Mar  1 00:01:23.456: %LINK-3-UPDOWN: Interface GigabitEthernet0/1, changed state to down"
    )
    assert cisco.hostname is None and cisco.app_name is None
    assert "%LINK-3-UPDOWN" in cisco.text


def test_a_message_without_priority_is_user_notice() -> None:
    message = parse(b"plain text from an old device")
    assert (message.facility, message.severity) == (1, 5)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"\r\n", "empty message"),
        (b"<999>1 - - - - - -", "bad priority"),
        (b"<abc>hello", "bad priority"),
        (b"<13>1 2024-01-15T10:23:45 host", "truncated RFC 5424 header"),
        (b"<13>1 yesterday host app - - - msg", "bad timestamp"),
        (b"<13>1 2024-01-15T10:23:45 host app - - - msg", "bad timestamp"),  # no zone
        (b'<13>1 - host app - - [id a="unterminated] msg', "bad structured data"),
        (b"<13>1 - host app - - [id a=b] msg", "bad structured data"),
        (b"<13>" + b"x" * 70_000, "message too long"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InputRejected) as rejected:
        parse(raw)
    assert rejected.value.reason == reason


async def _frames(data: bytes) -> list[bytes | str]:
    reader = asyncio.StreamReader(limit=1024)
    reader.feed_data(data)
    reader.feed_eof()
    frames: list[bytes | str] = []
    while True:
        try:
            frame = await read_frame(reader, limit=512)
        except InputRejected as rejected:
            frames.append(rejected.reason)
            return frames
        if frame is None:
            return frames
        frames.append(frame)


async def test_tcp_framing_by_octet_count_and_by_newline_on_one_stream() -> None:
    assert await _frames(b"11 <13>1 - - -\n<13>second\r\n\n6 <13>ab<14>last without newline") == [
        b"<13>1 - - -",
        b"<13>second\r\n",
        b"<13>ab",
        b"<14>last without newline",
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"12x <13>hello", "bad octet count"),
        (b"0 ", "bad octet count"),
        (b"600 <13>too long for the limit", "bad octet count"),
        (b"20 <13>short", "truncated frame"),
        (b"12345678 x", "bad octet count"),
    ],
)
async def test_tcp_framing_errors_end_the_stream_with_a_reason(data: bytes, reason: str) -> None:
    assert (await _frames(data))[-1] == reason


async def test_a_newline_frame_longer_than_the_limit_is_rejected() -> None:
    assert await _frames(b"<13>" + b"x" * 2000 + b"\n") == ["message too long"]


def test_the_shipped_rules_load_and_a_bad_rules_file_names_its_problems(tmp_path: Path) -> None:
    assert len(load_rules(RULES_FILE)) >= 6
    bad = tmp_path / "rules.yaml"
    bad.write_text(
        "rules:\n- name: x\n  match: '(unclosed'\n  action: raise\n  alarm_type: communicationsAlarm\n"
        "  probable_cause: linkFailure\n  severity: critical\n"
        "- name: y\n  match: 'ok'\n  action: raise\n  alarm_type: communicationsAlarm\n  probable_cause: linkFailure\n"
    )
    with pytest.raises(ValueError) as error:
        load_rules(bad)
    assert (
        "rules.0.match" in str(error.value)
        and "rules.1" in str(error.value)
        and "severity" in str(error.value)
    )
    with pytest.raises(ValueError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")


def _event(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory, raw: bytes, source: str = "10.9.9.9"
) -> Any:
    return interpret(parse(raw), source, rules, directory, T0)


def test_cisco_link_down_and_up_raise_and_clear_the_link_of_that_interface(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory
) -> None:
    down = _event(
        rules,
        directory,
        b"<187>Jan 15 10:23:45 lon-cr1 %LINK-3-UPDOWN: Interface GigabitEthernet0/2, changed state to down",
    )
    up = _event(
        rules,
        directory,
        b"<189>Jan 15 10:24:45 lon-cr1 %LINK-3-UPDOWN: Interface GigabitEthernet0/2, changed state to up",
    )
    assert (down.type, up.type) == ("ProbeAlarmRaised", "ProbeAlarmCleared")
    assert down.data.alarmed_object_id == "LINK-LON-MAN" and down.data.reduction_key == up.data.reduction_key
    assert down.data.specific_problem == "GigabitEthernet0/2 down"
    assert down.data.event_time == T0 and down.data.source_system_id == "NODE-LON-CR1"
    assert down.data.alarm_details["rule"] == "cisco-link-down"


def test_a_device_without_hostname_is_known_by_its_address(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory
) -> None:
    event = _event(
        rules,
        directory,
        b"<189>34: *Mar  1 00:01:23.456: %LINEPROTO-5-UPDOWN: Line protocol on Interface GigabitEthernet0/1, changed state to down",
        source="127.0.0.12",
    )
    assert event.data.alarmed_object_id == "LINK-LON-CR1-AG1"
    assert event.data.probable_cause.value == "communicationsSubsystemFailure"


def test_rfc5424_timestamps_date_the_alarm_and_fqdn_hostnames_resolve(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory
) -> None:
    event = _event(
        rules,
        directory,
        b"<187>1 2024-01-15T10:23:45.5Z man-cr1.core.example.net ios - - - "
        b"%LINK-5-CHANGED: Interface GigabitEthernet0/3, changed state to administratively down",
    )
    assert event.data.alarmed_object_id == "LINK-MAN-LDS"
    assert event.data.event_time == datetime(2024, 1, 15, 10, 23, 45, 500000, tzinfo=UTC)
    assert event.data.specific_problem == "GigabitEthernet0/3 administratively down"


def test_temperature_warnings_raise_and_normal_readings_clear_a_node_alarm(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory
) -> None:
    prefix = b"<185>Jan 15 10:23:45 bhm-cr1 %ENVIRONMENTAL-1-ALERT: Temp: Inlet 1, Location: R0, State: "
    critical = _event(rules, directory, prefix + b"Critical, Reading: 58 Celsius")
    warning = _event(rules, directory, prefix + b"Warning, Reading: 45 Celsius")
    normal = _event(rules, directory, prefix + b"Normal, Reading: 30 Celsius")
    assert [e.type for e in (critical, warning, normal)] == [
        "ProbeAlarmRaised",
        "ProbeAlarmRaised",
        "ProbeAlarmCleared",
    ]
    assert {e.data.reduction_key for e in (critical, warning, normal)} == {
        "environmentalAlarm:highTemperature:NODE-BHM-CR1"
    }
    assert (critical.data.perceived_severity.value, warning.data.perceived_severity.value) == (
        "major",
        "warning",
    )
    assert critical.data.specific_problem == "temperature critical at Inlet 1"


def test_junos_names_the_interface_by_if_index(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory
) -> None:
    event = _event(
        rules,
        directory,
        b"<28>Jan 15 10:23:45 lds-cr1 mib2d[1402]: SNMP_TRAP_LINK_DOWN: ifIndex 4, ifAdminStatus up(1), "
        b"ifOperStatus down(2), ifName ge-0/0/4",
    )
    assert event.data.alarmed_object_id == "LINK-LON-LDS"


def test_a_rule_can_name_the_resource_itself(directory: ResourceDirectory) -> None:
    rule = SyslogRule.model_validate(
        {
            "name": "named",
            "match": r"circuit (?P<resource>[A-Z0-9-]+) failed",
            "action": "raise",
            "alarm_type": "communicationsAlarm",
            "probable_cause": "lossOfSignal",
            "severity": "major",
        }
    )
    event = interpret(parse(b"<11>circuit LINK-MAN-LDS failed"), "192.0.2.1", (rule,), directory, T0)
    assert event is not None and event.data.alarmed_object_id == "LINK-MAN-LDS"  # type: ignore[attr-defined]
    assert event.data.source_system_id == "192.0.2.1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (
            b"<187>Jan 15 10:23:45 nobody %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
            "unknown host",
        ),
        (
            b"<187>Jan 15 10:23:45 lon-cr1 %LINK-3-UPDOWN: Interface Gi9/9, changed state to down",
            "unknown interface",
        ),
    ],
)
def test_a_matching_message_about_an_unknown_resource_is_rejected(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory, raw: bytes, reason: str
) -> None:
    with pytest.raises(InputRejected) as rejected:
        _event(rules, directory, raw)
    assert rejected.value.reason == reason


def test_messages_no_rule_matches_are_ignored_and_nothing_of_their_text_is_logged(
    rules: tuple[SyslogRule, ...], directory: ResourceDirectory
) -> None:
    class Nothing:
        async def publish(self, *events: Any) -> None:
            raise AssertionError("nothing to publish")

    receiver = SyslogReceiver(Nothing(), directory, rules)
    with capture_logs() as logs:
        receiver.handle(
            b"<14>Jan 15 10:23:45 lon-cr1 sip: call from +441234567890 to +442071234567", "127.0.0.11"
        )
        receiver.handle(b"<999>call from +441234567890", "127.0.0.11")
        receiver.handle(
            b"<14>Jan 15 10:23:45 nobody +441234567890 %LINK-3-UPDOWN: Interface Gi0/1, changed state to down",
            "10.0.0.1",
        )
    assert receiver.counters.snapshot() == {
        "received": 3,
        "published": 0,
        "ignored": 1,
        "rejected": {"bad priority": 1, "unknown host": 1},
    }
    assert logs and "441234567890" not in repr(logs)
    assert receiver.outlet._queue.empty()  # nothing queued for the bus either
