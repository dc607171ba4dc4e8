"""CDR files: CSV usage records into UsageRecorded, resumable and published once per record.

A :class:`CdrMapping` says which columns hold the service, the quantity, the start time and the
record's stable id; :data:`ASTERISK` reads Asterisk's ``Master.csv`` and :data:`GENERIC` a file
with a header row. A ledger (JSON, beside the inbox) records per file content (sha256) how many
rows are done, so an interrupted load resumes where it stopped and a repeated load publishes
nothing again; the usage ids come from the records themselves, so even a record published twice
(a crash between the broker's acknowledgement and the ledger's write) is rated once.

Calling and called numbers are personal data: the mappings never read those columns, and no log
line or event carries any value of a rejected row, only its row number and the reason.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import structlog
from pydantic import ValidationError

from events import Envelope, EventPayload, new_event
from events.network import UsageKind, UsageRecorded
from producers.receivers.common import (
    InputRejected,
    PublisherLike,
    ReceiverCounters,
    count_rejection,
    invalid_fields,
    stable_event_id,
)
from runtime.settings import Settings

COMPONENT = "cdr-receiver"
HANDLES = ()
PUBLISHES = (UsageRecorded,)
SOURCE = "/network/cdr-receiver"
log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CdrMapping:
    """How the columns of a CDR file become a usage record.

    Columns are named by ``columns`` (files without a header row) or by the file's first row.
    Only the columns named here are read.
    """

    name: str
    service_id: str
    """Column with the TMF638 service id the usage is billed to."""
    quantity: str
    """Column with the amount used, a whole number in the kind's unit (seconds, bytes, messages)."""
    start_time: tuple[str, ...]
    """Columns with the start of the usage; the first non-empty one is used."""
    columns: tuple[str, ...] | None = None
    """Positional column names; None: the first row is a header naming them."""
    usage_kind: UsageKind | None = None
    """The kind of every record, or None to read it from ``usage_kind_column``."""
    usage_kind_column: str | None = None
    usage_id: str | None = None
    """Column with the record's stable id; None or empty: derived from the record's content."""
    usage_id_prefix: str = ""
    billable: tuple[str, frozenset[str]] | None = None
    """``(column, values)``: only rows with one of these values are usage (the others are not
    billable, and skipped); None: every row."""
    time_format: str | None = None
    """strptime format of the time columns; None: ISO 8601."""
    timezone: str = "UTC"
    """Zone of times written without an offset."""
    source_system_id: str = "cdr-files"

    def required(self) -> tuple[str, ...]:
        """The columns a row must have."""
        names = [self.service_id, self.quantity, *self.start_time]
        names += [c for c in (self.usage_kind_column, self.billable[0] if self.billable else None) if c]
        return tuple(names)


ASTERISK_COLUMNS = (
    "accountcode",
    "src",
    "dst",
    "dcontext",
    "clid",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "start",
    "answer",
    "end",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "uniqueid",
    "userfield",
)
"""Asterisk ``cdr_csv`` Master.csv columns, in order (no header row)."""

ASTERISK = CdrMapping(
    name="asterisk",
    columns=ASTERISK_COLUMNS,
    service_id="accountcode",
    quantity="billsec",
    start_time=("answer", "start"),
    usage_kind=UsageKind.VOICE,
    usage_id="uniqueid",
    usage_id_prefix="AST-",
    billable=("disposition", frozenset({"ANSWERED"})),
    time_format="%Y-%m-%d %H:%M:%S",
    timezone="UTC",
    source_system_id="asterisk-cdr",
)
"""Asterisk Master.csv: the account code is the service, billed seconds the quantity, only
ANSWERED calls bill, and the call's uniqueid is the usage id. Asterisk writes local times unless
``usegmtime=yes``: run it in UTC or set ``timezone``."""

