"""SNMP trap receiver: SNMPv2c (and v1) notifications over UDP, through pysnmp's asyncio engine,
into X.733 alarms on the inventory's resources.

linkDown / linkUp raise and clear a link alarm: the agent is the node (its management address, or
the ``snmpTrapAddress`` varbind a proxy adds), and the ifIndex varbind names the node's interface
that terminates the link. Other notifications follow :data:`TRAP_MAP` and are about the agent's
node; the UPS-MIB alarm table's traps raise or clear the well-known alarm they add or remove
(:data:`UPS_ALARMS`). See docs/receivers.md for the tables and how to point a device at the receiver.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

import structlog
from pyasn1.type import univ
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv

from events import Envelope, EventPayload
from events.network import ProbeAlarmCleared, ProbeAlarmRaised
from events.x733 import AlarmType, PerceivedSeverity, ProbableCause
from producers.receivers.common import (
    AlarmAction,
    AlarmSpec,
    InputRejected,
    Outlet,
    PublisherLike,
    ReceiverCounters,
    Resource,
    ResourceDirectory,
    alarm_event,
    count_rejection,
)
from runtime.settings import Settings

COMPONENT = "snmp-receiver"
HANDLES = ()
PUBLISHES = (ProbeAlarmRaised, ProbeAlarmCleared)
SOURCE = "/network/snmp-receiver"
log = structlog.get_logger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
"""SNMPv2-MIB snmpTrapOID.0: which notification this is (second varbind of a v2c trap)."""
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
"""SNMP-COMMUNITY-MIB snmpTrapAddress.0: the original agent, added by proxies and v1 conversion."""
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
# Interface table columns whose instance suffix is the ifIndex (ifDescr, ifType, ..., ifName).
IF_COLUMNS = ("1.3.6.1.2.1.2.2.1.", "1.3.6.1.2.1.31.1.1.1.")
IF_STATUS = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}


class Scope(StrEnum):
    """What a trap's alarm is on: the link behind the ifIndex varbind, or the agent's node."""

    LINK = "link"
    NODE = "node"


@dataclass(frozen=True)
class TrapMapping:
    """What one notification OID does: raise or clear an alarm described by ``alarm`` (None: the
    UPS-MIB well-known alarm its ``upsAlarmDescr`` varbind names)."""

    name: str
    action: AlarmAction
    scope: Scope
    alarm: AlarmSpec | None


def _raise(name: str, scope: Scope, alarm: AlarmSpec | None) -> TrapMapping:
    return TrapMapping(name, AlarmAction.RAISE, scope, alarm)


def _clear(name: str, scope: Scope, alarm: AlarmSpec | None) -> TrapMapping:
    return TrapMapping(name, AlarmAction.CLEAR, scope, alarm)


_LINK_DOWN = AlarmSpec(
    AlarmType.COMMUNICATIONS, ProbableCause.LINK_FAILURE, PerceivedSeverity.CRITICAL, True, "interface down"
)
_RESTART = AlarmSpec(
    AlarmType.PROCESSING_ERROR,
    ProbableCause.SOFTWARE_ERROR,
    PerceivedSeverity.WARNING,
    False,
    "agent reinitialised: configuration may have changed",
)
_AUTH_FAILURE = AlarmSpec(
    AlarmType.SECURITY_VIOLATION,
    ProbableCause.AUTHENTICATION_FAILURE,
    PerceivedSeverity.WARNING,
    False,
    "SNMP request with a wrong community or credentials",
)
_ENTITY_DISABLED = AlarmSpec(
    AlarmType.EQUIPMENT,
    ProbableCause.EQUIPMENT_MALFUNCTION,
    PerceivedSeverity.MAJOR,
    True,
    "physical entity operationally disabled",
)
_BGP_DOWN = AlarmSpec(
    AlarmType.COMMUNICATIONS,
    ProbableCause.COMMUNICATIONS_SUBSYSTEM_FAILURE,
    PerceivedSeverity.MAJOR,
    False,
    "BGP session left the established state",
)
_THRESHOLD = AlarmSpec(
    AlarmType.QUALITY_OF_SERVICE,
    ProbableCause.THRESHOLD_CROSSED,
    PerceivedSeverity.MINOR,
    False,
    "event MIB trigger threshold crossed",
)
_ON_BATTERY = AlarmSpec(
    AlarmType.ENVIRONMENTAL,
    ProbableCause.COMMERCIAL_POWER_FAILURE,
    PerceivedSeverity.MAJOR,
    False,
    "UPS running on battery",
)
_BATTERY_LOW = AlarmSpec(
    AlarmType.ENVIRONMENTAL,
    ProbableCause.BATTERY_DISCHARGING,
    PerceivedSeverity.CRITICAL,
    True,
    "UPS battery low",
)
_BATTERY_DEPLETED = replace(_BATTERY_LOW, specific_problem="UPS battery depleted")
_BATTERY_BAD = AlarmSpec(
    AlarmType.EQUIPMENT,
    ProbableCause.EQUIPMENT_MALFUNCTION,
    PerceivedSeverity.MAJOR,
    False,
    "UPS battery needs replacing",
)
_UPS_TEMPERATURE = AlarmSpec(
    AlarmType.ENVIRONMENTAL,
    ProbableCause.HIGH_TEMPERATURE,
    PerceivedSeverity.MAJOR,
    False,
    "UPS temperature out of tolerance",
)
_UPS_INPUT_BAD = AlarmSpec(
    AlarmType.ENVIRONMENTAL,
    ProbableCause.POWER_PROBLEM,
    PerceivedSeverity.MINOR,
    False,
    "UPS input out of tolerance",
)
_UPS_OUTPUT_BAD = AlarmSpec(
    AlarmType.EQUIPMENT,
    ProbableCause.POWER_PROBLEM,
    PerceivedSeverity.CRITICAL,
    True,
    "UPS output out of tolerance",
)
_UPS_OUTPUT_OFF = replace(_UPS_OUTPUT_BAD, specific_problem="UPS output off")
_UPS_OVERLOAD = AlarmSpec(
    AlarmType.EQUIPMENT,
    ProbableCause.RESOURCE_AT_OR_NEARING_CAPACITY,
    PerceivedSeverity.MAJOR,
    False,
    "UPS output overloaded",
)
_UPS_FAN = AlarmSpec(
    AlarmType.EQUIPMENT,
    ProbableCause.COOLING_FAN_FAILURE,
    PerceivedSeverity.MAJOR,
    False,
    "UPS fan failed",
)

TRAP_MAP: Mapping[str, TrapMapping] = {
    # SNMPv2-MIB / IF-MIB generic traps (RFC 3418, RFC 2863)
    "1.3.6.1.6.3.1.1.5.3": _raise("linkDown", Scope.LINK, _LINK_DOWN),
    "1.3.6.1.6.3.1.1.5.4": _clear("linkUp", Scope.LINK, _LINK_DOWN),
    "1.3.6.1.6.3.1.1.5.1": _raise("coldStart", Scope.NODE, _RESTART),
    "1.3.6.1.6.3.1.1.5.2": _raise("warmStart", Scope.NODE, _RESTART),
    "1.3.6.1.6.3.1.1.5.5": _raise("authenticationFailure", Scope.NODE, _AUTH_FAILURE),
    # ENTITY-STATE-MIB (RFC 4268): entStateNotifications 1 is enabled, 2 disabled
    "1.3.6.1.2.1.131.0.1": _clear("entStateOperEnabled", Scope.NODE, _ENTITY_DISABLED),
    "1.3.6.1.2.1.131.0.2": _raise("entStateOperDisabled", Scope.NODE, _ENTITY_DISABLED),
    # BGP4-MIB (RFC 4273)
    "1.3.6.1.2.1.15.0.2": _raise("bgpBackwardTransNotification", Scope.NODE, _BGP_DOWN),
    "1.3.6.1.2.1.15.0.1": _clear("bgpEstablishedNotification", Scope.NODE, _BGP_DOWN),
    # DISMAN-EVENT-MIB (RFC 2981)
    "1.3.6.1.2.1.88.2.0.2": _raise("mteTriggerRising", Scope.NODE, _THRESHOLD),
    "1.3.6.1.2.1.88.2.0.3": _clear("mteTriggerFalling", Scope.NODE, _THRESHOLD),
    # UPS-MIB (RFC 1628): upsTraps is 1.3.6.1.2.1.33.2, without the .0 of SMIv2 notification trees
    "1.3.6.1.2.1.33.2.1": _raise("upsTrapOnBattery", Scope.NODE, _ON_BATTERY),
    "1.3.6.1.2.1.33.2.3": _raise("upsTrapAlarmEntryAdded", Scope.NODE, None),
    "1.3.6.1.2.1.33.2.4": _clear("upsTrapAlarmEntryRemoved", Scope.NODE, None),
}
"""Notification OID → the alarm it raises or clears. A raise and its clear share an AlarmSpec, so
they share the alarm's reduction key. The UPS alarm table's traps carry no AlarmSpec of their own:
their ``upsAlarmDescr`` varbind names the condition (:data:`UPS_ALARMS`)."""

UPS_ALARM_DESCR = "1.3.6.1.2.1.33.1.6.2.1.2"
"""UPS-MIB upsAlarmDescr, instance upsAlarmId: which well-known alarm a table entry is."""
_UPS_WELL_KNOWN = "1.3.6.1.2.1.33.1.6.3."

UPS_ALARMS: Mapping[str, tuple[str, AlarmSpec]] = {
    _UPS_WELL_KNOWN + "1": ("upsAlarmBatteryBad", _BATTERY_BAD),
    _UPS_WELL_KNOWN + "2": ("upsAlarmOnBattery", _ON_BATTERY),
    _UPS_WELL_KNOWN + "3": ("upsAlarmLowBattery", _BATTERY_LOW),
    _UPS_WELL_KNOWN + "4": ("upsAlarmDepletedBattery", _BATTERY_DEPLETED),
    _UPS_WELL_KNOWN + "5": ("upsAlarmTempBad", _UPS_TEMPERATURE),
    _UPS_WELL_KNOWN + "6": ("upsAlarmInputBad", _UPS_INPUT_BAD),
    _UPS_WELL_KNOWN + "7": ("upsAlarmOutputBad", _UPS_OUTPUT_BAD),
    _UPS_WELL_KNOWN + "8": ("upsAlarmOutputOverload", _UPS_OVERLOAD),
    _UPS_WELL_KNOWN + "14": ("upsAlarmUpsOutputOff", _UPS_OUTPUT_OFF),
    _UPS_WELL_KNOWN + "16": ("upsAlarmFanFailure", _UPS_FAN),
}
"""UPS-MIB well-known alarm (the upsAlarmDescr value) → its name and the alarm an
upsTrapAlarmEntryAdded raises and an upsTrapAlarmEntryRemoved clears. upsAlarmOnBattery is the
alarm upsTrapOnBattery raises, so its removal from the table clears it."""

Varbinds = tuple[tuple[str, int | str], ...]


@dataclass(frozen=True)
class Trap:
    """A received notification, its values already plain: integers as int, everything else as text
    (OIDs dotted, addresses dotted-quad)."""

    source_address: str
    varbinds: Varbinds

    def value(self, oid: str) -> int | str | None:
        return next((v for o, v in self.varbinds if o == oid), None)


def agent_node(trap: Trap, directory: ResourceDirectory) -> Resource:
    """The node that sent the trap: ``snmpTrapAddress`` when present, else the UDP source."""
    reported = trap.value(SNMP_TRAP_ADDRESS)
    address = str(reported) if reported is not None else trap.source_address
    node = directory.node_at(address)
    if node is None:
        raise InputRejected("unknown agent", agent=address)
    return node


def if_index_of(trap: Trap) -> int | None:
    """The interface a trap is about: the ifIndex varbind's value, else the instance suffix of any
    interface-table varbind (ifAdminStatus.5 → 5)."""
    for oid, value in trap.varbinds:
        if oid.startswith(IF_INDEX + ".") and isinstance(value, int):
            return value
    for oid, _ in trap.varbinds:
        for column in IF_COLUMNS:
            if oid.startswith(column):
                suffix = oid[len(column) :].split(".")
                if len(suffix) == 2 and suffix[1].isdigit():
                    return int(suffix[1])
    return None


def _interface_details(trap: Trap, if_index: int) -> dict[str, Any]:
    details: dict[str, Any] = {"ifIndex": if_index}
    for name, column in (("ifAdminStatus", IF_ADMIN_STATUS), ("ifOperStatus", IF_OPER_STATUS)):
        value = trap.value(f"{column}.{if_index}")
        if isinstance(value, int):
            details[name] = IF_STATUS.get(value, str(value))
    return details


def ups_alarm_of(trap: Trap) -> tuple[AlarmSpec, dict[str, Any]]:
    """The alarm a UPS alarm table trap is about, from its ``upsAlarmDescr`` varbind, and the
    details naming it; InputRejected when the varbind is missing or names an unmapped alarm."""
    for oid, value in trap.varbinds:
        if oid.startswith(UPS_ALARM_DESCR + "."):
            known = UPS_ALARMS.get(str(value))
            if known is None:
                raise InputRejected("unmapped UPS alarm", ups_alarm=str(value))
            name, spec = known
            alarm_id = oid[len(UPS_ALARM_DESCR) + 1 :]
            details: dict[str, Any] = {"upsAlarm": name, "upsAlarmDescr": str(value)}
            if alarm_id.isascii() and alarm_id.isdigit():
                details["upsAlarmId"] = int(alarm_id)
            return spec, details
    raise InputRejected("no upsAlarmDescr")


def interpret(trap: Trap, directory: ResourceDirectory, at: datetime) -> Envelope[EventPayload]:
    """The alarm event a trap means; InputRejected says why there is none."""
    trap_oid = trap.value(SNMP_TRAP_OID)
    if trap_oid is None:
        raise InputRejected("no snmpTrapOID")
    mapping = TRAP_MAP.get(str(trap_oid))
    if mapping is None:
        raise InputRejected("unmapped trap OID", trap_oid=str(trap_oid))
    node = agent_node(trap, directory)
    details: dict[str, Any] = {"trap": mapping.name, "trapOid": str(trap_oid)}
    resource = node
    if mapping.alarm is None:
        spec, ups_details = ups_alarm_of(trap)
        details |= ups_details
    else:
        spec = mapping.alarm
    if mapping.scope is Scope.LINK:
        if_index = if_index_of(trap)
        if if_index is None:
            raise InputRejected("no ifIndex")
        link = directory.link_at_if_index(node, if_index)
        if link is None:
            raise InputRejected("unknown ifIndex", node=node.id, if_index=if_index)
        resource = link
        details |= _interface_details(trap, if_index)
        if details.get("ifAdminStatus") == "down":
            spec = replace(spec, specific_problem="interface administratively down")
    return alarm_event(
        mapping.action,
        resource,
        spec,
        at=at,
        source=SOURCE,
        source_system_id=node.id,
        details=details,
    )


def plain(value: Any) -> int | str:
    """A pysnmp varbind value as plain Python: int for every INTEGER-based type (Counter32,
    TimeTicks, ...), the dotted text of OIDs and addresses, the text of strings."""
    if isinstance(value, univ.Integer):
        return int(value)
    if isinstance(value, univ.ObjectIdentifier):
        return str(value)
    return str(value.prettyPrint())


# Engine counters whose increase says why pysnmp dropped a message without calling us.
_DROP_REASONS = (
    ("snmpInBadCommunityNames", "unknown community"),
    ("snmpInBadVersions", "unsupported SNMP version"),
    ("snmpInASNParseErrs", "undecodable message"),
)


class _DatagramWatch(Protocol):
    def handle(self, datagram: bytes, process: Callable[[], None]) -> None: ...


class _Watched:
    """Hands each datagram of pysnmp's transport to a watch, which lets pysnmp process it at once
    (pysnmp would defer it to a callback of its own) and sees what became of it."""

    watch: _DatagramWatch
    _callback_function: Callable[[Any, Any, bytes], None]

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        self.watch.handle(datagram, lambda: self._callback_function(self, address, datagram))


class _WatchedUdp(_Watched, udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's IPv4 UDP transport, watched."""


