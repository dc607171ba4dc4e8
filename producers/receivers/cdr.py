"""CDR files: CSV usage records into UsageRecorded, resumable and published once per record.

A :class:`CdrMapping` says which columns hold the service, the quantity, the start time and the
record's stable id; :data:`ASTERISK` reads Asterisk's ``Master.csv`` and :data:`GENERIC` a file
with a header row. A ledger (JSON, beside the inbox) records per file content (sha256) how many
rows are done, so an interrupted load resumes where it stopped and a repeated load publishes
nothing again; the usage ids come from the records themselves, so even a record published twice
(a crash between the broker's acknowledgement and the ledger's write) is rated once. A load reads
the file's complete lines as they were when it began, the same bytes it hashes: a line still being
written waits for the next load, and a file that grows resumes after its latest recorded version.

Calling and called numbers are personal data: the mappings never read those columns, and no log
line or event carries any value of a rejected row, only its row number and the reason.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import fcntl
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal
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


def whole_number(text: str, max_digits: int = 18) -> int | None:
    """The value of a whole number written in ASCII digits, or None. ``str.isdigit`` alone also
    accepts digits ``int`` refuses (superscripts such as "²"), and ``int`` refuses more than a few
    thousand digits: neither may stop a file."""
    if not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)


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
    quantity = whole_number(cell(mapping.quantity))
    if quantity is None:
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
            quantity=quantity,
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


@dataclass(frozen=True)
class Resume:
    """Where a load starts: the rows already done of this content, whether all are, and the
    ledger entry of an earlier version of the file that this content extends (superseded once
    this one is recorded)."""

    rows_done: int = 0
    complete: bool = False
    supersedes: str | None = None


class CdrLedger:
    """Per file content (sha256): how many data rows are done (published, not billable or
    rejected), and whether the file is complete. A JSON file, rewritten atomically.

    The file is the ledger, not this object's copy: it is read again before each decision and
    merged under a lock on each write, so the inbox of a running system and ``ossbss cdr load``
    share it."""

    def __init__(self, path: Path):
        self.path = path
        self.entries = self._read()

    def _read(self) -> dict[str, LedgerEntry]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(self.path.read_text())
            return {sha: LedgerEntry(**entry) for sha, entry in raw["files"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a CDR ledger ({exc})") from None

    def record(
        self,
        sha256: str,
        name: str,
        size: int,
        rows_done: int,
        complete: bool,
        supersedes: str | None = None,
    ) -> None:
        """Note progress on a file and write the ledger. ``supersedes`` is the entry of the
        earlier version this content extends: its rows are counted in this one, so it goes."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            self.entries = self._read()
            self.entries[sha256] = LedgerEntry(name, size, rows_done, complete, datetime.now(UTC).isoformat())
            if supersedes is not None and supersedes != sha256:
                self.entries.pop(supersedes, None)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps({"files": {sha: vars(e) for sha, e in self.entries.items()}}))
            os.replace(temporary, self.path)

    def resume(self, sha256: str, name: str, size: int, prefix_sha256: Callable[[int], str]) -> Resume:
        """Where to start loading a file content of ``size`` bytes: its own entry, or else the
        earlier version of the same file that this one extends (a CDR file that grows by
        appending, as Master.csv does). Of the earlier versions it extends, the one with the most
        rows done is chosen, so a file grown many times resumes after its latest load.
        ``prefix_sha256(n)`` is the sha256 of the content's first ``n`` bytes."""
        self.entries = self._read()
        entry = self.entries.get(sha256)
        if entry is not None:
            return Resume(entry.rows_done, entry.complete)
        candidates = sorted(
            (
                (earlier.rows_done, earlier.size, sha)
                for sha, earlier in self.entries.items()
                if earlier.name == name and 0 < earlier.size < size
            ),
            reverse=True,
        )
        for rows_done, earlier_size, sha in candidates:
            if prefix_sha256(earlier_size) == sha:
                return Resume(rows_done, False, sha)
        return Resume()


_CHUNK = 1 << 20
SETTLED_SECONDS = 2.0
"""A file unchanged for this long is not being written: its last line is complete, newline or not."""