GENERIC = CdrMapping(
    name="generic",
    service_id="service_id",
    quantity="quantity",
    start_time=("start_time",),
    usage_kind_column="usage_kind",
    usage_id="usage_id",
    usage_id_prefix="CDR-",
    source_system_id="cdr-files",
)
"""A CSV file with a header row and the columns ``service_id``, ``usage_kind`` (voice, data or
sms), ``quantity``, ``start_time`` (ISO 8601) and optionally ``usage_id``; other columns are not
read."""

MAPPINGS: Mapping[str, CdrMapping] = {"asterisk": ASTERISK, "generic": GENERIC}


def detect_mapping(first_row: Sequence[str]) -> CdrMapping:
    """The mapping of a file, from its first row: a header naming the generic columns, else
    Asterisk's layout (16 columns or more)."""
    names = {c.strip().lower() for c in first_row}
    if {"service_id", "quantity", "start_time", "usage_kind"} <= names:
        return GENERIC
    if len(first_row) >= 16:
        return ASTERISK
    raise InputRejected("unknown CDR layout", columns=len(first_row))


class PublishFailed(RuntimeError):
    """The broker did not take a batch; the ledger holds everything acknowledged before it."""


@dataclass(frozen=True)
class NotBillable:
    """A row that is no usage (an unanswered call)."""


def _parse_time(text: str, mapping: CdrMapping, column: str) -> datetime:
    try:
        if mapping.time_format is None:
            at = datetime.fromisoformat(text)
        else:
            at = datetime.strptime(text, mapping.time_format)  # noqa: DTZ007  the zone is added below
    except ValueError:
        raise InputRejected(f"bad {column}") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=ZoneInfo(mapping.timezone))


def usage_event(
    row: Sequence[str], index: Mapping[str, int], mapping: CdrMapping, derived_id: Callable[[], str]
) -> Envelope[EventPayload] | NotBillable:
    """The UsageRecorded of one row, or NotBillable. InputRejected names the column at fault,
    never its value. ``derived_id`` gives the id of a row without one of its own."""

    def cell(column: str) -> str:
        position = index.get(column)
        if position is None or position >= len(row):
            raise InputRejected(f"missing {column}")
        return row[position].strip()

    if mapping.billable is not None:
        column, values = mapping.billable
        if cell(column) not in values:
            return NotBillable()
    service_id = cell(mapping.service_id)
    if not service_id:
        raise InputRejected(f"empty {mapping.service_id}")
    quantity_text = cell(mapping.quantity)
    if not quantity_text.isdigit():
        raise InputRejected(f"bad {mapping.quantity}")
    column, start = next(((c, v) for c in mapping.start_time if (v := cell(c))), (mapping.start_time[0], ""))
    if not start:
        raise InputRejected(f"empty {column}")
    at = _parse_time(start, mapping, column)
    kind = mapping.usage_kind
    if kind is None:
        assert mapping.usage_kind_column is not None
        try:
            kind = UsageKind(cell(mapping.usage_kind_column).lower())
        except ValueError:
            raise InputRejected(f"bad {mapping.usage_kind_column}") from None
    own_id = cell(mapping.usage_id) if mapping.usage_id and mapping.usage_id in index else ""
    usage_id = mapping.usage_id_prefix + own_id if own_id else derived_id()
    try:
        payload = UsageRecorded(
            usage_id=usage_id,
            service_id=service_id,
            usage_kind=kind,
            quantity=int(quantity_text),
            start_time=at,
            source_system_id=mapping.source_system_id,
        )
    except ValidationError as exc:
        raise InputRejected(f"invalid record ({invalid_fields(exc)})") from None
    return new_event(
        payload, source=SOURCE, subject=service_id, time=at, event_id=stable_event_id("usage", usage_id)
    )


def derived_usage_id(
    row: Sequence[str], index: Mapping[str, int], mapping: CdrMapping, occurrence: int
) -> str:
    """An id for a row without one: a hash of the columns the mapping reads (never of the others,
    which may hold phone numbers) and of how many identical rows came before it in the file."""
    values = [_cell(row, index, c) for c in mapping.required()]
    digest = hashlib.sha256("\x1f".join([mapping.name, *values, str(occurrence)]).encode()).hexdigest()
    return f"CDR-{digest[:32]}"


