"""Syslog receiver: RFC 5424 and RFC 3164 messages over UDP (one per datagram) and TCP (RFC 6587
octet counting or newline framing), turned into X.733 alarms by the match rules of a YAML file
(``demo/syslog-rules.yaml``).

The first rule whose regex is found in a message decides: raise or clear an alarm on the resource
the rule's named groups point at (``resource``: a node or link by id, name or hostname;
``interface``: the link that interface terminates on the sending node), or else on the sending
node itself. The sending node is the message's HOSTNAME, or the sender's address. Messages no rule
matches are counted as ignored; neither they nor any message text are ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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

COMPONENT = "syslog-receiver"
HANDLES = ()
PUBLISHES = (ProbeAlarmRaised, ProbeAlarmCleared)
SOURCE = "/network/syslog-receiver"
MAX_MESSAGE = 64 * 1024
"""Longest message accepted, in bytes (RFC 5425 asks receivers to take at least 2048)."""
log = structlog.get_logger(__name__)

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


class SyslogFormat(StrEnum):
    RFC5424 = "rfc5424"
    RFC3164 = "rfc3164"


@dataclass(frozen=True)
class SyslogMessage:
    """A parsed syslog message. ``text`` is what rules are matched against: the MSG part of an
    RFC 5424 message; everything after the priority of an RFC 3164 one, whose split between
    timestamp, host, tag and content varies too much between vendors to rely on."""

    format: SyslogFormat
    facility: int
    severity: int
    text: str
    timestamp: datetime | None = None
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


_PRI = re.compile(rb"<(\d{1,3})>")
# RFC 3164 TIMESTAMP ("Mmm dd hh:mm:ss"), tolerating fractions and a zone as some devices send.
_BSD_TIMESTAMP = re.compile(
    r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Z]{2,5})? "
)
_BSD_HOSTNAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9._:-]*) ")
_BSD_TAG = re.compile(r"([^\s:\[\]]{1,48})(?:\[([^\]\s]{1,32})\])?: ?")


def parse(raw: bytes) -> SyslogMessage:
    """Parse one syslog message (RFC 5424 when the version ``1`` follows the priority, else RFC
    3164). A message without a priority gets ``<13>``, as RFC 3164 asks of relays."""
    raw = raw.rstrip(b"\r\n\x00")
    if not raw.strip():
        raise InputRejected("empty message")
    if len(raw) > MAX_MESSAGE:
        raise InputRejected("message too long")
    match = _PRI.match(raw)
    if match is not None:
        pri = int(match[1])
        if pri > 191 or (len(match[1]) > 1 and match[1].startswith(b"0")):
            raise InputRejected("bad priority")
        rest = raw[match.end() :]
    elif raw.startswith(b"<"):
        raise InputRejected("bad priority")
    else:
        pri, rest = 13, raw
    facility, severity = divmod(pri, 8)
    text = rest.decode("utf-8", "replace")
    if text.startswith("1 "):
        return _rfc5424(facility, severity, text[2:])
    return _rfc3164(facility, severity, text)


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _rfc5424(facility: int, severity: int, text: str) -> SyslogMessage:
    parts = text.split(" ", 5)
    if len(parts) < 5:
        raise InputRejected("truncated RFC 5424 header")
    timestamp, hostname, app_name, procid, msgid = parts[:5]
    rest = parts[5] if len(parts) == 6 else "-"
    at = None
    if timestamp != "-":
        try:
            at = datetime.fromisoformat(timestamp)
        except ValueError:
            raise InputRejected("bad timestamp") from None
        if at.tzinfo is None:
            raise InputRejected("bad timestamp")
    structured, message = _structured_data(rest)
    return SyslogMessage(
        SyslogFormat.RFC5424,
        facility,
        severity,
        message.removeprefix("\ufeff"),
        at,
        _nil(hostname),
        _nil(app_name),
        _nil(procid),
        _nil(msgid),
        structured,
    )


def _structured_data(text: str) -> tuple[dict[str, dict[str, str]], str]:
    """RFC 5424 STRUCTURED-DATA (``-`` or ``[id name="value" ...]...``) and the MSG after it."""
    if text.startswith("-"):
        return {}, text[2:] if text.startswith("- ") else text[1:]
    elements: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(text) and text[i] == "[":
        sd_id, i = _token(text, i + 1, " ]")
        params: dict[str, str] = {}
        while True:
            if i >= len(text):
                raise InputRejected("bad structured data")
            if text[i] == "]":
                i += 1
                break
            if text[i] != " ":
                raise InputRejected("bad structured data")
            name, i = _token(text, i + 1, "=")
            if not text.startswith('="', i):
                raise InputRejected("bad structured data")
            value, i = _quoted(text, i + 2)
            params[name] = value
        elements[sd_id] = params
    if not elements:
        raise InputRejected("bad structured data")
    return elements, text[i + 1 :] if text[i : i + 1] == " " else text[i:]


def _token(text: str, start: int, stops: str) -> tuple[str, int]:
    end = start
    while end < len(text) and text[end] not in stops and text[end] not in '"[':
        end += 1
    if end == start or end - start > 32 or end >= len(text):
        raise InputRejected("bad structured data")
    return text[start:end], end


def _quoted(text: str, start: int) -> tuple[str, int]:
    """A PARAM-VALUE up to its closing quote, with ``\\"``, ``\\\\`` and ``\\]`` unescaped."""
    value: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\]':
            value.append(text[i + 1])
            i += 2
        elif char == '"':
            return "".join(value), i + 1
        else:
            value.append(char)
            i += 1
    raise InputRejected("bad structured data")


