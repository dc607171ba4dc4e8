"""``ossbss``: the one command everything goes through."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from runtime.bus import Publisher
from runtime.embedded import InfraError
from runtime.infra import NoRunningSystem
from runtime.logs import configure_logging
from runtime.settings import Settings
from runtime.topology import TopologyError, TopologyViolation

log = structlog.get_logger("ossbss")
T = TypeVar("T")


class UsageError(RuntimeError):
    """Bad input from the command line, reported in one line."""


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"bad setting {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _stop_on_signals() -> asyncio.Event:
    """An event that Ctrl-C (SIGINT) or SIGTERM sets."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


@contextlib.asynccontextmanager
async def _domain_pool(settings: Settings, domain: str, size: int = 1) -> AsyncIterator[asyncpg.Pool]:
    """A small pool on a running system's database, as the domain's own role."""
    from ossbss.app import domain_databases
    from runtime import db
    from runtime.infra import existing_endpoints

    endpoints = existing_endpoints(settings)
    pool = await db.create_pool(endpoints.database_url, domain_databases(settings)[domain], max_size=size)
    try:
        yield pool
    finally:
        await pool.close()


# ---------------------------------------------------------------------------------------------
# up


async def _up(args: argparse.Namespace) -> int:
    from ossbss.app import run_until_stopped, system
    from producers import receivers
    from runtime.infra import infrastructure, write_endpoints

    settings = _settings()
    try:
        receivers.enabled_kinds(settings)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stop = _stop_on_signals()
    async with infrastructure(settings) as endpoints:
        endpoints_file = write_endpoints(settings, endpoints)
        try:
            async with system(
                settings, endpoints, simulate=not args.no_simulator, probe_rate=args.rate
            ) as running:
                _out(
                    f"ossbss is up: Kafka at {endpoints.bootstrap_servers}"
                    f"{' (embedded, in memory)' if endpoints.embedded_broker else ''}, PostgreSQL "
                    f"{'embedded in ' + str(settings.state_dir / 'pgdata') if endpoints.embedded_postgres else 'at DATABASE_URL'}"
                    f"; probes {'off' if running.simulator is None else f'{running.simulator.rate}/s'}."
                    " Ctrl-C stops."
                )
                _out(f"dashboard and API at {running.http_url} (OpenAPI: {running.http_url}docs)")
                if running.listening:
                    _out("receivers: " + ", ".join(f"{r.kind} {r.bound}" for r in running.listening))
                await run_until_stopped(running, stop, _out, duration=args.duration)
        finally:
            endpoints_file.unlink(missing_ok=True)
    _out("ossbss stopped.")
    return 0


# ---------------------------------------------------------------------------------------------
# topology, events


def _topology_check(args: argparse.Namespace) -> int:
    from runtime.topology import Topology

    path = Path(args.file) if args.file else _settings().topology_path
    topo = Topology.load(path)
    groups = sum(1 for c in topo.components.values() if c.consumes)
    _out(
        f"{path}: OK - {len(topo.topics)} topics, {len(topo.components)} components, {groups} consumer groups"
    )
    return 0


async def _topology_apply(args: argparse.Namespace) -> int:
    from runtime.infra import existing_endpoints
    from runtime.topology import Topology, apply

    settings = _settings()
    topo = Topology.load(Path(args.file) if args.file else settings.topology_path)
    endpoints = existing_endpoints(settings, need_database=False)
    created, present = await apply(topo, endpoints.bootstrap_servers)
    for name in created:
        _out(
            f"created {name} ({topo.topics[name].partitions} partitions, {topo.topics[name].cleanup_policy})"
        )
    _out(f"{len(created)} created, {len(present)} already present")
    return 0