# Ledger -----------------------------------------------------------------------------------------


@dataclass
class LedgerEntry:
    """What is done of one file content."""

    name: str
    size: int
    rows_done: int
    complete: bool
    updated: str


class CdrLedger:
    """Per file content (sha256): how many data rows are done (published, not billable or
    rejected), and whether the file is complete. A JSON file, rewritten atomically."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, LedgerEntry] = {}
        if path.exists():
            try:
                raw = json.loads(path.read_text())
                self.entries = {sha: LedgerEntry(**entry) for sha, entry in raw["files"].items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}: not a CDR ledger ({exc})") from None

    def record(self, sha256: str, name: str, size: int, rows_done: int, complete: bool) -> None:
        """Note progress on a file and write the ledger."""
        self.entries[sha256] = LedgerEntry(name, size, rows_done, complete, datetime.now(UTC).isoformat())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(
            json.dumps({"files": {sha: vars(e) for sha, e in self.entries.items()}}, indent=1, sort_keys=True)
        )
        os.replace(temporary, self.path)

    def rows_done(self, sha256: str, path: Path) -> tuple[int, bool]:
        """``(rows done, complete)`` for a file: its own entry, or else the rows of a complete
        earlier version of the same file that this one extends (a CDR file that grows by appending,
        as Master.csv does)."""
        entry = self.entries.get(sha256)
        if entry is not None:
            return entry.rows_done, entry.complete
        size = path.stat().st_size
        for sha, earlier in self.entries.items():
            if earlier.name == path.name and earlier.complete and 0 < earlier.size < size:
                if _prefix_sha256(path, earlier.size) == sha:
                    return earlier.rows_done, False
        return 0, False


def _prefix_sha256(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        remaining = size
        while remaining > 0:
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> tuple[str, int]:
    """The sha256 of a file's content, and its size."""
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
        return digest, stream.tell()


# Loading ----------------------------------------------------------------------------------------


@dataclass
class CdrLoadReport:
    """Progress and outcome of loading one file."""

    file: str
    rows: int = 0
    published: int = 0
    skipped_already: int = 0
    not_billable: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    done: bool = False

    def line(self) -> str:
        """``Master.csv: 5000 rows, published 4100, skipped (already loaded) 0, not billable 880,
        rejected 20 (bad billsec 20)``."""
        text = (
            f"{self.file}: {self.rows} rows, published {self.published}, skipped (already loaded) "
            f"{self.skipped_already}, not billable {self.not_billable}, rejected {sum(self.rejected.values())}"
        )
        if self.rejected:
            text += " (" + ", ".join(f"{r} {n}" for r, n in sorted(self.rejected.items())) + ")"
        return text + ("" if self.done else " ...")


Progress = Callable[[CdrLoadReport], None]


def _rows(path: Path) -> Generator[list[str], None, None]:
    with path.open(encoding="utf-8", errors="replace", newline="") as stream:
        yield from csv.reader(stream)


