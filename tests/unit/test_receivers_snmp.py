"""SNMP traps into alarms: which trap means what, on which resource, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from pyasn1.type import univ
from pysnmp.proto import rfc1902

from producers.receivers.common import AlarmAction, InputRejected, ResourceDirectory
from producers.receivers.snmp import (
    SNMP_TRAP_ADDRESS,
    SNMP_TRAP_OID,
    TRAP_MAP,
    UPS_ALARM_DESCR,
    Scope,
    Trap,
    interpret,
    plain,
)
from runtime.settings import PROJECT_ROOT

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
LINK_DOWN, LINK_UP, COLD_START = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.6.3.1.1.5.1"


@pytest.fixture(scope="module")
def directory() -> ResourceDirectory:
    network: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    return ResourceDirectory.from_network(network)


def trap(source: str, trap_oid: str, *varbinds: tuple[str, int | str]) -> Trap:
    return Trap(source, (("1.3.6.1.2.1.1.3.0", 1234), (SNMP_TRAP_OID, trap_oid), *varbinds))


def test_link_down_and_up_raise_and_clear_one_alarm_on_the_link_behind_the_if_index(
    directory: ResourceDirectory,
) -> None:
    down = interpret(trap("127.0.0.11", LINK_DOWN, ("1.3.6.1.2.1.2.2.1.1.2", 2)), directory, T0)
    up = interpret(trap("127.0.0.11", LINK_UP, ("1.3.6.1.2.1.2.2.1.1.2", 2)), directory, T0)
    assert (down.type, up.type) == ("ProbeAlarmRaised", "ProbeAlarmCleared")
    assert down.data.alarmed_object_id == "LINK-LON-MAN"  # type: ignore[attr-defined]
    assert down.data.reduction_key == up.data.reduction_key  # type: ignore[attr-defined]
    assert down.data.perceived_severity.value == "critical" and down.data.service_affecting  # type: ignore[attr-defined]
    assert down.data.source_system_id == "NODE-LON-CR1"  # type: ignore[attr-defined]
    assert down.data.alarm_details["trap"] == "linkDown"  # type: ignore[attr-defined]


def test_the_other_end_of_a_link_names_it_by_its_own_if_index(directory: ResourceDirectory) -> None:
    down = interpret(trap("127.0.0.13", LINK_DOWN, ("1.3.6.1.2.1.2.2.1.1.2", 2)), directory, T0)
    assert down.data.alarmed_object_id == "LINK-LON-MAN"  # type: ignore[attr-defined]


def test_snmp_trap_address_names_the_agent_behind_a_proxy(directory: ResourceDirectory) -> None:
    event = interpret(
        trap("192.0.2.1", LINK_DOWN, ("1.3.6.1.2.1.2.2.1.1.1", 1), (SNMP_TRAP_ADDRESS, "127.0.0.15")),
        directory,
        T0,
    )
    assert event.data.alarmed_object_id == "LINK-BHM-CR1-AG1"  # type: ignore[attr-defined]


def test_the_if_index_is_found_in_interface_table_varbinds_without_if_index(
    directory: ResourceDirectory,
) -> None:
    event = interpret(
        trap("127.0.0.11", LINK_DOWN, ("1.3.6.1.2.1.2.2.1.7.4", 2), ("1.3.6.1.2.1.2.2.1.8.4", 2)),
        directory,
        T0,
    )
    assert event.data.alarmed_object_id == "LINK-LON-LDS"  # type: ignore[attr-defined]
    assert event.data.alarm_details["ifAdminStatus"] == "down"  # type: ignore[attr-defined]
    assert event.data.specific_problem == "interface administratively down"  # type: ignore[attr-defined]


def test_node_traps_are_about_the_agent(directory: ResourceDirectory) -> None:
    event = interpret(trap("127.0.0.13", COLD_START), directory, T0)
    assert event.data.alarmed_object_id == "NODE-MAN-CR1"  # type: ignore[attr-defined]
    assert event.data.alarm_type.value == "processingErrorAlarm"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (trap("127.0.0.99", LINK_DOWN, ("1.3.6.1.2.1.2.2.1.1.1", 1)), "unknown agent"),
        (trap("127.0.0.11", LINK_DOWN, ("1.3.6.1.2.1.2.2.1.1.9", 9)), "unknown ifIndex"),
        (trap("127.0.0.11", LINK_DOWN), "no ifIndex"),
        (trap("127.0.0.11", "1.3.6.1.4.1.9.9.41.2.0.1"), "unmapped trap OID"),
        (Trap("127.0.0.11", (("1.3.6.1.2.1.1.3.0", 1),)), "no snmpTrapOID"),
    ],
)
def test_what_cannot_be_placed_is_rejected_with_its_reason(
    directory: ResourceDirectory, sent: Trap, reason: str
) -> None:
    with pytest.raises(InputRejected) as rejected:
        interpret(sent, directory, T0)
    assert rejected.value.reason == reason


def test_every_clear_in_the_table_clears_what_a_raise_of_the_same_table_raises() -> None:
    raises = {(m.scope, m.alarm) for m in TRAP_MAP.values() if m.action is AlarmAction.RAISE}
    for oid, mapping in TRAP_MAP.items():
        if mapping.action is AlarmAction.CLEAR:
            assert (mapping.scope, mapping.alarm) in raises, oid
    assert {m.scope for m in TRAP_MAP.values()} == {Scope.LINK, Scope.NODE}


@pytest.mark.parametrize(
    ("oid", "name", "action"),
    [
        ("1.3.6.1.2.1.131.0.1", "entStateOperEnabled", AlarmAction.CLEAR),
        ("1.3.6.1.2.1.131.0.2", "entStateOperDisabled", AlarmAction.RAISE),
        ("1.3.6.1.2.1.33.2.1", "upsTrapOnBattery", AlarmAction.RAISE),
        ("1.3.6.1.2.1.33.2.3", "upsTrapAlarmEntryAdded", AlarmAction.RAISE),
        ("1.3.6.1.2.1.33.2.4", "upsTrapAlarmEntryRemoved", AlarmAction.CLEAR),
    ],
)
def test_notification_oids_are_those_of_their_rfcs(oid: str, name: str, action: AlarmAction) -> None:
    # RFC 4268 (ENTITY-STATE-MIB) and RFC 1628 (UPS-MIB, whose traps have no .0 arc).
    assert (TRAP_MAP[oid].name, TRAP_MAP[oid].action) == (name, action)
    assert not any(o.startswith("1.3.6.1.2.1.33.2.0.") for o in TRAP_MAP)


def test_entity_oper_disabled_raises_and_enabled_clears(directory: ResourceDirectory) -> None:
    disabled = interpret(trap("127.0.0.11", "1.3.6.1.2.1.131.0.2"), directory, T0)
    enabled = interpret(trap("127.0.0.11", "1.3.6.1.2.1.131.0.1"), directory, T0)
    assert (disabled.type, enabled.type) == ("ProbeAlarmRaised", "ProbeAlarmCleared")
    assert disabled.data.reduction_key == enabled.data.reduction_key  # type: ignore[attr-defined]


UPS_ON_BATTERY, UPS_LOW_BATTERY = "1.3.6.1.2.1.33.1.6.3.2", "1.3.6.1.2.1.33.1.6.3.3"


def ups_entry(trap_oid: str, alarm_id: int, descr: str) -> Trap:
    return trap(
        "127.0.0.11",
        trap_oid,
        (f"1.3.6.1.2.1.33.1.6.2.1.1.{alarm_id}", alarm_id),
        (f"{UPS_ALARM_DESCR}.{alarm_id}", descr),
    )


def test_on_battery_is_cleared_when_its_ups_alarm_entry_is_removed(directory: ResourceDirectory) -> None:
    on_battery = interpret(trap("127.0.0.11", "1.3.6.1.2.1.33.2.1"), directory, T0)
    added = interpret(ups_entry("1.3.6.1.2.1.33.2.3", 7, UPS_ON_BATTERY), directory, T0)
    removed = interpret(ups_entry("1.3.6.1.2.1.33.2.4", 7, UPS_ON_BATTERY), directory, T0)
    assert (on_battery.type, added.type, removed.type) == (
        "ProbeAlarmRaised",
        "ProbeAlarmRaised",
        "ProbeAlarmCleared",
    )
    keys = {e.data.reduction_key for e in (on_battery, added, removed)}  # type: ignore[attr-defined]
    assert len(keys) == 1 and "commercialPowerFailure" in keys.pop()
    assert added.data.alarm_details["upsAlarm"] == "upsAlarmOnBattery"  # type: ignore[attr-defined]
    assert added.data.alarm_details["upsAlarmId"] == 7  # type: ignore[attr-defined]


def test_each_ups_alarm_entry_raises_and_clears_its_own_condition(directory: ResourceDirectory) -> None:
    low = interpret(ups_entry("1.3.6.1.2.1.33.2.3", 8, UPS_LOW_BATTERY), directory, T0)
    low_gone = interpret(ups_entry("1.3.6.1.2.1.33.2.4", 8, UPS_LOW_BATTERY), directory, T0)
    on_battery_gone = interpret(ups_entry("1.3.6.1.2.1.33.2.4", 7, UPS_ON_BATTERY), directory, T0)
    assert low.data.reduction_key == low_gone.data.reduction_key  # type: ignore[attr-defined]
    assert low.data.reduction_key != on_battery_gone.data.reduction_key  # type: ignore[attr-defined]
    assert low.data.probable_cause.value == "batteryDischarging"  # type: ignore[attr-defined]
    assert low.data.perceived_severity.value == "critical"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (trap("127.0.0.11", "1.3.6.1.2.1.33.2.3"), "no upsAlarmDescr"),
        (ups_entry("1.3.6.1.2.1.33.2.3", 9, "1.3.6.1.2.1.33.1.6.3.24"), "unmapped UPS alarm"),
    ],
)
def test_ups_alarm_entries_without_a_known_alarm_are_rejected(
    directory: ResourceDirectory, sent: Trap, reason: str
) -> None:
    with pytest.raises(InputRejected) as rejected:
        interpret(sent, directory, T0)
    assert rejected.value.reason == reason


def test_pysnmp_values_become_plain_python() -> None:
    assert plain(rfc1902.Integer32(7)) == 7
    assert plain(rfc1902.TimeTicks(1234)) == 1234
    assert plain(rfc1902.IpAddress("127.0.0.11")) == "127.0.0.11"
    assert plain(univ.ObjectIdentifier("1.3.6.1.6.3.1.1.5.3")) == LINK_DOWN
    assert plain(rfc1902.OctetString("Gi0/1")) == "Gi0/1"
