"""What every protocol receiver shares: the directory that turns what a device calls itself into an
inventory resource, the X.733 alarm events they publish, their counters, and the outlet that
decouples a protocol's callbacks from the broker."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from events import Envelope, EventPayload, new_event
from events.network import ProbeAlarmCleared, ProbeAlarmRaised, reduction_key
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause, ResourceType

log = structlog.get_logger(__name__)

# Event ids derived from what a sender says identifies its notification (a VES eventId, a CDR's
# usage id): a notification sent twice becomes the same event, which idempotent consumers skip.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c8a0e-5a3b-4d8e-9a57-0c7e2b9d4f11")


class InputRejected(ValueError):
    """Input a receiver cannot turn into an event; ``reason`` is short, fixed text without any of
    the input's content, so it can be counted; ``context`` holds what may be logged beside it (ids,
    OIDs, addresses of network equipment: never message text)."""

    def __init__(self, reason: str, **context: Any):
        super().__init__(reason)
        self.reason = reason
        self.context = context


def fingerprint(raw: bytes | str) -> dict[str, Any]:
    """What a log line may say about rejected input that can hold personal data: its length and a
    short hash, enough to find it again at the sender, never its text."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    return {"length": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def stable_event_id(*parts: str) -> str:
    """An event id that is the same whenever the same parts identify the same notification."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join(parts)))


@dataclass
class ReceiverCounters:
    """What a receiver has done since it started: inputs received, events published, inputs
    deliberately not turned into events (``ignored``: no matching rule, a heartbeat, an
    unanswered call), and inputs rejected, by reason."""

    received: int = 0
    published: int = 0
    ignored: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def reject(self, reason: str) -> None:
        self.rejected[reason] += 1

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def snapshot(self) -> dict[str, Any]:
        """The counters as plain data (for an API or a test)."""
        return {
            "received": self.received,
            "published": self.published,
            "ignored": self.ignored,
            "rejected": dict(sorted(self.rejected.items())),
        }

    def line(self) -> str:
        """One status line: ``received 12, published 10, ignored 1, rejected 1 (unknown agent 1)``."""
        text = f"received {self.received}, published {self.published}, ignored {self.ignored}, "
        text += f"rejected {self.rejected_total}"
        if self.rejected:
            text += " (" + ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items())) + ")"
        return text


def count_rejection(
    counters: ReceiverCounters, receiver: str, reason: str, raw: bytes | str | None = None, **context: Any
) -> None:
    """Count a rejected input and log why, with the input's fingerprint instead of its text."""
    counters.reject(reason)
    log.warning(
        "input rejected",
        receiver=receiver,
        reason=reason,
        **(fingerprint(raw) if raw is not None else {}),
        **context,
    )


# The network description ------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """An inventory resource an event is about."""

    id: str
    type: ResourceType


@dataclass(frozen=True)
class _LinkEnd:
    link_id: str
    if_index: int | None
    if_name: str | None


def _key(name: str) -> str:
    return name.strip().casefold()


def _address(text: str) -> str | None:
    """``text`` as a canonical IP address (IPv4-mapped IPv6 as IPv4), or None if it is not one."""
    try:
        parsed = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return str(parsed)