async def load_file(
    path: Path,
    publisher: PublisherLike,
    ledger: CdrLedger,
    *,
    mapping: CdrMapping | Literal["auto"] = "auto",
    progress: Progress | None = None,
    every: int = 1000,
    batch: int = 500,
    counters: ReceiverCounters | None = None,
) -> CdrLoadReport:
    """Publish the usage records of one CSV file that are not done yet, ``batch`` at a time,
    updating the ledger after each batch the broker has acknowledged. ``progress`` is called every
    ``every`` rows and once at the end. InputRejected when the file's layout is not one the
    mapping reads (nothing is published then); PublishFailed when the broker does not take a batch
    (load again to resume)."""
    counters = counters if counters is not None else ReceiverCounters()
    report = CdrLoadReport(path.name)
    sha256, size = await asyncio.to_thread(file_sha256, path)
    done, complete = await asyncio.to_thread(ledger.rows_done, sha256, path)
    reader = _rows(path)
    try:
        first = next(reader, None)
        if first is None:
            ledger.record(sha256, path.name, size, 0, True)
            report.done = True
            return _finish(report, progress)
        chosen, index, rows = _layout(first, reader, mapping)
        if complete:
            report.rows = report.skipped_already = done
            report.done = True
            return _finish(report, progress)
        pending: list[Envelope[EventPayload]] = []
        seen: Counter[str] = Counter()
        row_number = 0
        for row_number, row in enumerate(rows, start=1):
            report.rows += 1
            content = "\x1f".join(_cell(row, index, c) for c in chosen.required())
            occurrence = seen[content]
            seen[content] += 1
            if row_number <= done:
                report.skipped_already += 1
            else:
                counters.received += 1
                _read_row(row, row_number, occurrence, index, chosen, pending, report, counters)
            if len(pending) >= batch:
                await _publish(publisher, pending, report, counters)
                ledger.record(sha256, path.name, size, row_number, False)
            if progress is not None and row_number % every == 0:
                progress(report)
        await _publish(publisher, pending, report, counters)
        ledger.record(sha256, path.name, size, row_number, True)
    finally:
        reader.close()
    report.done = True
    log.info(
        "cdr file loaded",
        file=path.name,
        rows=report.rows,
        published=report.published,
        skipped_already=report.skipped_already,
        not_billable=report.not_billable,
        rejected=dict(report.rejected),
    )
    return _finish(report, progress)


def _layout(
    first: list[str], rest: Iterator[list[str]], mapping: CdrMapping | Literal["auto"]
) -> tuple[CdrMapping, dict[str, int], Iterator[list[str]]]:
    """The mapping of a file, where its columns are, and its data rows."""
    chosen = detect_mapping(first) if mapping == "auto" else mapping
    if chosen.columns is not None:
        return chosen, {name: i for i, name in enumerate(chosen.columns)}, _chain(first, rest)
    index = {name.strip().lower(): i for i, name in enumerate(first)}
    missing = [c for c in chosen.required() if c not in index]
    if missing:
        raise InputRejected("header lacks " + ", ".join(missing))
    return chosen, index, rest


def _cell(row: Sequence[str], index: Mapping[str, int], column: str) -> str:
    position = index.get(column, len(row))
    return row[position] if position < len(row) else ""


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _finish(report: CdrLoadReport, progress: Progress | None) -> CdrLoadReport:
    if progress is not None:
        progress(report)
    return report


def _read_row(
    row: list[str],
    row_number: int,
    occurrence: int,
    index: Mapping[str, int],
    mapping: CdrMapping,
    pending: list[Envelope[EventPayload]],
    report: CdrLoadReport,
    counters: ReceiverCounters,
) -> None:
    """Turn one row into a pending event, or count it as not billable or rejected; a blank line
    is passed over."""
    if not any(cell.strip() for cell in row):
        return
    try:
        outcome = usage_event(row, index, mapping, lambda: derived_usage_id(row, index, mapping, occurrence))
    except InputRejected as rejected:
        report.rejected[rejected.reason] += 1
        count_rejection(counters, COMPONENT, rejected.reason, file=report.file, row=row_number)
        return
    if isinstance(outcome, NotBillable):
        report.not_billable += 1
        counters.ignored += 1
    else:
        pending.append(outcome)


async def _publish(
    publisher: PublisherLike,
    pending: list[Envelope[EventPayload]],
    report: CdrLoadReport,
    counters: ReceiverCounters,
) -> None:
    if not pending:
        return
    try:
        await publisher.publish(*pending)
    except Exception as exc:
        raise PublishFailed(type(exc).__name__) from exc
    report.published += len(pending)
    counters.published += len(pending)
    pending.clear()


# Inbox ------------------------------------------------------------------------------------------


def ledger_path_for(inbox: Path) -> Path:
    """The ledger beside an inbox: ``.state/cdr-inbox`` → ``.state/cdr-inbox.ledger.json``."""
    return inbox.with_name(inbox.name + ".ledger.json")