def _rfc3164(facility: int, severity: int, text: str) -> SyslogMessage:
    """RFC 3164, leniently: TIMESTAMP and HOSTNAME only when they are where the RFC puts them (a
    Cisco device without ``logging origin-id`` sends neither, and is known by its address). Its
    timestamp has no year nor zone, so the receiver's clock dates the alarm."""
    hostname = app_name = procid = None
    rest = text
    stamp = _BSD_TIMESTAMP.match(rest)
    if stamp is not None:
        rest = rest[stamp.end() :]
        host = _BSD_HOSTNAME.match(rest)
        if host is not None and not host[1].endswith(":"):
            hostname, rest = host[1], rest[host.end() :]
    tag = _BSD_TAG.match(rest)
    if tag is not None and not tag[1].isdigit():  # digits: a Cisco sequence number, not a tag
        app_name, procid = tag[1], tag[2]
    return SyslogMessage(SyslogFormat.RFC3164, facility, severity, text, None, hostname, app_name, procid)


# Rules ------------------------------------------------------------------------------------------


class SyslogRule(BaseModel):
    """One match rule of the rules file: when ``match`` is found in a message, ``action`` the
    alarm that ``alarm_type``, ``probable_cause`` and the resource identify."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Names the rule in logs and alarm details.")
    match: re.Pattern[str] = Field(
        description="Python regex searched in the message; named groups `resource` and `interface` "
        "say what the alarm is on, other named groups may be used in `specific_problem`."
    )
    action: AlarmAction = Field(description="raise or clear.")
    alarm_type: AlarmType = Field(description="X.733 alarm type.")
    probable_cause: ProbableCause = Field(description="X.733 probable cause.")
    severity: PerceivedSeverity | None = Field(
        default=None, description="Perceived severity of a raise (not 'cleared'); unused by a clear."
    )
    service_affecting: bool = Field(default=False, description="Whether a raise interrupts traffic.")
    specific_problem: str = Field(
        default="", max_length=500, description="Text of the alarm; {group} inserts a named group."
    )

    @model_validator(mode="after")
    def _raise_has_severity(self) -> Self:
        if self.action is AlarmAction.RAISE and self.severity in (None, PerceivedSeverity.CLEARED):
            raise ValueError("a raise rule needs a severity other than 'cleared'")
        return self


class _RulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[SyslogRule]


def load_rules(path: Path) -> tuple[SyslogRule, ...]:
    """Read and check a rules file; ValueError names the file and every problem in it."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    try:
        parsed = _RulesFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None
    return tuple(parsed.rules)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _reporter(message: SyslogMessage, source_address: str, directory: ResourceDirectory) -> Resource | None:
    """The node that sent the message: its HOSTNAME (or that name's first label), else its address."""
    if message.hostname:
        for name in (message.hostname, message.hostname.split(".", 1)[0]):
            node = directory.node_named(name)
            if node is not None:
                return node
    return directory.node_at(source_address)


