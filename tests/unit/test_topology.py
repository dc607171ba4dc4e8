"""topology.yaml: validation against the catalog, runtime guards, and agreement with the code."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from events import REGISTRY, new_event
from events.oss import AlarmRaised
from ossbss.app import COMPONENT_MODULES
from runtime.settings import PROJECT_ROOT
from runtime.topology import Topology, TopologyError, TopologyViolation

TOPOLOGY_FILE = PROJECT_ROOT / "topology.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(TOPOLOGY_FILE.read_text())
    return copy.deepcopy(data)


def test_the_project_topology_is_valid() -> None:
    topology = Topology.load(TOPOLOGY_FILE)
    assert topology.problems() == []


def test_unknown_event_type_is_rejected(raw: dict[str, Any]) -> None:
    raw["topics"]["oss.alarms"]["event_types"].append("AlarmExploded")
    with pytest.raises(TopologyError, match="unknown event type 'AlarmExploded'"):
        Topology.from_dict(raw)


def test_consumer_of_an_undeclared_topic_is_rejected(raw: dict[str, Any]) -> None:
    raw["components"]["bss-care"]["consumes"].append("oss.secret-stuff")
    with pytest.raises(TopologyError, match="consumes undeclared topic oss.secret-stuff"):
        Topology.from_dict(raw)


def test_domain_producing_to_a_topic_it_does_not_own_is_rejected(raw: dict[str, Any]) -> None:
    raw["components"]["bss-care"]["produces"].append("oss.trouble-tickets")
    with pytest.raises(TopologyError, match="domain bss produces to oss.trouble-tickets, owned by oss"):
        Topology.from_dict(raw)


def test_every_problem_is_reported_at_once(raw: dict[str, Any]) -> None:
    raw["topics"]["oss.alarms"]["event_types"].append("Nope")
    raw["components"]["oss-fault"]["produces"].append("bss.notifications")
    with pytest.raises(TopologyError) as info:
        Topology.from_dict(raw)
    assert len(info.value.problems) == 2


def test_check_command_fails_with_a_clear_message(
    tmp_path: Path, raw: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    from ossbss.cli import main

    raw["components"]["bss-care"]["produces"].append("oss.alarms")
    bad = tmp_path / "topology.yaml"
    bad.write_text(yaml.safe_dump(raw))
    assert main(["topology", "check", "--file", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "component bss-care: domain bss produces to oss.alarms, owned by oss" in err
    assert main(["topology", "check"]) == 0


def test_runtime_guards_refuse_undeclared_publish_and_subscribe() -> None:
    topology = Topology.load(TOPOLOGY_FILE)
    topology.check_publish("oss-fault", "oss.alarms", "AlarmRaised")
    with pytest.raises(TopologyViolation):
        topology.check_publish("bss-care", "oss.alarms", "AlarmRaised")
    with pytest.raises(TopologyViolation):
        topology.check_publish("oss-fault", "oss.alarms", "TroubleTicketCreated")
    with pytest.raises(TopologyViolation):
        topology.check_subscribe("bss-care", ["network.alarms"])
    with pytest.raises(TopologyViolation):
        topology.component("rogue")


def test_publisher_refuses_what_the_component_may_not_publish() -> None:
    from runtime.bus import Bus

    bus = Bus("127.0.0.1:1", Topology.load(TOPOLOGY_FILE))  # never started: routing only
    event = new_event(
        AlarmRaised.model_validate(
            {
                "alarm_id": "A",
                "reduction_key": "k",
                "alarmed_object_id": "L",
                "alarmed_object_type": "link",
                "alarm_type": "communicationsAlarm",
                "probable_cause": "lossOfSignal",
                "perceived_severity": "major",
                "alarm_raised_time": "2026-11-27T10:00:00Z",
                "service_affecting": True,
                "source_system_id": "p",
            }
        ),
        source="/t",
    )
    assert bus.publisher("oss-fault").route(event) == "oss.alarms"
    with pytest.raises(TopologyViolation):
        bus.publisher("bss-care").route(event)


def test_code_and_topology_agree() -> None:
    """Each component in the code consumes exactly the types its topics carry, publishes only to
    declared topics, and the file declares no component the code lacks."""
    topology = Topology.load(TOPOLOGY_FILE)
    in_code = {m.COMPONENT: m for m in COMPONENT_MODULES}
    assert set(in_code) == set(topology.components)
    for name, module in in_code.items():
        spec = topology.components[name]
        consumed = {t for topic in spec.consumes for t in topology.topics[topic].event_types}
        handled = {model.event_type for model in module.HANDLES}
        assert handled == consumed, name
        published = {model.event_type for model in module.PUBLISHES}
        declared = {t for topic in spec.produces for t in topology.topics[topic].event_types}
        assert published == declared, name
    carried = {t for topic in topology.topics.values() for t in topic.event_types if t != "*"}
    assert carried == set(REGISTRY)