def complete_lines_length(stream: BinaryIO, size: int) -> int:
    """How many of the first ``size`` bytes of ``stream`` are complete lines: up to and including
    the last newline. What follows it is a line still being written."""
    position = size
    while position > 0:
        start = max(0, position - _CHUNK)
        stream.seek(start)
        newline = stream.read(position - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        position = start
    return 0


def prefix_sha256(stream: BinaryIO, size: int) -> str:
    """The sha256 of the first ``size`` bytes of ``stream``."""
    digest = hashlib.sha256()
    stream.seek(0)
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            break
        digest.update(chunk)
        remaining -= len(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class CdrContent:
    """What one load of a file reads: its complete lines as they were when the load began. The
    sha256 the ledger keys on and the rows published are taken from the same open file and the
    same ``size`` bytes, so a file appended to meanwhile is neither hashed nor read past them."""

    stream: BinaryIO
    size: int
    """Bytes of complete lines: hashed and read."""
    partial: int
    """Bytes after the last newline (a line still being written), left for the next load."""
    sha256: str

    @classmethod
    def open(cls, path: Path) -> CdrContent:
        """Open ``path`` and hash its complete lines; the caller closes it. A last line without
        its newline counts as complete once the file has not changed for ``SETTLED_SECONDS``:
        nobody is writing it any more (a file saved by hand often lacks the final newline)."""
        stream = path.open("rb")
        try:
            stat = os.fstat(stream.fileno())
            total = stat.st_size
            size = complete_lines_length(stream, total)
            if size < total and time.time() - stat.st_mtime >= SETTLED_SECONDS:
                size = total
            return cls(stream, size, total - size, prefix_sha256(stream, size))
        except BaseException:
            stream.close()
            raise

    def prefix_sha256(self, size: int) -> str:
        """The sha256 of the first ``size`` bytes (at most :attr:`size`)."""
        return prefix_sha256(self.stream, min(size, self.size))

    def lines(self) -> Iterator[str]:
        """The complete lines, decoded as UTF-8 (undecodable bytes replaced), newlines kept."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stream.seek(0)
        remaining, carry = self.size, ""
        while remaining > 0:
            chunk = self.stream.read(min(remaining, _CHUNK))
            if not chunk:
                break
            remaining -= len(chunk)
            *complete, carry = (carry + decoder.decode(chunk, final=remaining <= 0)).split("\n")
            for line in complete:
                yield line + "\n"
        if carry:
            yield carry

    def close(self) -> None:
        """Close the file."""
        self.stream.close()


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
    updating the ledger after each batch the broker has acknowledged. Only complete lines are
    read: a last line without its newline is being written, and waits for the next load, unless
    the file has not changed for ``SETTLED_SECONDS``.
    ``progress`` is called every ``every`` rows and once at the end. InputRejected when the
    file's layout is not one the mapping reads (nothing is published then); PublishFailed when
    the broker does not take a batch (load again to resume)."""
    counters = counters if counters is not None else ReceiverCounters()
    content = await asyncio.to_thread(CdrContent.open, path)
    try:
        return await _load_content(
            path.name, content, publisher, ledger, mapping, progress, every, batch, counters
        )
    finally:
        content.close()


async def _load_content(
    name: str,
    content: CdrContent,
    publisher: PublisherLike,
    ledger: CdrLedger,
    mapping: CdrMapping | Literal["auto"],
    progress: Progress | None,
    every: int,
    batch: int,
    counters: ReceiverCounters,
) -> CdrLoadReport:
    """:func:`load_file` on the content of an open file."""
    report = CdrLoadReport(name)
    sha256, size = content.sha256, content.size
    if content.partial:
        log.info("cdr file ends in a partial line, left for the next load", file=name, bytes=content.partial)
    resume = await asyncio.to_thread(ledger.resume, sha256, name, size, content.prefix_sha256)
    done, supersedes = resume.rows_done, resume.supersedes
    reader = csv.reader(content.lines())
    first = next(reader, None)
    if first is None:
        ledger.record(sha256, name, size, 0, True)
        report.done = True
        return _finish(report, progress)
    chosen, index, rows = _layout(first, reader, mapping)
    if resume.complete:
        report.rows = report.skipped_already = done
        report.done = True
        return _finish(report, progress)
    pending: list[Envelope[EventPayload]] = []
    seen: Counter[str] = Counter()
    row_number = 0
    for row_number, row in enumerate(rows, start=1):
        report.rows += 1
        content_key = "\x1f".join(_cell(row, index, c) for c in chosen.required())
        occurrence = seen[content_key]
        seen[content_key] += 1
        if row_number <= done:
            report.skipped_already += 1
        else:
            counters.received += 1
            _read_row(row, row_number, occurrence, index, chosen, pending, report, counters)
        if len(pending) >= batch:
            await _publish(publisher, pending, report, counters)
            ledger.record(sha256, name, size, row_number, False, supersedes)
        if progress is not None and row_number % every == 0:
            progress(report)
    await _publish(publisher, pending, report, counters)
    ledger.record(sha256, name, size, row_number, True, supersedes)
    report.done = True
    log.info(
        "cdr file loaded",
        file=name,
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
    except Exception as exc:  # one row that breaks the mapping must not stop the file
        report.rejected["malformed row"] += 1
        count_rejection(
            counters, COMPONENT, "malformed row", file=report.file, row=row_number, error=type(exc).__name__
        )
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
        """Poll the inbox until cancelled; a poll that fails (the inbox unreadable for a moment)
        is logged and the next one tried."""
        await self.start()
        while True:
            try:
                await self.scan()
            except Exception as exc:
                log.warning("cdr inbox poll failed", inbox=str(self.inbox), error=type(exc).__name__)
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
            report = self._failed(path, "unreadable file", exc)
        except Exception as exc:  # one file must never stop the inbox from loading the others
            report = self._failed(path, "load failed", exc)
        self._loaded[path] = signature
        self.reports.append(report)
        return report

    def _failed(self, path: Path, reason: str, exc: Exception) -> CdrLoadReport:
        """Count and log a file that could not be loaded (by the error's type: its message may
        quote the file's content), and report it done until it changes."""
        count_rejection(self.counters, COMPONENT, reason, file=path.name, error=type(exc).__name__)
        report = CdrLoadReport(path.name, done=True)
        report.rejected[reason] += 1
        return report


def mapping_of(name: str) -> CdrMapping | Literal["auto"]:
    """The column mapping a setting or option names: ``auto``, ``asterisk`` or ``generic``."""
    return "auto" if name == "auto" else MAPPINGS[name]


def from_settings(settings: Settings, publisher: PublisherLike, network: Mapping[str, Any]) -> CdrInbox:
    """The inbox ``settings`` describe (``cdr_inbox``, ``cdr_mapping``); the network is not needed."""
    return CdrInbox(publisher, settings.cdr_inbox, mapping=mapping_of(settings.cdr_mapping))
