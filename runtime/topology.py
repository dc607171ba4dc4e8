"""``topology.yaml``: loading, validation against the event catalog, runtime guards, and
idempotent creation of the declared topics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from events import REGISTRY

ANY_TYPE = "*"


class TopologyError(ValueError):
    """The topology file is invalid; ``problems`` lists every problem, one line each."""

    def __init__(self, problems: list[str], path: Path | None = None):
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(problems))


class TopologyViolation(PermissionError):
    """Code tried to publish or subscribe outside what ``topology.yaml`` declares."""


class TopicSpec(BaseModel):
    """One topic of the bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    owner: str
    partitions: int = Field(ge=1, le=1024)
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int | None = Field(default=None, ge=-1)
    key: str
    event_types: tuple[str, ...] = Field(min_length=1)

    def kafka_config(self) -> dict[str, str]:
        """Topic-level Kafka configuration."""
        config: dict[str, str] = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None and self.cleanup_policy == "delete":
            config["retention.ms"] = str(self.retention_ms)
        return config


class ComponentSpec(BaseModel):
    """A producer and/or consumer group; its consumer group id is its name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str
    description: str = ""
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    dead_letter: str | None = None


class _TopologyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domains: dict[str, str]
    topics: dict[str, TopicSpec]
    components: dict[str, ComponentSpec]


@dataclass(frozen=True)
class Topology:
    """The validated declaration, with the guards the runtime calls."""

    domains: dict[str, str]
    topics: dict[str, TopicSpec]
    components: dict[str, ComponentSpec]
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Topology:
        """Read and validate ``path``; raise :class:`TopologyError` listing every problem."""
        try:
            raw = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise TopologyError([f"cannot read: {exc.strerror}"], path) from None
        except yaml.YAMLError as exc:
            raise TopologyError([f"not valid YAML: {exc}"], path) from None
        return cls.from_dict(raw, path)

    @classmethod
    def from_dict(cls, raw: Any, path: Path | None = None) -> Topology:
        """Validate an already-parsed declaration."""
        try:
            parsed = _TopologyFile.model_validate(raw)
        except ValidationError as exc:
            problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
            raise TopologyError(problems, path) from None
        topology = cls(parsed.domains, parsed.topics, parsed.components, path)
        problems = topology.problems()
        if problems:
            raise TopologyError(problems, path)
        return topology

    def problems(self) -> list[str]:
        """Every inconsistency between the declaration and the event catalog."""
        problems: list[str] = []
        dead_letters = {c.dead_letter for c in self.components.values() if c.dead_letter}
        for name, topic in self.topics.items():
            if topic.owner not in self.domains:
                problems.append(f"topic {name}: owner {topic.owner!r} is not a declared domain")
            for event_type in topic.event_types:
                if event_type == ANY_TYPE:
                    if name not in dead_letters:
                        problems.append(f"topic {name}: '*' is allowed on dead-letter topics only")
                elif event_type not in REGISTRY:
                    problems.append(f"topic {name}: unknown event type {event_type!r}")
                elif REGISTRY[event_type].key_field != topic.key:
                    problems.append(
                        f"topic {name}: {event_type} is keyed by "
                        f"{REGISTRY[event_type].key_field!r}, the topic by {topic.key!r}"
                    )
        for name, comp in self.components.items():
            if comp.domain not in self.domains:
                problems.append(f"component {name}: domain {comp.domain!r} is not declared")
            for topic_name in comp.produces:
                produced = self.topics.get(topic_name)
                if produced is None:
                    problems.append(f"component {name}: produces to undeclared topic {topic_name}")
                elif produced.owner != comp.domain:
                    problems.append(
                        f"component {name}: domain {comp.domain} produces to {topic_name}, "
                        f"owned by {produced.owner}"
                    )
            for topic_name in comp.consumes:
                if topic_name not in self.topics:
                    problems.append(f"component {name}: consumes undeclared topic {topic_name}")
            if comp.consumes and comp.dead_letter is None:
                problems.append(f"component {name}: consumes but declares no dead_letter topic")
            if comp.dead_letter is not None:
                dlq: TopicSpec | None = self.topics.get(comp.dead_letter)
                if dlq is None:
                    problems.append(f"component {name}: undeclared dead_letter {comp.dead_letter}")
                elif dlq.owner != comp.domain:
                    problems.append(
                        f"component {name}: dead_letter {comp.dead_letter} is owned by "
                        f"{dlq.owner}, not {comp.domain}"
                    )
        return problems

    # Runtime guards ---------------------------------------------------------------------------

    def component(self, name: str) -> ComponentSpec:
        """The declared component ``name``; TopologyViolation when there is none."""
        try:
            return self.components[name]
        except KeyError:
            raise TopologyViolation(f"component {name!r} is not declared in topology.yaml") from None

    def check_publish(self, component: str, topic: str, event_type: str) -> None:
        """Refuse a publish that topology.yaml does not declare."""
        comp = self.component(component)
        if topic not in comp.produces and topic != comp.dead_letter:
            raise TopologyViolation(f"{component} may not publish to {topic}")
        allowed = self.topics[topic].event_types
        if ANY_TYPE not in allowed and event_type not in allowed:
            raise TopologyViolation(f"{topic} does not carry {event_type} (declared: {allowed})")

    def check_subscribe(self, component: str, topics: Iterable[str]) -> None:
        """Refuse a subscription that topology.yaml does not declare."""
        comp = self.component(component)
        undeclared = [t for t in topics if t not in comp.consumes]
        if undeclared:
            raise TopologyViolation(f"{component} may not consume {', '.join(undeclared)}")

    def topic_for(self, component: str, event_type: str) -> str:
        """The one topic ``component`` publishes ``event_type`` to."""
        comp = self.component(component)
        matches = [t for t in comp.produces if event_type in self.topics[t].event_types]
        if len(matches) != 1:
            raise TopologyViolation(
                f"{component} has {len(matches)} declared topics for {event_type}, needs exactly 1"
            )
        return matches[0]


async def apply(topology: Topology, bootstrap_servers: str) -> tuple[list[str], list[str]]:
    """Create the declared topics that are missing. Returns ``(created, already_present)``."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="ossbss-topology")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topology.topics if name not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=topology.topics[name].partitions,
                        replication_factor=1,
                        topic_configs=topology.topics[name].kafka_config(),
                    )
                    for name in missing
                ]
            )
        return missing, sorted(set(topology.topics) & existing)
    finally:
        await admin.close()