class ResourceDirectory:
    """Finds the inventory resource a device means, from the network description
    (``demo/network.yaml``): nodes by id, name, ``hostname`` or ``mgmt_address``; links by id or
    name, or by the interface that terminates them on one of their end nodes (``a_if_index`` /
    ``a_if_name`` on the a-end, ``z_if_index`` / ``z_if_name`` on the z-end).

    Built once from the description the composition root read: the receivers do not query the
    inventory, which belongs to OSS.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, Resource] = {}
        self._by_address: dict[str, Resource] = {}
        self._ends: dict[str, list[_LinkEnd]] = {}

    @classmethod
    def from_network(cls, network: Mapping[str, Any]) -> ResourceDirectory:
        """Index a network description; ValueError names the first inconsistent entry."""
        directory = cls()
        try:
            for site in network.get("sites", []):
                for node in site.get("nodes", []):
                    directory._add_node(node)
            for link in network.get("links", []):
                directory._add_link(link)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"network description: malformed entry ({exc})") from None
        return directory

    def _name(self, name: Any, resource: Resource) -> None:
        if name is None:
            return
        key = _key(str(name))
        known = self._by_name.get(key)
        if known is not None and known != resource:
            raise ValueError(f"network description: {name!r} names both {known.id} and {resource.id}")
        self._by_name[key] = resource

    def _add_node(self, node: Mapping[str, Any]) -> None:
        resource = Resource(str(node["id"]), ResourceType.NODE)
        for name in (node["id"], node.get("name"), node.get("hostname")):
            self._name(name, resource)
        if node.get("mgmt_address") is not None:
            address = _address(str(node["mgmt_address"]))
            if address is None:
                raise ValueError(f"network description: {resource.id} mgmt_address is not an IP address")
            if address in self._by_address:
                raise ValueError(f"network description: {address} is the address of two nodes")
            self._by_address[address] = resource

    def _add_link(self, link: Mapping[str, Any]) -> None:
        resource = Resource(str(link["id"]), ResourceType.LINK)
        for name in (link["id"], link.get("name")):
            self._name(name, resource)
        for end in ("a", "z"):
            node = str(link[f"{end}_end"])
            if_index = link.get(f"{end}_if_index")
            if_name = link.get(f"{end}_if_name")
            port = _LinkEnd(
                resource.id,
                None if if_index is None else int(if_index),
                None if if_name is None else str(if_name),
            )
            for other in self._ends.get(node, []):
                if (port.if_index is not None and port.if_index == other.if_index) or (
                    port.if_name is not None
                    and other.if_name is not None
                    and _key(port.if_name) == _key(other.if_name)
                ):
                    raise ValueError(
                        f"network description: {node} has one interface for {other.link_id} and {resource.id}"
                    )
            self._ends.setdefault(node, []).append(port)

    def named(self, name: str) -> Resource | None:
        """The node or link whose id, name or hostname is ``name`` (any case), or the node whose
        management address it is."""
        found = self._by_name.get(_key(name))
        if found is None:
            address = _address(name)
            if address is not None:
                found = self._by_address.get(address)
        return found

    def node_named(self, name: str) -> Resource | None:
        """Like :meth:`named`, for nodes only."""
        found = self.named(name)
        return found if found is not None and found.type is ResourceType.NODE else None

    def node_at(self, address: str) -> Resource | None:
        """The node whose management address is ``address``."""
        canonical = _address(address)
        return None if canonical is None else self._by_address.get(canonical)

    def link_at_if_index(self, node: Resource, if_index: int) -> Resource | None:
        """The link that ``node``'s interface ``if_index`` terminates."""
        for end in self._ends.get(node.id, []):
            if end.if_index == if_index:
                return Resource(end.link_id, ResourceType.LINK)
        return None

    def link_at_interface(self, node: Resource, interface: str) -> Resource | None:
        """The link that ``node``'s interface terminates; ``interface`` is its name (any case) or
        its ifIndex in digits."""
        wanted = _key(interface)
        for end in self._ends.get(node.id, []):
            if end.if_name is not None and _key(end.if_name) == wanted:
                return Resource(end.link_id, ResourceType.LINK)
        if wanted.isdigit():
            return self.link_at_if_index(node, int(wanted))
        return None


# Alarm events -----------------------------------------------------------------------------------


class AlarmAction(StrEnum):
    """What a notification does to its alarm."""

    RAISE = "raise"
    CLEAR = "clear"


@dataclass(frozen=True)
class AlarmSpec:
    """The X.733 description of an alarm condition; ``severity`` and ``service_affecting`` matter
    for raises only."""

    alarm_type: AlarmType
    probable_cause: ProbableCause
    severity: PerceivedSeverity = PerceivedSeverity.INDETERMINATE
    service_affecting: bool = False
    specific_problem: str = ""