class _WatchedUdp6(_Watched, udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    """pysnmp's IPv6 UDP transport, watched."""


class SnmpTrapReceiver:
    """Listens for traps on ``host:port`` (UDP; port 0 picks a free port) and publishes the
    alarms they mean. Only the configured v1/v2c ``community`` is accepted."""

    kind = "snmp"

    def __init__(
        self,
        publisher: PublisherLike,
        directory: ResourceDirectory,
        *,
        host: str = "127.0.0.1",
        port: int = 1162,
        community: str = "public",
    ):
        self.directory = directory
        self.host = host
        self.port = port
        self.community = community
        self.counters = ReceiverCounters()
        self.outlet = Outlet(publisher, self.counters, COMPONENT)
        self._engine: Any = None
        self._delivered = 0
        self._bound: tuple[str, int] | None = None

    @property
    def bound(self) -> str | None:
        """``udp://host:port`` once listening."""
        if self._bound is None:
            return None
        host, port = self._bound
        return f"udp://{'[' + host + ']' if ':' in host else host}:{port}"

    async def start(self) -> str:
        """Bind the UDP socket and set up the SNMP engine; returns :attr:`bound`."""
        if self._engine is not None and self.bound is not None:
            return self.bound
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._bound[1] if self._bound else self.port))
        except OSError as exc:
            sock.close()
            raise OSError(
                f"cannot listen for SNMP traps on udp {self.host}:{self.port}: {exc.strerror}"
            ) from None
        sock.setblocking(False)
        snmp = engine.SnmpEngine()
        transport: _WatchedUdp | _WatchedUdp6
        if family == socket.AF_INET6:
            transport, domain = _WatchedUdp6(), udp6.DOMAIN_NAME
        else:
            transport, domain = _WatchedUdp(), udp.DOMAIN_NAME
        transport.watch = self
        config.add_transport(snmp, domain, transport.open_server_mode(sock=sock))
        config.add_v1_system(snmp, "ossbss-trap-receiver", self.community)
        ntfrcv.NotificationReceiver(snmp, self._on_notification)
        self._engine = snmp
        self._bound = sock.getsockname()[:2]
        log.info("snmp trap receiver listening", address=self.bound)
        return self.bound or ""

    async def run(self) -> None:
        """Receive traps until cancelled."""
        await self.start()
        try:
            await self.outlet.run()
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening (the bound port is kept for a restart)."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    def _engine_drops(self) -> dict[str, int]:
        """The engine's counters of messages it dropped, by counter name."""
        names = [name for name, _ in _DROP_REASONS]
        symbols = self._engine.get_mib_builder().import_symbols("__SNMPv2-MIB", *names)
        return {name: int(symbol.syntax) for name, symbol in zip(names, symbols, strict=True)}

    def handle(self, datagram: bytes, process: Callable[[], None]) -> None:
        """Count a datagram, let pysnmp process it, and when it did not reach
        :meth:`_on_notification`, count why (the engine's drop counters tell)."""
        self.counters.received += 1
        if self._engine is None:
            count_rejection(self.counters, COMPONENT, "receiver stopping", datagram)
            return
        delivered, before = self._delivered, self._engine_drops()
        try:
            process()
        except Exception as exc:
            count_rejection(
                self.counters, COMPONENT, "undecodable message", datagram, error=type(exc).__name__
            )
            return
        if self._delivered > delivered or self._engine is None:
            return
        after = self._engine_drops()
        reason = next((r for name, r in _DROP_REASONS if after[name] > before[name]), "not a notification")
        count_rejection(self.counters, COMPONENT, reason, datagram)

    def _on_notification(
        self,
        snmp: Any,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Any,
        cb_ctx: Any,
    ) -> None:
        """pysnmp's callback for an accepted notification: map it and queue the alarm."""
        self._delivered += 1
        _, address = snmp.message_dispatcher.get_transport_info(state_reference)
        try:
            trap = Trap(str(address[0]), tuple((str(oid), plain(value)) for oid, value in varbinds))
            event = interpret(trap, self.directory, datetime.now(UTC))
        except InputRejected as rejected:
            count_rejection(
                self.counters, COMPONENT, rejected.reason, **({"source": str(address[0])} | rejected.context)
            )
            return
        except Exception as exc:  # a malformed trap must not stop the receiver
            count_rejection(
                self.counters, COMPONENT, "malformed trap", source=str(address[0]), error=type(exc).__name__
            )
            return
        self.outlet.offer([event])


def from_settings(
    settings: Settings, publisher: PublisherLike, network: Mapping[str, Any]
) -> SnmpTrapReceiver:
    """The receiver ``settings`` describe (``receiver_host``, ``snmp_port``, ``snmp_community``)."""
    return SnmpTrapReceiver(
        publisher,
        ResourceDirectory.from_network(network),
        host=settings.receiver_host,
        port=settings.snmp_port,
        community=settings.snmp_community,
    )