def _events_schema(args: argparse.Namespace) -> int:
    from events.schema import write_schemas

    written = write_schemas(Path(args.out))
    _out(f"wrote {len(written)} JSON Schemas to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------
# tail


def _describe(data: dict[str, Any]) -> str:
    parts = []
    for key, value in data.items():
        if key in ("notification_id", "related_entity", "alarm_details", "description"):
            continue
        if isinstance(value, list):
            value = ",".join(map(str, value)) or "-"
        parts.append(f"{key}={value}")
    return " ".join(parts)


async def _tail(args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from events import DecodeError, decode
    from runtime.infra import existing_endpoints
    from runtime.topology import Topology

    settings = _settings()
    topo = Topology.load(settings.topology_path)
    unknown = [t for t in args.topics if t not in topo.topics]
    if unknown:
        raise UsageError(f"not a declared topic: {', '.join(unknown)} (see topology.yaml)")
    endpoints = existing_endpoints(settings, need_database=False)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=endpoints.bootstrap_servers, client_id="ossbss-tail", enable_auto_commit=False
    )
    await consumer.start()
    await consumer.topics()  # metadata of every topic, for their partitions
    stop = _stop_on_signals()
    loop = asyncio.get_running_loop()
    seen = 0
    try:
        partitions = [
            TopicPartition(t, p) for t in args.topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(partitions)
        if args.from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        quiet_since = loop.time()
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=500)
            if batch:
                quiet_since = loop.time()
            elif loop.time() - quiet_since > 5.0:
                # A quiet stream, or a broker that went away: aiokafka would retry silently
                # forever, so ask the broker for its metadata.
                try:
                    await asyncio.wait_for(consumer.topics(), timeout=5.0)
                except (KafkaError, TimeoutError):
                    raise UsageError(f"lost the broker at {endpoints.bootstrap_servers}") from None
                quiet_since = loop.time()
            for records in batch.values():
                for r in records:
                    _out(_tail_line(r, args.json, decode, DecodeError))
                    seen += 1
                    if args.max and seen >= args.max:
                        return 0
    finally:
        # With the broker gone, stopping the client surfaces its fetcher's cancellation.
        with contextlib.suppress(asyncio.CancelledError, KafkaError):
            await consumer.stop()
    return 0


def _tail_line(record: Any, as_json: bool, decode: Any, decode_error: type[Exception]) -> str:
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    if "dlq_reason" in headers:
        if as_json:
            return json.dumps(
                {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "dead_letter": {k[4:]: v for k, v in headers.items() if k.startswith("dlq_")},
                }
            )
        return (
            f"{record.topic:<22} dead letter from {headers.get('dlq_topic')}"
            f"[{headers.get('dlq_partition')}]@{headers.get('dlq_offset')}: {headers['dlq_reason']}"
        )
    try:
        event = decode(record.headers, record.value)
    except decode_error as exc:
        if as_json:
            return json.dumps({"topic": record.topic, "offset": record.offset, "undecodable": str(exc)})
        return f"{record.topic:<22} (undecodable at offset {record.offset}: {exc})"
    data = event.data.model_dump(mode="json")
    if as_json:
        return json.dumps(
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "id": event.id,
                "type": event.type,
                "source": event.source,
                "time": event.time.isoformat(),
                "subject": event.subject,
                "correlationid": event.correlationid,
                "causationid": event.causationid,
                "key": event.partitionkey,
                "data": data,
            }
        )
    return f"{event.time:%H:%M:%S.%f}"[:-3] + f" {record.topic:<22} {event.type:<28} {_describe(data)}"


# ---------------------------------------------------------------------------------------------
# alarm, probe


async def _publish_command(
    component: str, send: Callable[[Publisher], Awaitable[T]], what: str = "request"
) -> T:
    """Publish as ``component`` on a running system's broker; returns what ``send`` returns. A
    payload the catalog refuses is a usage error naming ``what`` was invalid."""
    from runtime.bus import Bus
    from runtime.infra import existing_endpoints
    from runtime.topology import Topology

    settings = _settings()
    endpoints = existing_endpoints(settings, need_database=False)
    bus = Bus(endpoints.bootstrap_servers, Topology.load(settings.topology_path), client_id="ossbss-cli")
    await bus.start()
    try:
        return await send(bus.publisher(component))
    except ValidationError as exc:
        raise UsageError(f"invalid {what}: {exc.errors()[0]['msg']}") from None
    except KafkaError as exc:
        raise UsageError(f"could not publish the {what}: {exc}") from None
    finally:
        await bus.stop()