def interpret(
    message: SyslogMessage,
    source_address: str,
    rules: Sequence[SyslogRule],
    directory: ResourceDirectory,
    received_at: datetime,
) -> Envelope[EventPayload] | None:
    """The alarm event the first matching rule makes of ``message``; None when no rule matches.
    InputRejected when a rule matches but the resource cannot be found."""
    for rule in rules:
        found = rule.match.search(message.text)
        if found is not None:
            break
    else:
        return None
    groups = {k: v for k, v in found.groupdict().items() if v}
    reporter = _reporter(message, source_address, directory)
    if "resource" in groups:
        resource = directory.named(groups["resource"])
        if resource is None:
            raise InputRejected("unknown resource", rule=rule.name)
    elif reporter is None:
        raise InputRejected("unknown host", rule=rule.name)
    elif "interface" in groups:
        resource = directory.link_at_interface(reporter, groups["interface"])
        if resource is None:
            raise InputRejected("unknown interface", rule=rule.name, node=reporter.id)
    else:
        resource = reporter
    spec = AlarmSpec(
        rule.alarm_type,
        rule.probable_cause,
        rule.severity or PerceivedSeverity.INDETERMINATE,
        rule.service_affecting,
        _PLACEHOLDER.sub(lambda m: groups.get(m[1], ""), rule.specific_problem),
    )
    details = {
        "rule": rule.name,
        "syslogFormat": message.format.value,
        "syslogFacility": message.facility,
        "syslogSeverity": SEVERITIES[message.severity],
    }
    details |= {k: v for k, v in (("appName", message.app_name), ("msgId", message.msgid)) if v}
    return alarm_event(
        rule.action,
        resource,
        spec,
        at=message.timestamp or received_at,
        source=SOURCE,
        source_system_id=reporter.id if reporter else (message.hostname or source_address),
        details=details,
    )


# Transport --------------------------------------------------------------------------------------


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_MESSAGE) -> bytes | None:
    """The next message of a TCP syslog stream (RFC 6587): octet counting (``LEN SP MSG``) when
    the frame starts with a digit, else non-transparent framing up to a newline. None at the end of
    the stream; InputRejected on a framing error, after which the stream cannot be trusted."""
    first = b"\n"
    while first in (b"\r", b"\n", b"\x00", b" ", b"\t"):
        first = await reader.read(1)
        if not first:
            return None
    if first.isdigit():
        digits = first
        while (char := await reader.read(1)) != b" ":
            if not char.isdigit() or len(digits) >= 7:
                raise InputRejected("bad octet count" if char else "truncated frame")
            digits += char
        length = int(digits)
        if not 0 < length <= limit:
            raise InputRejected("bad octet count")
        try:
            return await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            raise InputRejected("truncated frame") from None
    try:
        return first + await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as end:
        return first + end.partial  # the last message may lack its newline
    except asyncio.LimitOverrunError:
        raise InputRejected("message too long") from None


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, receiver: SyslogReceiver):
        self.receiver = receiver

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.receiver.handle(data, str(addr[0]))