def alarm_event(
    action: AlarmAction,
    resource: Resource,
    spec: AlarmSpec,
    *,
    at: datetime,
    source: str,
    source_system_id: str,
    notification_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    event_id: str | None = None,
) -> Envelope[EventPayload]:
    """A ProbeAlarmRaised or ProbeAlarmCleared, as a receiver publishes it. Raises InputRejected
    when the result would not be a valid event (an id outside the catalog's pattern, say)."""
    common: dict[str, Any] = {
        "notification_id": (notification_id or str(uuid.uuid4()))[:128],
        "reduction_key": reduction_key(spec.alarm_type.value, spec.probable_cause.value, resource.id),
        "alarmed_object_id": resource.id,
        "alarmed_object_type": resource.type,
        "alarm_type": spec.alarm_type,
        "probable_cause": spec.probable_cause,
        "specific_problem": spec.specific_problem[:500],
        "event_time": at,
        "source_system_id": source_system_id[:128] or "unknown",
    }
    payload: EventPayload
    try:
        if action is AlarmAction.RAISE:
            payload = ProbeAlarmRaised(
                **common,
                perceived_severity=spec.severity,
                service_affecting=spec.service_affecting,
                alarm_details=dict(details or {}),
            )
        else:
            payload = ProbeAlarmCleared(**common)
    except ValidationError as exc:
        raise InputRejected(f"invalid alarm ({invalid_fields(exc)})") from None
    return new_event(payload, source=source, subject=resource.id, time=at, event_id=event_id)


def invalid_fields(exc: ValidationError) -> str:
    """The fields a validation error is about, without their values (which may be personal)."""
    return ", ".join(sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()}))


# Publishing -------------------------------------------------------------------------------------


class PublisherLike(Protocol):
    """What a receiver needs of a :class:`runtime.bus.Publisher` (tests may pass a fake)."""

    async def publish(self, *events: Envelope[EventPayload]) -> None: ...


class Outlet:
    """A bounded queue between a protocol's synchronous callbacks and the broker.

    Datagram callbacks cannot wait for the broker; they ``offer`` events here and :meth:`run`
    publishes them in arrival order, in batches, retrying while the broker is unreachable so that
    nothing accepted is dropped. When the backlog is full, new input is rejected (and counted)
    instead of growing memory without bound.
    """

    def __init__(
        self,
        publisher: PublisherLike,
        counters: ReceiverCounters,
        receiver: str,
        *,
        capacity: int = 10_000,
        batch: int = 500,
    ):
        self.publisher = publisher
        self.counters = counters
        self.receiver = receiver
        self.batch = batch
        self._queue: asyncio.Queue[Envelope[EventPayload]] = asyncio.Queue(capacity)

    def offer(self, events: Iterable[Envelope[EventPayload]]) -> None:
        """Queue ``events`` for publishing; what does not fit is rejected as ``backlog full``."""
        for event in events:
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                count_rejection(self.counters, self.receiver, "backlog full")

    async def run(self, max_backoff: float = 30.0) -> None:
        """Publish queued events until cancelled."""
        while True:
            events = [await self._queue.get()]
            while len(events) < self.batch and not self._queue.empty():
                events.append(self._queue.get_nowait())
            await self._publish(events, max_backoff)
            for _ in events:
                self._queue.task_done()

    async def _publish(self, events: Sequence[Envelope[EventPayload]], max_backoff: float) -> None:
        backoff = 0.5
        while True:
            try:
                await self.publisher.publish(*events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "publish failed, retrying",
                    receiver=self.receiver,
                    events=len(events),
                    error=type(exc).__name__,
                    retry_in=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff)
            else:
                self.counters.published += len(events)
                return

    async def drained(self) -> None:
        """Wait until everything offered so far has been published."""
        await self._queue.join()