class CdrInbox:
    """Watches a folder for ``*.csv`` files and loads each new or changed one once it has stopped
    changing (same size and modification time on two polls, so a file still being copied waits).
    Files whose name starts with a dot are left alone."""

    kind = "cdr"

    def __init__(
        self,
        publisher: PublisherLike,
        inbox: Path,
        *,
        ledger: Path | None = None,
        mapping: CdrMapping | Literal["auto"] = "auto",
        interval: float = 1.0,
        progress: Progress | None = None,
    ):
        self.publisher = publisher
        self.inbox = inbox
        self.ledger_path = ledger or ledger_path_for(inbox)
        self.mapping = mapping
        self.interval = interval
        self.progress = progress
        self.counters = ReceiverCounters()
        self.reports: list[CdrLoadReport] = []
        self._ledger: CdrLedger | None = None
        self._seen: dict[Path, tuple[int, int]] = {}
        self._loaded: dict[Path, tuple[int, int]] = {}

    @property
    def bound(self) -> str | None:
        """``file://...`` of the inbox once watched."""
        return self.inbox.absolute().as_uri() if self._ledger is not None else None

    async def start(self) -> str:
        """Create the inbox if needed and read the ledger; returns :attr:`bound`."""
        await asyncio.to_thread(self.inbox.mkdir, parents=True, exist_ok=True)
        if self._ledger is None:
            self._ledger = await asyncio.to_thread(CdrLedger, self.ledger_path)
        log.info("cdr inbox watched", inbox=str(self.inbox), ledger=str(self.ledger_path))
        return self.bound or ""

    async def run(self) -> None:
        """Poll the inbox until cancelled."""
        await self.start()
        while True:
            await self.scan()
            await asyncio.sleep(self.interval)

    async def scan(self) -> list[CdrLoadReport]:
        """Load the files that are ready now; a file the broker could not take is tried again at
        the next poll, from where the ledger says it stopped."""
        reports = []
        for path, signature in await asyncio.to_thread(self._ready):
            report = await self._load(path, signature)
            if report is not None:
                reports.append(report)
        return reports

    def _ready(self) -> list[tuple[Path, tuple[int, int]]]:
        """The files unchanged since the previous poll and not loaded in this state yet."""
        ready = []
        for path in sorted(self.inbox.glob("*.csv")):
            if path.name.startswith("."):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            if self._loaded.get(path) == signature:
                continue
            if self._seen.get(path) == signature:
                ready.append((path, signature))
            self._seen[path] = signature
        return ready

    async def _load(self, path: Path, signature: tuple[int, int]) -> CdrLoadReport | None:
        assert self._ledger is not None
        try:
            report = await load_file(
                path,
                self.publisher,
                self._ledger,
                mapping=self.mapping,
                progress=self.progress,
                counters=self.counters,
            )
        except PublishFailed as failed:
            log.warning("cdr publish failed, retrying", file=path.name, error=str(failed))
            return None
        except InputRejected as rejected:
            count_rejection(
                self.counters, COMPONENT, rejected.reason, **({"file": path.name} | rejected.context)
            )
            report = CdrLoadReport(path.name, done=True)
            report.rejected[rejected.reason] += 1
        except (OSError, csv.Error) as exc:
            count_rejection(
                self.counters, COMPONENT, "unreadable file", file=path.name, error=type(exc).__name__
            )
            report = CdrLoadReport(path.name, done=True)
            report.rejected["unreadable file"] += 1
        self._loaded[path] = signature
        self.reports.append(report)
        return report


def from_settings(settings: Settings, publisher: PublisherLike, network: Mapping[str, Any]) -> CdrInbox:
    """The inbox ``settings`` describe (``cdr_inbox``, ``cdr_mapping``); the network is not needed."""
    mapping: CdrMapping | Literal["auto"] = (
        "auto" if settings.cdr_mapping == "auto" else MAPPINGS[settings.cdr_mapping]
    )
    return CdrInbox(publisher, settings.cdr_inbox, mapping=mapping)
