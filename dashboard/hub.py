"""TMF688-style event hub: subscriptions (``/hub``) whose matching events are POSTed to a callback.

Each API has its hub (``POST /tmf-api/alarmManagement/v5/hub`` ...). A subscription names a
callback URL and a query: ``eventType=AlarmRaised&perceivedSeverity=critical`` keeps the events of
those types whose payload has those values (camelCase field names; ``a,b`` means either value).
Subscriptions live in the schema of the domain that owns the API.

One dispatcher per domain consumes that domain's event topics as a consumer group of its own
(``oss-event-hub``, ``bss-event-hub``) and POSTs each matching event as TMF688 JSON
(``eventId``, ``eventTime``, ``eventType``, ``event``) to every subscriber, with a short timeout and
a few retries. A subscription gets the events that reached the bus after it was made (by the
record's timestamp, not the event's time, which for usage is when the call started). Offsets are
committed once a batch's deliveries are done or given up, so a healthy subscriber gets every event
at least once. Subscribers are served concurrently, each in event order; a callback that still
fails after its retries is suspended for a while, its events dropped and logged. Each subscriber
has at most ``DeliveryPolicy.batch_budget`` seconds for a batch: what a slow one has not taken by
then counts as failed, is logged, and the callback is suspended likewise. So no subscriber holds
the others up, and the commit and the next fetch wait at most that long, well within the
consumer's poll interval.

Callbacks are ``http`` or ``https`` URLs without credentials. Their host may be a name or an
address, loopback included (tests and tools on the same machine use it); link-local addresses
(where cloud metadata services answer), multicast, unspecified and reserved addresses are refused.
Names are not resolved when subscribing: the hub POSTs wherever they lead, so keep ``/hub`` as
closed to strangers as the rest of the API.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from types import ModuleType
from typing import Annotated, Any
from urllib.parse import parse_qsl

import asyncpg
import httpx
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import Field, HttpUrl, field_validator
from pydantic.alias_generators import to_camel

from dashboard.api import bss_hub, oss_hub
from dashboard.api.errors import ERROR_RESPONSES, bad_request, not_found
from dashboard.api.tmf import ResourceId, TmfModel, TmfRequest, edge_of, href
from dashboard.context import Edge
from events import DecodeError, Envelope, EventPayload, decode
from runtime.consumer import dead_letter

log = structlog.get_logger(__name__)

router = APIRouter(responses=ERROR_RESPONSES)

_TAGS = {
    "alarmManagement": "TMF642 Alarm Management",
    "troubleTicket": "TMF621 Trouble Ticket",
    "productOrderingManagement": "TMF622 Product Ordering",
    "customerBillManagement": "TMF678 Customer Bill Management",
    "usageManagement": "TMF635 Usage Management",
}


IDLE_CHECK_SECONDS = 2.0
"""How often a hub with no subscription looks for one."""


@dataclass(frozen=True)
class HubApi:
    """One API's hub: which domain keeps its subscriptions, which events it offers."""

    name: str
    domain: str
    event_types: tuple[type[EventPayload], ...]

    @property
    def path(self) -> str:
        return f"/tmf-api/{self.name}/v5/hub"

    def model(self, event_type: str) -> type[EventPayload] | None:
        return next((t for t in self.event_types if t.event_type == event_type), None)


HUB_COMPONENTS: tuple[ModuleType, ...] = (oss_hub, bss_hub)
"""The component modules of the hub, one per domain."""

APIS = {
    name: HubApi(name, component.DOMAIN, types)
    for component in HUB_COMPONENTS
    for name, types in component.APIS.items()
}


def _pool(edge: Edge, domain: str) -> asyncpg.Pool:
    """The pool of the domain that owns an API: a hub reads and writes only its own domain."""
    return edge.oss_pool if domain == oss_hub.DOMAIN else edge.bss_pool


# Queries ----------------------------------------------------------------------------------------