async def _alarm_ack(args: argparse.Namespace) -> int:
    from oss_consumers.fault import console

    await _publish_command(
        console.COMPONENT,
        lambda p: console.request_acknowledgement(p, args.alarm_id, args.by, undo=args.undo),
    )
    what = "un-acknowledgement" if args.undo else "acknowledgement"
    _out(f"{what} of {args.alarm_id} by {args.by} requested")
    return 0


async def _alarm_clear(args: argparse.Namespace) -> int:
    from oss_consumers.fault import console

    await _publish_command(console.COMPONENT, lambda p: console.request_clearance(p, args.alarm_id, args.by))
    _out(f"clear of {args.alarm_id} by {args.by} requested")
    return 0


async def _alarm_list(args: argparse.Namespace) -> int:
    async with _domain_pool(_settings(), "oss") as pool:
        rows = await pool.fetch(
            """
            SELECT a.id, a.perceived_severity, a.state, a.ack_state, a.alarmed_object_id,
                   a.probable_cause, a.occurrences, a.raised_at, t.id AS ticket
            FROM alarms a LEFT JOIN trouble_tickets t ON t.alarm_id = a.id
            WHERE $1 OR a.state <> 'cleared'
            ORDER BY a.raised_at DESC LIMIT $2
            """,
            args.all,
            args.limit,
        )
    if args.json:
        _json_lines(rows)
        return 0
    for r in rows:
        _out(
            f"{r['id']:<17} {r['perceived_severity']:<9} {r['state']:<8} {r['ack_state']:<15} "
            f"{r['alarmed_object_id']:<20} {r['probable_cause']:<22} x{r['occurrences']:<4} "
            f"{r['raised_at']:%Y-%m-%d %H:%M:%S} {r['ticket'] or ''}"
        )
    _out(f"{len(rows)} alarm(s)")
    return 0


async def _resource_state(args: argparse.Namespace) -> int:
    from events.oss import AdministrativeState
    from oss_consumers.inventory import console

    state = AdministrativeState.LOCKED if args.action == "lock" else AdministrativeState.UNLOCKED
    await _publish_command(
        console.COMPONENT, lambda p: console.request_state(p, args.resource_id, state, args.by, args.reason)
    )
    _out(f"{state.value} of {args.resource_id} by {args.by} requested")
    return 0


async def _workorder_report(args: argparse.Namespace) -> int:
    from events.oss import WorkOrderState
    from oss_consumers.workforce import technicians

    state = WorkOrderState(args.state)
    await _publish_command(
        technicians.COMPONENT,
        lambda p: technicians.report(p, args.work_order_id, args.by, state, args.note),
    )
    _out(f"{args.work_order_id}: {state.value} reported by {args.by}")
    return 0


async def _workorder_list(args: argparse.Namespace) -> int:
    async with _domain_pool(_settings(), "oss") as pool:
        rows = await pool.fetch(
            """
            SELECT id, ticket_id, state, priority, required_skill, region, technician_id, resource_id,
                   created_at, due_at, sla_breached_at IS NOT NULL AS breached
            FROM work_orders
            WHERE $1 OR state IN ('acknowledged', 'pending', 'inProgress')
            ORDER BY created_at DESC LIMIT $2
            """,
            args.all,
            args.limit,
        )
    if args.json:
        _json_lines(rows)
        return 0
    for r in rows:
        _out(
            f"{r['id']:<16} {r['state']:<12} P{r['priority']} {r['required_skill']:<7} "
            f"{(r['region'] or '-'):<6} {(r['technician_id'] or 'unassigned'):<10} {r['resource_id']:<20} "
            f"{r['ticket_id']:<16} due {r['due_at']:%Y-%m-%d %H:%M}{' BREACHED' if r['breached'] else ''}"
        )
    _out(f"{len(rows)} work order(s)")
    return 0