class SyslogReceiver:
    """Listens for syslog on ``host:port``, UDP and TCP on the same port (port 0 picks one that is
    free for both), and publishes the alarms the rules make of the messages."""

    kind = "syslog"

    def __init__(
        self,
        publisher: PublisherLike,
        directory: ResourceDirectory,
        rules: Sequence[SyslogRule],
        *,
        host: str = "127.0.0.1",
        port: int = 1514,
    ):
        self.directory = directory
        self.rules = tuple(rules)
        self.host = host
        self.port = port
        self.counters = ReceiverCounters()
        self.outlet = Outlet(publisher, self.counters, COMPONENT)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._bound: tuple[str, int] | None = None

    @property
    def bound(self) -> str | None:
        """``syslog://host:port`` (UDP and TCP) once listening."""
        if self._bound is None:
            return None
        host, port = self._bound
        return f"syslog://{'[' + host + ']' if ':' in host else host}:{port}"

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        """A TCP and a UDP socket on the same port; with port 0, a few tries find one free for both."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        wanted = self._bound[1] if self._bound else self.port
        error: OSError | None = None
        for _ in range(1 if wanted else 20):
            tcp = socket.socket(family, socket.SOCK_STREAM)
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self.host, wanted))
                udp.bind((self.host, tcp.getsockname()[1]))
            except OSError as exc:
                tcp.close()
                udp.close()
                error = exc
                continue
            tcp.setblocking(False)
            udp.setblocking(False)
            return tcp, udp
        reason = error.strerror if error is not None else "no free port"
        raise OSError(f"cannot listen for syslog on {self.host}:{self.port}: {reason}")

    async def start(self) -> str:
        """Bind UDP and TCP; returns :attr:`bound`."""
        if self._tcp is not None and self.bound is not None:
            return self.bound
        tcp, udp = self._bind()
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp)
        self._tcp = await asyncio.start_server(self._serve_connection, sock=tcp, limit=MAX_MESSAGE + 64)
        self._bound = tcp.getsockname()[:2]
        log.info("syslog receiver listening", address=self.bound, rules=len(self.rules))
        return self.bound or ""

    async def run(self) -> None:
        """Receive messages until cancelled."""
        await self.start()
        try:
            await self.outlet.run()
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening and drop open connections (the bound port is kept for a restart)."""
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        for task in self._connections:
            task.cancel()

    def handle(self, raw: bytes, source_address: str) -> None:
        """One message from ``source_address``: parse, match, queue the alarm; count what happened."""
        self.counters.received += 1
        try:
            event = interpret(parse(raw), source_address, self.rules, self.directory, datetime.now(UTC))
        except InputRejected as rejected:
            count_rejection(
                self.counters,
                COMPONENT,
                rejected.reason,
                raw,
                **({"source": source_address} | rejected.context),
            )
            return
        except Exception as exc:  # a malformed message must not stop the receiver
            count_rejection(
                self.counters,
                COMPONENT,
                "malformed message",
                raw,
                source=source_address,
                error=type(exc).__name__,
            )
            return
        if event is None:
            self.counters.ignored += 1
        else:
            self.outlet.offer([event])

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if peer else "unknown"
        try:
            while (frame := await read_frame(reader)) is not None:
                self.handle(frame, source)
        except InputRejected as rejected:
            self.counters.received += 1
            count_rejection(self.counters, COMPONENT, rejected.reason, source=source)
        except (ConnectionError, OSError):
            pass
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()


def from_settings(settings: Settings, publisher: PublisherLike, network: Mapping[str, Any]) -> SyslogReceiver:
    """The receiver ``settings`` describe (``receiver_host``, ``syslog_port``, ``syslog_rules_file``)."""
    return SyslogReceiver(
        publisher,
        ResourceDirectory.from_network(network),
        load_rules(settings.syslog_rules_file),
        host=settings.receiver_host,
        port=settings.syslog_port,
    )