def event_fields(payload: EventPayload) -> dict[str, Any]:
    """The payload as TMF JSON: camelCase names at every level, JSON values."""
    camel: dict[str, Any] = _camel(payload.model_dump(mode="json"))
    return camel


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_camel(k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _text(value: Any) -> str | None:
    """How a query spells a payload value; None for what a query cannot compare (objects)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str | int | float):
        return str(value)
    return None


@dataclass(frozen=True)
class SubscriptionQuery:
    """A parsed hub query: the event types wanted (None: all of the API's) and, per payload field,
    the values any of which matches. A list field matches when it holds one of the values."""

    event_types: frozenset[str] | None
    fields: Mapping[str, frozenset[str]]

    def matches(self, event_type: str, fields: Mapping[str, Any]) -> bool:
        if self.event_types is not None and event_type not in self.event_types:
            return False
        for name, wanted in self.fields.items():
            if name not in fields:
                return False
            value = fields[name]
            values = value if isinstance(value, list) else [value]
            if not any(_text(v) in wanted for v in values):
                return False
        return True


def parse_query(api: HubApi, query: str) -> SubscriptionQuery:
    """Parse and check a subscription's query against the events ``api`` offers; ValueError
    saying what is wrong."""
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        raise ValueError(f"query {query!r} is not name=value pairs joined by '&'") from None
    offered = [t.event_type for t in api.event_types]
    event_types: set[str] | None = None
    fields: dict[str, frozenset[str]] = {}
    for name, raw in pairs:
        values = frozenset(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise ValueError(f"query parameter {name!r} has no value")
        if name == "eventType":
            unknown = sorted(values - set(offered))
            if unknown:
                raise ValueError(
                    f"eventType {', '.join(unknown)} is not an event of {api.name}: "
                    f"choose from {', '.join(offered)}"
                )
            event_types = (event_types or set()) | values
        else:
            fields[name] = fields.get(name, frozenset()) | values
    chosen = [api.model(t) for t in sorted(event_types)] if event_types else list(api.event_types)
    known = {to_camel(f) for model in chosen if model is not None for f in model.model_fields}
    unknown_fields = sorted(set(fields) - known)
    if unknown_fields:
        raise ValueError(
            f"{', '.join(unknown_fields)}: not a field of the events asked for; "
            f"query by eventType or by {', '.join(sorted(known))}"
        )
    return SubscriptionQuery(frozenset(event_types) if event_types else None, fields)


def tmf_event(event: Envelope[EventPayload], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The TMF688 notification of an event, as POSTed to a callback."""
    return {
        "eventId": event.id,
        "eventTime": event.time.isoformat(),
        "eventType": event.type,
        "correlationId": event.correlationid,
        "event": dict(fields),
    }


# Subscriptions API ------------------------------------------------------------------------------


class EventSubscriptionInput(TmfRequest):
    """TMF688 ``EventSubscriptionInput``: where to POST, and which events."""

    callback: HttpUrl = Field(description="http(s) URL the hub POSTs each matching event to.")
    query: str = Field(
        default="",
        max_length=2000,
        description="eventType=AlarmRaised&perceivedSeverity=critical: types and payload values (a,b: either).",
    )

    @field_validator("callback")
    @classmethod
    def _deliverable(cls, callback: HttpUrl) -> HttpUrl:
        check_callback(callback)
        return callback


def check_callback(callback: HttpUrl) -> None:
    """ValueError for a callback the hub will not POST to: one carrying credentials (they would
    be logged with every failed delivery), or one whose host is an address no subscriber listens
    on: link-local (cloud metadata services), multicast, unspecified or reserved. Loopback is
    allowed, and names are taken as they are."""
    if callback.username or callback.password:
        raise ValueError("the callback must not carry a user name or password")
    try:
        address = ipaddress.ip_address((callback.host or "").strip("[]"))
    except ValueError:
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return
    if address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved:
        raise ValueError(f"the callback's host {address} is not an address a subscriber can listen on")


class EventSubscription(TmfModel):
    """TMF688 ``EventSubscription``."""

    id: str = Field(description="Subscription id.")
    href: str = Field(description="Where to read or delete it.")
    callback: str = Field(description="Where matching events are POSTed.")
    query: str = Field(description="Which events.")
    type_: str = Field(default="EventSubscription", alias="@type", description="TMF class.")


def _subscription(request: Request, api: HubApi, row: asyncpg.Record) -> EventSubscription:
    return EventSubscription(
        id=row["id"], href=href(request, api.path, row["id"]), callback=row["callback"], query=row["query"]
    )


def _register(api: HubApi) -> None:
    """Add the hub routes of one API to the router."""

    async def subscribe(
        request: Request,
        response: Response,
        subscription: Annotated[EventSubscriptionInput, Body()],
        edge: Annotated[Edge, Depends(edge_of)],
    ) -> EventSubscription:
        try:
            parse_query(api, subscription.query)
        except ValueError as exc:
            raise bad_request(f"query: {exc}", "invalidBody") from None
        row = await _pool(edge, api.domain).fetchrow(
            "INSERT INTO hub_subscriptions (id, api, callback, query) VALUES ($1, $2, $3, $4) "
            "RETURNING id, callback, query",
            f"HUB-{uuid.uuid4().hex[:12]}",
            api.name,
            str(subscription.callback),
            subscription.query,
        )
        assert row is not None
        created = _subscription(request, api, row)
        response.headers["Location"] = created.href
        return created

    async def read(
        request: Request, subscription_id: ResourceId, edge: Annotated[Edge, Depends(edge_of)]
    ) -> EventSubscription:
        row = await _pool(edge, api.domain).fetchrow(
            "SELECT id, callback, query FROM hub_subscriptions WHERE id = $1 AND api = $2",
            subscription_id,
            api.name,
        )
        if row is None:
            raise not_found("subscription", subscription_id)
        return _subscription(request, api, row)

    async def unsubscribe(subscription_id: ResourceId, edge: Annotated[Edge, Depends(edge_of)]) -> Response:
        deleted = await _pool(edge, api.domain).fetchval(
            "DELETE FROM hub_subscriptions WHERE id = $1 AND api = $2 RETURNING 1", subscription_id, api.name
        )
        if deleted is None:
            raise not_found("subscription", subscription_id)
        return Response(status_code=204)

    tags: list[str | Enum] = [_TAGS.get(api.name, api.name)]
    types = ", ".join(t.event_type for t in api.event_types)
    router.add_api_route(
        api.path,
        subscribe,
        methods=["POST"],
        status_code=201,
        response_model=EventSubscription,
        tags=tags,
        summary=f"Subscribe to {api.name} events",
        description=f"Register a callback for {types} events; answers 201 with the subscription.",
        operation_id=f"{api.name}_hub_subscribe",
    )
    router.add_api_route(
        api.path + "/{subscription_id}",
        read,
        methods=["GET"],
        response_model=EventSubscription,
        tags=tags,
        summary=f"Read a subscription to {api.name} events",
        operation_id=f"{api.name}_hub_read",
    )
    router.add_api_route(
        api.path + "/{subscription_id}",
        unsubscribe,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        tags=tags,
        summary=f"Unsubscribe from {api.name} events",
        operation_id=f"{api.name}_hub_unsubscribe",
    )


for _api in APIS.values():
    _register(_api)


# Delivery ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A stored subscription, its query parsed."""

    id: str
    api: str
    callback: str
    query: SubscriptionQuery
    created_at: datetime

    def wants(self, event: Envelope[EventPayload], fields: Mapping[str, Any], published: datetime) -> bool:
        """Whether the event is for this subscriber: it matches, and reached the bus
        (``published``) after the subscription was made. Not the event's own time: a usage
        record's is when the call started, which may be long before it is published."""
        return published >= self.created_at and self.query.matches(event.type, fields)


def published_at(record: ConsumerRecord[bytes, bytes], event: Envelope[EventPayload]) -> datetime:
    """When a record reached the bus: its Kafka timestamp (milliseconds), or the event's time for
    a record that has none."""
    if record.timestamp is None or record.timestamp < 0:
        return event.time
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


@dataclass
class DeliveryPolicy:
    """How hard the hub tries a callback."""

    timeout: float = 2.0
    """Seconds to connect, and again to get an answer."""
    attempts: int = 3
    backoff: float = 0.25
    """Seconds before the second attempt, doubled for each further one."""
    suspend_for: float = 30.0
    """Seconds a callback that failed every attempt gets no events."""
    batch_budget: float = 30.0
    """Seconds one subscriber may take over one batch's events: what is not delivered by then
    counts as failed and the callback is suspended, so that a slow one holds nobody up."""


@dataclass
class CallbackDelivery:
    """POSTs events to subscribers, retrying, and suspending callbacks that keep failing."""

    client: httpx.AsyncClient
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    delivered: int = 0
    failed: int = 0
    skipped: int = 0
    _suspended_until: dict[str, float] = field(default_factory=dict)

    def suspended(self, subscription_id: str) -> bool:
        until = self._suspended_until.get(subscription_id)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._suspended_until[subscription_id]
            return False
        return True

    async def deliver_all(self, subscription: Subscription, events: Sequence[dict[str, Any]]) -> None:
        """Deliver ``events`` to one subscriber, in order, within the policy's ``batch_budget``:
        the events not delivered by then fail, and the callback is suspended."""
        skipped = handled = 0
        try:
            async with asyncio.timeout(self.policy.batch_budget):
                for event in events:
                    if self.suspended(subscription.id):
                        skipped += 1
                    elif await self._deliver(subscription, event):
                        self.delivered += 1
                    handled += 1
        except TimeoutError:
            self._overran(subscription, len(events) - handled)
        if skipped:
            self.skipped += skipped
            log.warning(
                "events not delivered to a suspended callback",
                subscription=subscription.id,
                callback=subscription.callback,
                count=skipped,
            )

    def _overran(self, subscription: Subscription, undelivered: int) -> None:
        """A subscriber that did not take a batch within the budget: its remaining events fail,
        and it is suspended as a callback that keeps failing is."""
        self.failed += undelivered
        self._suspended_until[subscription.id] = time.monotonic() + self.policy.suspend_for
        log.warning(
            "events not delivered in time to a slow callback",
            subscription=subscription.id,
            callback=subscription.callback,
            count=undelivered,
            budget=self.policy.batch_budget,
            suspended_for=self.policy.suspend_for,
        )

    async def _deliver(self, subscription: Subscription, event: dict[str, Any]) -> bool:
        policy = self.policy
        reason, transient = "", True
        for attempt in range(policy.attempts):
            if attempt:
                await asyncio.sleep(policy.backoff * 2 ** (attempt - 1))
            try:
                response = await self.client.post(subscription.callback, json=event)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.is_success:
                return True
            reason = f"HTTP {response.status_code}"
            # A refusal of this event (4xx) is the subscriber's answer: asking again changes nothing.
            transient = response.status_code >= 500 or response.status_code in (408, 429)
            if not transient:
                break
        self.failed += 1
        if transient:
            self._suspended_until[subscription.id] = time.monotonic() + policy.suspend_for
        log.warning(
            "event not delivered to callback",
            subscription=subscription.id,
            callback=subscription.callback,
            event_id=event["eventId"],
            event_type=event["eventType"],
            reason=reason,
            suspended_for=policy.suspend_for if transient else 0,
        )
        return False


class HubDispatcher:
    """One domain's hub: consumes the domain's event topics as the component's consumer group and
    delivers each event to the subscriptions it matches."""

    def __init__(
        self,
        edge: Edge,
        component: ModuleType,
        policy: DeliveryPolicy | None = None,
    ):
        spec = edge.topology.component(component.COMPONENT)
        self.topics = list(spec.consumes)
        edge.topology.check_subscribe(component.COMPONENT, self.topics)
        if spec.dead_letter is None:
            raise ValueError(f"{component.COMPONENT} has no dead_letter topic")
        self.dead_letter_topic = spec.dead_letter
        self.component: str = component.COMPONENT
        self.apis = [APIS[name] for name in component.APIS]
        self.edge = edge
        self.pool = _pool(edge, component.DOMAIN)
        self.policy = policy or DeliveryPolicy()
        self.api_of_type = {t.event_type: api.name for api in self.apis for t in api.event_types}
        self.apis_of_topic = {
            topic: frozenset(
                self.api_of_type[t] for t in edge.topology.topics[topic].event_types if t in self.api_of_type
            )
            for topic in self.topics
        }
        self.delivery: CallbackDelivery | None = None
        self._queries: dict[tuple[str, str], SubscriptionQuery] = {}

    async def run(self) -> None:
        """Consume and deliver until cancelled."""
        settings = self.edge.settings
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.edge.bootstrap_servers,
            group_id=self.component,
            client_id=self.component,
            enable_auto_commit=False,
            # A new group starts from the oldest events: subscriptions only take what happened
            # after they were made, so nothing old is sent.
            auto_offset_reset="earliest",
            rebalance_timeout_ms=settings.rebalance_timeout_ms,
            session_timeout_ms=max(6000, settings.rebalance_timeout_ms * 2),
            heartbeat_interval_ms=1000,
            max_poll_records=settings.consumer_max_batch,
            fetch_max_wait_ms=settings.consumer_poll_ms,
            # A batch takes at most the delivery budget (subscribers are served side by side).
            max_poll_interval_ms=max(300_000, int(self.policy.batch_budget * 4000)),
        )
        timeout = httpx.Timeout(self.policy.timeout)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            self.delivery = CallbackDelivery(client, self.policy)
            await consumer.start()
            log.info("event hub started", component=self.component, topics=self.topics)
            try:
                while True:
                    batch = await consumer.getmany(
                        timeout_ms=settings.consumer_poll_ms, max_records=settings.consumer_max_batch
                    )
                    # Read after the fetch: a subscription this read misses was made after every
                    # record of the batch reached the bus, so it is owed none of them.
                    subscriptions = await self._subscriptions()
                    if not subscriptions:
                        # Nobody to deliver to: keep the group's position at the end instead of
                        # decoding every event for nothing, and look again in a while.
                        await self._skip_to_end(consumer)
                        await asyncio.sleep(IDLE_CHECK_SECONDS)
                        continue
                    if not batch:
                        continue
                    await self._dispatch(self.delivery, batch, subscriptions)
                    await consumer.commit(
                        {tp: OffsetAndMetadata(records[-1].offset + 1, "") for tp, records in batch.items()}
                    )
            finally:
                await consumer.stop()

    async def _skip_to_end(self, consumer: AIOKafkaConsumer) -> None:
        """Move the group's committed position to the end of every assigned partition, unless a
        subscription appeared meanwhile. The ends are read first: whatever lies before them
        happened before a subscription made after the check, so skipping it loses nothing."""
        assigned = list(consumer.assignment())
        if not assigned:
            return
        ends = await consumer.end_offsets(assigned)
        if await self._subscriptions():
            return
        for tp, offset in ends.items():
            consumer.seek(tp, offset)
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in ends.items()})

    async def _subscriptions(self) -> dict[str, list[Subscription]]:
        """This domain's subscriptions by API, read afresh for every batch so that a new one
        takes effect at once."""
        rows = await self.pool.fetch(
            "SELECT id, api, callback, query, created_at FROM hub_subscriptions WHERE api = ANY($1::text[])",
            [api.name for api in self.apis],
        )
        found: dict[str, list[Subscription]] = {}
        for row in rows:
            query = self._query(row["api"], row["query"])
            if query is not None:
                found.setdefault(row["api"], []).append(
                    Subscription(row["id"], row["api"], row["callback"], query, row["created_at"])
                )
        return found

    def _query(self, api: str, text: str) -> SubscriptionQuery | None:
        key = (api, text)
        if key not in self._queries:
            try:
                self._queries[key] = parse_query(APIS[api], text)
            except ValueError as exc:
                log.warning(
                    "subscription query no longer valid, ignored", api=api, query=text, reason=str(exc)
                )
                return None
        return self._queries[key]

    async def _dispatch(
        self,
        delivery: CallbackDelivery,
        batch: Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]],
        subscriptions: Mapping[str, list[Subscription]],
    ) -> None:
        wanted = frozenset(subscriptions)
        plan: dict[str, tuple[Subscription, list[dict[str, Any]]]] = {}
        dead: list[tuple[ConsumerRecord[bytes, bytes], str]] = []
        for records in batch.values():
            for record in records:
                # Topics of APIs nobody subscribes to are skipped without decoding.
                if not self.apis_of_topic.get(record.topic, frozenset()) & wanted:
                    continue
                try:
                    event = decode(
                        record.headers, record.value, (record.topic, record.partition, record.offset)
                    )
                except DecodeError as exc:
                    dead.append((record, exc.reason))
                    continue
                self._plan(
                    plan,
                    event,
                    published_at(record, event),
                    subscriptions.get(self.api_of_type.get(event.type, ""), ()),
                )
        if dead:
            await self._dead_letter(dead)
        await asyncio.gather(*(delivery.deliver_all(sub, events) for sub, events in plan.values()))

    @staticmethod
    def _plan(
        plan: dict[str, tuple[Subscription, list[dict[str, Any]]]],
        event: Envelope[EventPayload],
        published: datetime,
        subscriptions: Iterable[Subscription],
    ) -> None:
        """Add ``event``, which reached the bus at ``published``, to the deliveries of every
        subscription it matches."""
        fields: dict[str, Any] | None = None
        notification: dict[str, Any] | None = None
        for subscription in subscriptions:
            fields = fields if fields is not None else event_fields(event.data)
            if subscription.wants(event, fields, published):
                notification = notification or tmf_event(event, fields)
                plan.setdefault(subscription.id, (subscription, []))[1].append(notification)

    async def _dead_letter(self, dead: Sequence[tuple[ConsumerRecord[bytes, bytes], str]]) -> None:
        """Records that are not events of the catalog go to the hub's dead-letter topic, with why."""
        await dead_letter(self.edge.bus, self.dead_letter_topic, self.component, dead)


def dispatchers(edge: Edge, policy: DeliveryPolicy | None = None) -> list[HubDispatcher]:
    """The hub's dispatchers, one per domain."""
    return [HubDispatcher(edge, component, policy) for component in HUB_COMPONENTS]


def background(edge: Edge) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Long-running tasks the hub needs (name, coroutine function), run under supervision."""
    return [(d.component, d.run) for d in dispatchers(edge)]
