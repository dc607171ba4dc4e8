"""The receivers' shared pieces: finding resources in the network description, the alarm events
they build, their counters, the outlet that retries while the broker is away, and the entry point."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from events import Envelope, EventPayload
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType
from producers import receivers
from producers.receivers.common import (
    AlarmAction,
    AlarmSpec,
    InputRejected,
    Outlet,
    ReceiverCounters,
    Resource,
    ResourceDirectory,
    alarm_event,
    fingerprint,
)
from runtime.settings import PROJECT_ROOT, Settings

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def network() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    return loaded


def test_the_demo_network_resolves_nodes_by_every_name_and_links_by_their_interfaces(
    network: dict[str, Any],
) -> None:
    directory = ResourceDirectory.from_network(network)
    lon = Resource("NODE-LON-CR1", ResourceType.NODE)
    assert directory.named("NODE-LON-CR1") == lon
    assert directory.named("london core router 1") == lon
    assert directory.named("LON-CR1") == lon  # hostname, any case
    assert directory.node_at("127.0.0.11") == lon
    assert directory.node_at("::ffff:127.0.0.11") == lon
    assert directory.named("127.0.0.11") == lon
    assert directory.named("LON-MAN backbone") == Resource("LINK-LON-MAN", ResourceType.LINK)
    assert directory.link_at_if_index(lon, 2) == Resource("LINK-LON-MAN", ResourceType.LINK)
    assert directory.link_at_interface(lon, "gigabitethernet0/3") == Resource(
        "LINK-BHM-LON", ResourceType.LINK
    )
    assert directory.link_at_interface(lon, "4") == Resource("LINK-LON-LDS", ResourceType.LINK)
    assert directory.link_at_if_index(lon, 9) is None
    assert directory.node_at("127.0.0.99") is None and directory.named("nobody") is None


def test_every_demo_node_has_an_address_and_every_link_end_an_interface(network: dict[str, Any]) -> None:
    directory = ResourceDirectory.from_network(network)
    nodes = [n for s in network["sites"] for n in s["nodes"]]
    assert len({n["mgmt_address"] for n in nodes}) == len(nodes)
    for link in network["links"]:
        for end in ("a", "z"):
            node = Resource(link[f"{end}_end"], ResourceType.NODE)
            assert directory.link_at_if_index(node, link[f"{end}_if_index"]) == Resource(
                link["id"], ResourceType.LINK
            )
            assert directory.link_at_interface(node, link[f"{end}_if_name"]) == Resource(
                link["id"], ResourceType.LINK
            )


def _network(**node: Any) -> dict[str, Any]:
    return {
        "sites": [{"id": "S", "nodes": [{"id": "N1", "mgmt_address": "10.0.0.1"}, {"id": "N2", **node}]}],
        "links": [],
    }


@pytest.mark.parametrize(
    ("node", "problem"),
    [
        ({"mgmt_address": "10.0.0.1"}, "address of two nodes"),
        ({"mgmt_address": "not-an-address"}, "not an IP address"),
        ({"hostname": "N1"}, "names both"),
    ],
)
def test_an_inconsistent_network_description_is_refused_with_the_entry_named(
    node: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        ResourceDirectory.from_network(_network(**node))


def test_two_links_on_one_interface_are_refused() -> None:
    network = _network()
    network["links"] = [
        {"id": f"L{i}", "a_end": "N1", "z_end": "N2", "a_if_index": 1, "z_if_index": i} for i in (1, 2)
    ]
    with pytest.raises(ValueError, match="one interface for L1 and L2"):
        ResourceDirectory.from_network(network)


def test_a_raise_and_its_clear_share_the_reduction_key() -> None:
    spec = AlarmSpec(AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE, PerceivedSeverity.CRITICAL, True)
    link = Resource("LINK-A", ResourceType.LINK)
    raised = alarm_event(AlarmAction.RAISE, link, spec, at=T0, source="/t", source_system_id="n")
    cleared = alarm_event(AlarmAction.CLEAR, link, spec, at=T0, source="/t", source_system_id="n")
    assert (raised.type, cleared.type) == ("ProbeAlarmRaised", "ProbeAlarmCleared")
    assert raised.data.reduction_key == cleared.data.reduction_key == "communicationsAlarm:linkFailure:LINK-A"  # type: ignore[attr-defined]


def test_an_alarm_that_would_not_be_a_valid_event_is_rejected_not_raised() -> None:
    spec = AlarmSpec(AlarmType.EQUIPMENT, ProbableCause.EQUIPMENT_MALFUNCTION, PerceivedSeverity.CLEARED)
    with pytest.raises(InputRejected, match="invalid alarm"):
        alarm_event(
            AlarmAction.RAISE,
            Resource("N", ResourceType.NODE),
            spec,
            at=T0,
            source="/t",
            source_system_id="n",
        )


def test_counters_and_fingerprints_say_what_happened_without_the_input() -> None:
    counters = ReceiverCounters(received=4, published=2, ignored=1)
    counters.reject("unknown agent")
    assert counters.line() == "received 4, published 2, ignored 1, rejected 1 (unknown agent 1)"
    assert counters.snapshot()["rejected"] == {"unknown agent": 1}
    print_ = fingerprint("call from +441234567890")
    assert print_["length"] == 23 and "+44" not in str(print_)


class _FlakyPublisher:
    def __init__(self, failures: int):
        self.failures = failures
        self.published: list[Envelope[EventPayload]] = []

    async def publish(self, *events: Envelope[EventPayload]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        self.published.extend(events)


async def test_the_outlet_retries_until_the_broker_takes_the_events_and_rejects_past_its_capacity() -> None:
    spec = AlarmSpec(AlarmType.EQUIPMENT, ProbableCause.EQUIPMENT_MALFUNCTION, PerceivedSeverity.MAJOR)
    events = [
        alarm_event(
            AlarmAction.RAISE,
            Resource(f"N{i}", ResourceType.NODE),
            spec,
            at=T0,
            source="/t",
            source_system_id="n",
        )
        for i in range(3)
    ]
    publisher = _FlakyPublisher(failures=2)
    counters = ReceiverCounters()
    outlet = Outlet(publisher, counters, "test", capacity=2)
    outlet.offer(events)
    assert counters.rejected == {"backlog full": 1}
    task = asyncio.create_task(outlet.run(max_backoff=0.01))
    try:
        await asyncio.wait_for(outlet.drained(), 5)
    finally:
        task.cancel()
    assert publisher.published == events[:2] and counters.published == 2


def test_the_entry_point_knows_every_kind_and_refuses_unknown_ones() -> None:
    assert set(receivers.RECEIVERS) == set(receivers.COMPONENTS) == {"snmp", "syslog", "ves", "cdr"}
    assert receivers.enabled_kinds(Settings(receivers=" snmp, ves ,snmp")) == ["snmp", "ves"]
    assert receivers.enabled_kinds(Settings(receivers="")) == []
    with pytest.raises(ValueError, match="unknown receiver telnet"):
        receivers.enabled_kinds(Settings(receivers="snmp,telnet"))


def test_each_receiver_module_declares_what_it_publishes() -> None:
    for module in receivers.COMPONENT_MODULES:
        assert module.COMPONENT in receivers.COMPONENTS.values()
        assert module.HANDLES == ()
        assert module.PUBLISHES


def test_the_shipped_rules_and_network_build_every_receiver(network: dict[str, Any], tmp_path: Path) -> None:
    settings = Settings(cdr_inbox=tmp_path / "inbox")
    built = [
        receivers.build(
            kind, settings=settings, publisher_factory=lambda _: _FlakyPublisher(0), network=network
        )
        for kind in receivers.RECEIVERS
    ]
    assert [r.kind for r in built] == list(receivers.RECEIVERS)
    assert all(r.bound is None for r in built)