async def _receive(args: argparse.Namespace) -> int:
    """One protocol receiver on its own, publishing to a running system's broker."""
    from oss_consumers.inventory.seed import load_network
    from producers import receivers
    from runtime.bus import Bus
    from runtime.infra import existing_endpoints
    from runtime.supervisor import supervise
    from runtime.topology import Topology

    settings = _settings()
    if args.port is not None:
        if args.kind == "cdr":
            raise UsageError("the cdr receiver watches a folder (OSSBSS_CDR_INBOX): --port does not apply")
        settings = settings.model_copy(update={f"{args.kind}_port": args.port})
    endpoints = existing_endpoints(settings, need_database=False)
    bus = Bus(
        endpoints.bootstrap_servers,
        Topology.load(settings.topology_path),
        client_id=f"ossbss-receive-{args.kind}",
    )
    await bus.start()
    stop = _stop_on_signals()
    try:
        receiver = receivers.build(
            args.kind,
            settings=settings,
            publisher_factory=bus.publisher,
            network=load_network(settings.network_file),
        )
        _out(f"{args.kind} receiver on {await receiver.start()}; Ctrl-C stops")
        tasks = [
            # A receiver that fails is logged and restarted, as under `ossbss up`.
            asyncio.create_task(supervise(receivers.COMPONENTS[args.kind], receiver.run)),
            asyncio.create_task(receivers.report_status([receiver], _out, every=settings.summary_interval)),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        _out(receivers.status_line(receiver))
    finally:
        await bus.stop()
    return 0


async def _cdr_load(args: argparse.Namespace) -> int:
    """Load CDR files once, with progress; a file loaded before is not published again."""
    from producers.receivers import cdr
    from producers.receivers.common import InputRejected

    settings = _settings()
    mapping = cdr.mapping_of(args.mapping or settings.cdr_mapping)
    ledger = cdr.CdrLedger(cdr.ledger_path_for(settings.cdr_inbox))
    missing = [f for f in args.files if not f.is_file()]
    if missing:
        raise UsageError(f"no such file: {missing[0]}")
    failed = 0

    async def load(publisher: Publisher) -> None:
        nonlocal failed
        for path in args.files:
            try:
                await cdr.load_file(
                    path,
                    publisher,
                    ledger,
                    mapping=mapping,
                    progress=lambda r: _out(r.line()),
                    every=args.every,
                )
            except InputRejected as exc:
                failed += 1
                _out(f"{path.name}: not loaded: {exc.reason}")
            except cdr.PublishFailed as exc:
                raise UsageError(f"{path.name}: {exc}; load it again to resume") from None

    await _publish_command(cdr.COMPONENT, load)
    return 1 if failed else 0


async def _probe(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from oss_consumers.inventory.seed import load_network
    from producers import probes

    settings = _settings()
    resources = {r.id: r for r in probes.resources_of(load_network(settings.network_file))}
    resource = resources.get(args.resource)
    if resource is None:
        raise UsageError(f"unknown resource {args.resource!r}; known: {', '.join(sorted(resources))}")
    conditions = probes.CONDITIONS[resource.type]
    condition = conditions[0] if not args.minor else conditions[1]
    make = probes.raise_event if args.action == "raise" else probes.clear_event
    event = make(resource, condition, datetime.now(UTC), "probe-cli")
    await _publish_command(probes.COMPONENT, lambda p: p.publish(event), "notification")
    _out(f"{args.action} {condition.probable_cause.value} on {resource.type.value} {resource.id} published")
    return 0


async def _billing_run(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime

    from bss_consumers.billing import agents as billing
    from bss_consumers.billing.run import BillRunError, bill_run, last_ended_period
    from runtime.bus import Bus, Outbox, OutboxRelay
    from runtime.infra import existing_endpoints
    from runtime.topology import Topology

    settings = _settings()
    try:
        period = (
            date.fromisoformat(args.period)
            if args.period
            else last_ended_period(args.cycle, datetime.now(UTC).date())
        )
    except ValueError as exc:
        raise UsageError(f"--period: {exc}") from None
    endpoints = existing_endpoints(settings)
    bus = Bus(endpoints.bootstrap_servers, Topology.load(settings.topology_path), client_id="ossbss-billing")
    await bus.start()
    try:
        async with _domain_pool(settings, "bss", size=2) as pool:
            _out(f"bill run: cycle {args.cycle}, period starting {period}")

            def progress(done: int, total: int) -> None:
                if done == total or done % 50 == 0:
                    _out(f"  {done}/{total} accounts")

            try:
                result = await bill_run(
                    pool, Outbox(bus, billing.COMPONENT), args.cycle, period, progress=progress
                )
            except BillRunError as exc:
                raise UsageError(str(exc)) from None
            published = await OutboxRelay(pool, bus).drain_once()
    finally:
        await bus.stop()
    amounts = ", ".join(
        f"{minor / 100:,.2f} {currency}" for currency, minor in sorted(result.billed_minor.items())
    )
    _out(
        f"{result.issued} invoice(s) issued ({amounts or 'nothing'}), "
        f"{result.already_invoiced} account(s) already invoiced, {result.accounts} in cycle {args.cycle}"
    )
    if not published:
        _out("InvoiceIssued events are queued; the running system's outbox relay publishes them")
    return 0


async def _payment_record(args: argparse.Namespace) -> int:
    from decimal import Decimal, InvalidOperation

    from bss_consumers.billing import gateway

    try:
        minor = Decimal(args.amount) * 100
    except InvalidOperation:
        raise UsageError(f"--amount {args.amount!r} is not a number") from None
    if minor != minor.to_integral_value() or minor <= 0:
        raise UsageError(f"--amount {args.amount!r} must be positive with at most two decimals")
    payment = await _publish_command(
        gateway.COMPONENT,
        lambda p: gateway.record_payment(p, args.account, int(minor), args.currency, args.payment_id),
        "payment",
    )
    _out(f"payment {payment.payment_id} of {args.amount} {args.currency} for {args.account} recorded")
    return 0


async def _order(args: argparse.Namespace) -> int:
    from bss_consumers.ordering import portal

    settings = _settings()
    if args.action == "list":
        return await _order_list(args, settings)
    follow = "follow it with: ossbss order list, or ossbss tail bss.product-orders"
    if args.action == "place":
        order = await _publish_command(
            portal.COMPONENT,
            lambda p: portal.place_order(p, args.customer, args.offering, args.a_site, args.z_site),
            "order",
        )
        _out(
            f"order {order.order_id} placed: {args.offering} for {args.customer}, {args.a_site} to {args.z_site}"
        )
        _out(follow)
    elif args.action == "terminate":
        ending = await _publish_command(
            portal.COMPONENT,
            lambda p: portal.terminate_service(p, args.customer, args.service_id, args.reason),
            "order",
        )
        _out(f"order {ending.order_id} placed: terminate {args.service_id} of {args.customer}")
        _out(follow)
    else:
        await _publish_command(
            portal.COMPONENT, lambda p: portal.cancel_order(p, args.order_id, args.reason), "order"
        )
        _out(f"cancellation of {args.order_id} requested")
    return 0


async def _order_list(args: argparse.Namespace, settings: Settings) -> int:
    async with _domain_pool(settings, "bss") as pool:
        rows = await pool.fetch(
            "SELECT * FROM product_orders ORDER BY requested_at DESC LIMIT $1", args.limit
        )
    for r in rows:
        what = "terminate" if r["action"] == "delete" else f"{r['a_site_id']}-{r['z_site_id']}"
        _out(
            f"{r['id']:<14} {r['state']:<11} {r['customer_id']:<10} {r['offering_id']:<13} "
            f"{what:<18} {r['service_id'] or '':<18} {r['reason'] or ''}"
        )
    _out(f"{len(rows)} order(s)")
    return 0


async def _sales_report(args: argparse.Namespace) -> int:
    from bss_consumers.sales import agents as sales

    async with _domain_pool(_settings(), "bss") as pool, pool.acquire() as conn:
        rows = await sales.report(conn, args.days)
    _out(
        f"{'day':<10}  {'product':<14} {'placed':>6} {'completed':>9} {'failed':>6} {'cancelled':>9} "
        f"{'churn':>5} {'revenue':>14}"
    )
    for r in rows:
        minor = r["revenue"]
        assert isinstance(minor, int)
        revenue = f"{minor / 100:,.2f} {r['currency'] or ''}".strip()
        _out(
            f"{r['day']!s:<10}  {r['offering_id']!s:<14} {r['placed']!s:>6} {r['completed']!s:>9} "
            f"{r['failed']!s:>6} {r['cancelled']!s:>9} {r['terminated']!s:>5} {revenue:>14}"
        )
    if not rows:
        _out(f"no sales in the last {args.days} day(s)")
    return 0


async def _capacity_report(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    async with _domain_pool(_settings(), "oss") as pool:
        rows = await pool.fetch(
            """
            SELECT resource_id, indicator, level, slope_per_day, exhaustion_at, windows, computed_at
            FROM capacity_forecasts
            ORDER BY exhaustion_at ASC NULLS LAST, level DESC LIMIT $1
            """,
            args.limit,
        )
    now = datetime.now(UTC)
    _out(f"{'resource':<20} {'indicator':<12} {'level':>7} {'per day':>8}  exhausted (90 %)")
    for r in rows:
        if r["exhaustion_at"] is None:
            when = "not rising"
        elif r["exhaustion_at"] <= now:
            when = "now"
        else:
            days = (r["exhaustion_at"] - now).total_seconds() / 86_400
            when = f"in {days:,.1f} days ({r['exhaustion_at']:%Y-%m-%d})"
        _out(
            f"{r['resource_id']:<20} {r['indicator']:<12} {r['level']:>6.1f}% {r['slope_per_day']:>+7.2f}%  {when}"
        )
    if not rows:
        _out("no forecasts yet: they need a few minutes of KPI windows")
    return 0


async def _bench(args: argparse.Namespace) -> int:
    from ossbss.bench import BenchError, bench_alarms, bench_usage

    run = bench_usage if args.action == "usage" else bench_alarms
    try:
        await run(args.count, _settings(), rate=args.rate, emit=_out)
    except BenchError as exc:
        raise UsageError(f"benchmark stalled: {exc}") from None
    return 0


# ---------------------------------------------------------------------------------------------


def _json_lines(rows: Sequence[asyncpg.Record]) -> None:
    """One JSON object per row, times in ISO 8601."""
    for r in rows:
        _out(json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(r).items()}))


def _out(line: str) -> None:
    print(line, flush=True)


def parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    p = argparse.ArgumentParser(prog="ossbss", description="Event-driven telecom OSS/BSS platform.")
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole system (embedded broker and PostgreSQL unless configured)")
    up.add_argument(
        "--rate",
        type=float,
        default=None,
        help="simulated alarms per second (default: OSSBSS_PROBE_RATE or 0.5)",
    )
    up.add_argument(
        "--no-simulator",
        action="store_true",
        help="run without any simulator (probes, mediation, KPIs, technicians)",
    )
    up.add_argument("--duration", type=float, default=None, help="stop after this many seconds")

    topo = sub.add_parser("topology", help="check or apply topology.yaml").add_subparsers(
        dest="action", required=True
    )
    for name, text in (("check", "validate against the event catalog"), ("apply", "create missing topics")):
        t = topo.add_parser(name, help=text)
        t.add_argument("--file", help="topology file (default: the project's topology.yaml)")

    ev = sub.add_parser("events", help="the event catalog").add_subparsers(dest="action", required=True)
    schema = ev.add_parser("schema", help="write a JSON Schema per event type")
    schema.add_argument("--out", default="schemas", help="output directory (default: ./schemas)")

    tail = sub.add_parser("tail", help="print events live, one line each")
    tail.add_argument("topics", nargs="+", metavar="TOPIC")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest retained event")
    tail.add_argument("--max", type=int, default=0, help="stop after N events")

    alarm = sub.add_parser("alarm", help="operate on alarms").add_subparsers(dest="action", required=True)
    ack = alarm.add_parser("ack", help="acknowledge an alarm")
    ack.add_argument("alarm_id")
    ack.add_argument("--by", required=True, help="operator name")
    ack.add_argument("--undo", action="store_true", help="un-acknowledge instead")
    clear = alarm.add_parser("clear", help="clear an alarm by hand, as if its probe had cleared it")
    clear.add_argument("alarm_id")
    clear.add_argument("--by", required=True, help="operator name")
    ls = alarm.add_parser("list", help="list open alarms")
    ls.add_argument("--all", action="store_true", help="include cleared alarms")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")

    probe = sub.add_parser("probe", help="report an alarm as a network probe would")
    probe.add_argument("action", choices=["raise", "clear"])
    probe.add_argument("resource", help="resource id from the network file, e.g. LINK-LON-MAN")
    probe.add_argument("--minor", action="store_true", help="the resource's non-service-affecting condition")

    wo = sub.add_parser("workorder", help="field work orders (TMF697)").add_subparsers(
        dest="action", required=True
    )
    wo_list = wo.add_parser("list", help="open work orders and the technicians' loads")
    wo_list.add_argument("--all", action="store_true", help="include finished work orders")
    wo_list.add_argument("--limit", type=int, default=50)
    wo_list.add_argument("--json", action="store_true")
    wo_report = wo.add_parser("report", help="report from the field, as the assigned technician")
    wo_report.add_argument("work_order_id")
    wo_report.add_argument("--by", required=True, help="technician id, e.g. TECH-S1")
    wo_report.add_argument("--state", required=True, choices=["inProgress", "completed", "failed"])
    wo_report.add_argument("--note", default="", help="what was found or done")

    resource = sub.add_parser("resource", help="lock or unlock a resource (TMF639 administrative state)")
    resource_what = resource.add_subparsers(dest="action", required=True)
    for action, text in (
        ("lock", "take a resource out of use: no new service, no rerouted traffic, no tickets"),
        ("unlock", "put a locked resource back in use"),
    ):
        command = resource_what.add_parser(action, help=text)
        command.add_argument("resource_id")
        command.add_argument("--by", required=True, help="operator name")
        command.add_argument("--reason", default="", help="e.g. the maintenance window")

    receive = sub.add_parser("receive", help="run one protocol receiver against a running system")
    receive.add_argument("kind", choices=["snmp", "syslog", "ves", "cdr"])
    receive.add_argument("--port", type=int, help="listen on this port instead of the configured one")
    cdr_cmd = sub.add_parser("cdr", help="usage files").add_subparsers(dest="action", required=True)
    cdr_load = cdr_cmd.add_parser("load", help="publish the usage records of CSV CDR files, once each")
    cdr_load.add_argument("files", nargs="+", type=Path, metavar="FILE")
    cdr_load.add_argument(
        "--mapping",
        choices=["auto", "asterisk", "generic"],
        help="column mapping (default: OSSBSS_CDR_MAPPING)",
    )
    cdr_load.add_argument("--every", type=int, default=1000, help="print progress every N rows")

    billing_cmd = sub.add_parser("billing", help="bill runs").add_subparsers(dest="action", required=True)
    run = billing_cmd.add_parser("run", help="issue the invoices of one bill cycle and period")
    run.add_argument("--cycle", type=int, required=True, help="bill cycle day (1-28)")
    run.add_argument("--period", help="first day of the period, YYYY-MM-DD (default: the latest ended)")

    payment = sub.add_parser("payment", help="payments").add_subparsers(dest="action", required=True)
    record = payment.add_parser("record", help="record a payment received for an account")
    record.add_argument("--account", required=True, help="billing account, e.g. ACC-0001")
    record.add_argument("--amount", required=True, help="amount in the currency's units, e.g. 540.00")
    record.add_argument("--currency", default="GBP", help="ISO 4217 currency (default GBP)")
    record.add_argument("--payment-id", help="the gateway's payment id (default: a new one)")

    order = sub.add_parser("order", help="product orders (TMF622)").add_subparsers(
        dest="action", required=True
    )
    place = order.add_parser("place", help="order a product offering between two sites")
    place.add_argument("--customer", required=True, help="customer id, e.g. CUST-0001")
    place.add_argument("--offering", required=True, help="product offering id, e.g. PO-FIBRE-1G")
    place.add_argument("--from", dest="a_site", required=True, help="A-end site, e.g. SITE-LON")
    place.add_argument("--to", dest="z_site", required=True, help="Z-end site, e.g. SITE-MAN")
    terminate = order.add_parser("terminate", help="end a service the customer holds (action delete)")
    terminate.add_argument("service_id", help="the service to end, e.g. SVC-0001")
    terminate.add_argument("--customer", required=True, help="customer holding it, e.g. CUST-0001")
    terminate.add_argument("--reason", default="", help="why")
    cancel = order.add_parser("cancel", help="cancel an order that is not completed yet")
    cancel.add_argument("order_id")
    cancel.add_argument("--reason", default="", help="why")
    olist = order.add_parser("list", help="recent orders and their states")
    olist.add_argument("--limit", type=int, default=20)

    sales_cmd = sub.add_parser("sales", help="sales figures").add_subparsers(dest="action", required=True)
    sales_report = sales_cmd.add_parser("report", help="orders, churn and revenue by product and day")
    sales_report.add_argument("--days", type=int, default=30, help="how many days back (default 30)")

    capacity = sub.add_parser("capacity", help="capacity forecasts").add_subparsers(
        dest="action", required=True
    )
    capacity_report = capacity.add_parser("report", help="time to exhaustion per resource, worst first")
    capacity_report.add_argument("--limit", type=int, default=30)

    bench = sub.add_parser("bench", help="measure the system against a same-run baseline")
    bench_what = bench.add_subparsers(dest="action", required=True)
    alarms = bench_what.add_parser("alarms", help="alarm handling: throughput and alarm-to-ticket latency")
    alarms.add_argument("--count", type=int, default=20000, help="alarms to publish (default 20000)")
    alarms.add_argument(
        "--rate", type=float, default=None, help="alarms per second (default: as fast as possible)"
    )
    usage = bench_what.add_parser("usage", help="usage rating: throughput and usage-to-rated latency")
    usage.add_argument("--count", type=int, default=200000, help="usage records to publish (default 200000)")
    usage.add_argument(
        "--rate", type=float, default=None, help="usage records per second (default: as fast as possible)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ossbss`` command."""
    args = parser().parse_args(argv)
    try:
        settings = _settings()
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "up":
            return asyncio.run(_up(args))
        if args.command == "topology":
            return _topology_check(args) if args.action == "check" else asyncio.run(_topology_apply(args))
        if args.command == "events":
            return _events_schema(args)
        if args.command == "tail":
            return asyncio.run(_tail(args))
        if args.command == "alarm":
            actions = {"ack": _alarm_ack, "clear": _alarm_clear, "list": _alarm_list}
            return asyncio.run(actions[args.action](args))
        if args.command == "workorder":
            return asyncio.run(_workorder_report(args) if args.action == "report" else _workorder_list(args))
        if args.command == "resource":
            return asyncio.run(_resource_state(args))
        if args.command == "receive":
            return asyncio.run(_receive(args))
        if args.command == "cdr":
            return asyncio.run(_cdr_load(args))
        if args.command == "probe":
            return asyncio.run(_probe(args))
        if args.command == "order":
            return asyncio.run(_order(args))
        if args.command == "capacity":
            return asyncio.run(_capacity_report(args))
        if args.command == "sales":
            return asyncio.run(_sales_report(args))
        if args.command == "payment":
            return asyncio.run(_payment_record(args))
        if args.command == "billing":
            return asyncio.run(_billing_run(args))
        if args.command == "bench":
            return asyncio.run(_bench(args))
    except TopologyError as exc:
        print("ossbss: topology invalid:\n  " + "\n  ".join(exc.problems), file=sys.stderr)
        return 1
    except (UsageError, InfraError, NoRunningSystem, TopologyViolation) as exc:
        print(f"ossbss: {exc}", file=sys.stderr)
        return 2
    except KafkaError as exc:
        print(f"ossbss: Kafka: {exc}; is the broker at KAFKA_BOOTSTRAP_SERVERS up?", file=sys.stderr)
        return 2
    except asyncpg.PostgresError as exc:
        print(f"ossbss: PostgreSQL refused: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        said = str(exc)  # a port we cannot listen on names itself; anything else is a connection
        print(
            f"ossbss: {said}" if said.startswith("cannot listen") else f"ossbss: cannot connect: {said}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
