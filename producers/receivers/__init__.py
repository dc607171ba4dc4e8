"""Protocol receivers: what real network equipment sends, turned into the network's events.

- ``snmp``: SNMP v2c/v1 traps on UDP ``receiver_host:snmp_port`` → ProbeAlarmRaised / Cleared.
- ``syslog``: RFC 5424 / 3164 on UDP and TCP ``receiver_host:syslog_port`` → ProbeAlarmRaised /
  Cleared, by the rules of ``syslog_rules_file``.
- ``ves``: ONAP VES 7 over HTTP on ``receiver_host:ves_port`` → alarms and KpiSampled.
- ``cdr``: CSV files dropped in ``cdr_inbox`` → UsageRecorded.

The composition root builds them with :func:`build` (or :func:`build_enabled` for the kinds
``settings.receivers`` names), passing its network description and a publisher factory (its
``Bus.publisher``); each receiver publishes as its own component (:data:`COMPONENTS`), and runs
until cancelled. See docs/receivers.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from producers.receivers import cdr, snmp, syslog, ves
from producers.receivers.common import PublisherLike, ReceiverCounters
from runtime.settings import Settings


class Receiver(Protocol):
    """What every receiver offers the process that runs it."""

    kind: str
    counters: ReceiverCounters

    @property
    def bound(self) -> str | None:
        """Where it listens (``udp://...``, ``syslog://...``, ``http://...``, ``file://...``), once
        started; None before."""
        ...

    async def start(self) -> str:
        """Bind (a port 0 setting picks a free port) and return :attr:`bound`; fails at once, with
        one line naming the address, when the port is taken."""
        ...

    async def run(self) -> None:
        """Start if needed and serve until cancelled."""
        ...


PublisherFactory = Callable[[str], PublisherLike]
"""Gives the publisher of a component name: ``Bus.publisher``."""

ReceiverFactory = Callable[[Settings, PublisherLike, Mapping[str, Any]], Receiver]

RECEIVERS: Mapping[str, ReceiverFactory] = {
    "snmp": snmp.from_settings,
    "syslog": syslog.from_settings,
    "ves": ves.from_settings,
    "cdr": cdr.from_settings,
}
"""Receiver kind → factory taking ``(settings, publisher, network description)``."""

COMPONENTS: Mapping[str, str] = {
    "snmp": snmp.COMPONENT,
    "syslog": syslog.COMPONENT,
    "ves": ves.COMPONENT,
    "cdr": cdr.COMPONENT,
}
"""Receiver kind → the component (topology.yaml) it publishes as."""

COMPONENT_MODULES = (snmp, syslog, ves, cdr)
"""The receiver modules, each naming its COMPONENT, HANDLES and PUBLISHES."""


def enabled_kinds(settings: Settings) -> list[str]:
    """The kinds ``settings.receivers`` names (comma-separated, empty for none); ValueError names
    an unknown one."""
    kinds = [k.strip().lower() for k in settings.receivers.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in RECEIVERS]
    if unknown:
        raise ValueError(
            f"OSSBSS_RECEIVERS: unknown receiver {', '.join(unknown)} (known: {', '.join(RECEIVERS)})"
        )
    return list(dict.fromkeys(kinds))


def build(
    kind: str, *, settings: Settings, publisher_factory: PublisherFactory, network: Mapping[str, Any]
) -> Receiver:
    """The receiver of ``kind``, publishing through ``publisher_factory(COMPONENTS[kind])``.
    ValueError for an unknown kind, an inconsistent network description or a bad rules file."""
    factory = RECEIVERS.get(kind)
    if factory is None:
        raise ValueError(f"unknown receiver {kind!r} (known: {', '.join(RECEIVERS)})")
    return factory(settings, publisher_factory(COMPONENTS[kind]), network)


def build_enabled(
    *, settings: Settings, publisher_factory: PublisherFactory, network: Mapping[str, Any]
) -> list[Receiver]:
    """Every receiver ``settings.receivers`` names."""
    return [
        build(kind, settings=settings, publisher_factory=publisher_factory, network=network)
        for kind in enabled_kinds(settings)
    ]


def status_line(receiver: Receiver) -> str:
    """``snmp udp://127.0.0.1:1162: received 12, published 10, ignored 0, rejected 2 (...)``."""
    return f"{receiver.kind} {receiver.bound or '(not listening)'}: {receiver.counters.line()}"


async def report_status(running: Sequence[Receiver], emit: Callable[[str], None], every: float = 5.0) -> None:
    """Emit each receiver's :func:`status_line` every ``every`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every)
        for receiver in running:
            emit(status_line(receiver))


__all__ = [
    "COMPONENTS",
    "COMPONENT_MODULES",
    "RECEIVERS",
    "PublisherFactory",
    "Receiver",
    "ReceiverCounters",
    "build",
    "build_enabled",
    "enabled_kinds",
    "report_status",
    "status_line",
]
