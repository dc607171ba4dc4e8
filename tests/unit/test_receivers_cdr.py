"""CDR files: the Asterisk and generic mappings, ids that stay the same across loads, the ledger
that makes loads resumable and repeatable, the inbox, and no phone number anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from events import Envelope, EventPayload
from producers.receivers import cdr
from producers.receivers.cdr import (
    ASTERISK,
    GENERIC,
    CdrInbox,
    CdrLedger,
    CdrLoadReport,
    NotBillable,
    PublishFailed,
    Resume,
    detect_mapping,
    ledger_path_for,
    load_file,
    usage_event,
)
from producers.receivers.common import InputRejected

CALLER, CALLEE = "+441632960001", "+442079460002"


def asterisk_row(
    account: str = "SVC-0003",
    billsec: str = "120",
    disposition: str = "ANSWERED",
    uniqueid: str = "1705314220.1",
    answer: str = "2024-01-15 10:23:45",
) -> str:
    fields = [
        account,
        CALLER,
        CALLEE,
        "from-internal",
        f'"Alice" <{CALLER}>',
        "SIP/100-00000001",
        "SIP/trunk-00000002",
        "Dial",
        f"SIP/trunk/{CALLEE},30",
        "2024-01-15 10:23:40",
        answer,
        "2024-01-15 10:25:45",
        "125",
        billsec,
        disposition,
        "DOCUMENTATION",
        uniqueid,
        "",
    ]
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(fields)
    return out.getvalue()


ASTERISK_INDEX = {name: i for i, name in enumerate(ASTERISK.columns or ())}


def _row(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


def test_an_answered_asterisk_call_is_voice_usage_of_its_account_code() -> None:
    event = usage_event(_row(asterisk_row()), ASTERISK_INDEX, ASTERISK, lambda: "unused")
    assert isinstance(event, Envelope)
    data: Any = event.data
    assert (data.usage_id, data.service_id, data.usage_kind.value, data.quantity) == (
        "AST-1705314220.1",
        "SVC-0003",
        "voice",
        120,
    )
    assert data.start_time == datetime(2024, 1, 15, 10, 23, 45, tzinfo=UTC)  # answer time, not ringing
    assert CALLER not in event.data.model_dump_json() and CALLEE not in event.data.model_dump_json()


def test_unanswered_calls_do_not_bill() -> None:
    for disposition in ("NO ANSWER", "BUSY", "FAILED"):
        row = _row(asterisk_row(billsec="0", disposition=disposition, answer=""))
        assert isinstance(usage_event(row, ASTERISK_INDEX, ASTERISK, lambda: "x"), NotBillable)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (asterisk_row(billsec="sixty"), "bad billsec"),
        (asterisk_row(billsec="-5"), "bad billsec"),
        (asterisk_row(account=""), "empty accountcode"),
        (asterisk_row(account="bad account!"), "invalid record (service_id)"),
        (asterisk_row(answer="15/01/2024 10:23"), "bad answer"),
        ('"SVC-1","x"\n', "missing disposition"),
    ],
)
def test_bad_rows_are_rejected_naming_the_column_never_the_value(row: str, reason: str) -> None:
    with pytest.raises(InputRejected) as rejected:
        usage_event(_row(row), ASTERISK_INDEX, ASTERISK, lambda: "x")
    assert rejected.value.reason == reason


def test_the_layout_is_detected_from_the_first_row() -> None:
    assert detect_mapping(_row(asterisk_row())) is ASTERISK
    assert detect_mapping(["usage_id", "service_id", "usage_kind", "quantity", "start_time"]) is GENERIC
    with pytest.raises(InputRejected, match="unknown CDR layout"):
        detect_mapping(["a", "b"])


class _Recorder:
    def __init__(self, fail_after: int | None = None):
        self.fail_after = fail_after
        self.events: list[Envelope[EventPayload]] = []

    async def publish(self, *events: Envelope[EventPayload]) -> None:
        if self.fail_after is not None and len(self.events) + len(events) > self.fail_after:
            raise ConnectionError("broker away")
        self.events.extend(events)


def _master(rows: int, start: int = 0) -> str:
    lines = []
    for n in range(start, start + rows):
        disposition = "NO ANSWER" if n % 10 == 9 else "ANSWERED"
        lines.append(
            asterisk_row(
                account=f"SVC-{n % 25 + 1:04d}",
                billsec=str(n),
                disposition=disposition,
                uniqueid=f"1705314220.{n}",
            )
        )
    return "".join(lines)


async def test_a_file_loads_once_with_progress_and_a_final_report(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(_master(25) + asterisk_row(billsec="oops", uniqueid="bad.1"))
    ledger = CdrLedger(tmp_path / "ledger.json")
    seen: list[str] = []
    recorder = _Recorder()
    with capture_logs() as logs:
        report = await load_file(
            path, recorder, ledger, progress=lambda r: seen.append(r.line()), every=10, batch=7
        )
    assert (report.rows, report.published, report.not_billable, dict(report.rejected)) == (
        26,
        23,
        2,
        {"bad billsec": 1},
    )
    assert seen[:2] == [
        "Master.csv: 10 rows, published 7, skipped (already loaded) 0, not billable 1, rejected 0 ...",
        "Master.csv: 20 rows, published 14, skipped (already loaded) 0, not billable 2, rejected 0 ...",
    ]
    assert (
        seen[-1]
        == "Master.csv: 26 rows, published 23, skipped (already loaded) 0, not billable 2, rejected 1 (bad billsec 1)"
    )
    assert CALLER not in repr(logs) and CALLEE not in repr(logs)
    again = await load_file(path, recorder, CdrLedger(tmp_path / "ledger.json"))
    assert (again.published, again.skipped_already) == (0, 26)
    assert len(recorder.events) == 23


async def test_an_interrupted_load_resumes_after_the_last_acknowledged_batch(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(_master(40))
    ledger = CdrLedger(tmp_path / "ledger.json")
    broken = _Recorder(fail_after=20)
    with pytest.raises(PublishFailed):
        await load_file(path, broken, ledger, batch=10)
    assert len(broken.events) == 20
    resumed = _Recorder()
    report = await load_file(path, resumed, CdrLedger(tmp_path / "ledger.json"), batch=10)
    ids = [e.data.usage_id for e in broken.events + resumed.events]  # type: ignore[attr-defined]
    assert len(ids) == len(set(ids)) == 36  # every answered call once
    assert report.skipped_already > 0 and report.published == 16


async def test_a_grown_file_publishes_only_its_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(_master(5))
    ledger = CdrLedger(tmp_path / "ledger.json")
    first = _Recorder()
    await load_file(path, first, ledger)
    path.write_text(_master(5) + _master(3, start=5))
    second = _Recorder()
    report = await load_file(path, second, ledger)
    assert (report.skipped_already, report.published) == (5, 3)
    usage: list[Any] = [e.data for e in second.events]
    assert [u.usage_id for u in usage] == ["AST-1705314220.5", "AST-1705314220.6", "AST-1705314220.7"]


async def test_a_generic_file_names_its_columns_and_derives_stable_ids_when_it_has_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        "calling_number,service_id,usage_kind,quantity,start_time,usage_id\n"
        f"{CALLER},SVC-0001,data,123456,2024-01-15T10:00:00Z,abc-1\n"
        f"{CALLER},SVC-0002,SMS,1,2024-01-15T10:00:00+01:00,\n"
        f"{CALLER},SVC-0002,SMS,1,2024-01-15T10:00:00+01:00,\n"
        f"{CALLER},SVC-0002,fax,1,2024-01-15T10:00:00Z,\n"
    )
    first = _Recorder()
    report = await load_file(path, first, CdrLedger(tmp_path / "a.json"))
    assert (report.published, dict(report.rejected)) == (3, {"bad usage_kind": 1})
    ids = [e.data.usage_id for e in first.events]  # type: ignore[attr-defined]
    assert ids[0] == "CDR-abc-1" and len(set(ids)) == 3  # two identical rows are two records
    again = _Recorder()
    await load_file(path, again, CdrLedger(tmp_path / "b.json"))  # a fresh ledger: same ids
    assert [e.data.usage_id for e in again.events] == ids  # type: ignore[attr-defined]
    assert [e.id for e in again.events] == [e.id for e in first.events]
    assert all(CALLER not in e.data.model_dump_json() for e in first.events)


async def test_a_header_without_the_mapped_columns_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text("service_id,quantity\nSVC-1,3\n")
    with pytest.raises(InputRejected, match="header lacks"):
        await load_file(path, _Recorder(), CdrLedger(tmp_path / "l.json"), mapping=GENERIC)


async def test_the_inbox_loads_a_file_once_it_stops_changing_and_never_twice(tmp_path: Path) -> None:
    inbox = tmp_path / "cdr-inbox"
    recorder = _Recorder()
    reports: list[CdrLoadReport] = []
    watcher = CdrInbox(recorder, inbox, progress=reports.append)
    await watcher.start()
    assert watcher.ledger_path == ledger_path_for(inbox) == tmp_path / "cdr-inbox.ledger.json"
    (inbox / "Master.csv").write_text(_master(3))
    (inbox / ".partial.csv").write_text(_master(2))
    (inbox / "notes.txt").write_text("not a CDR file")
    (inbox / "odd.csv").write_text("a,b\n1,2\n")
    assert await watcher.scan() == []  # first sight: wait for it to settle
    loaded = await watcher.scan()
    assert sorted((r.file, r.published) for r in loaded) == [("Master.csv", 3), ("odd.csv", 0)]
    assert watcher.counters.rejected == {"unknown CDR layout": 1}
    assert await watcher.scan() == []
    restarted = CdrInbox(recorder, inbox)
    await restarted.start()
    await restarted.scan()
    [report] = [r for r in await restarted.scan() if r.file == "Master.csv"]
    assert (report.published, report.skipped_already) == (0, 3)
    assert len(recorder.events) == 3 and reports[-1].done


async def test_the_inbox_runs_until_cancelled(tmp_path: Path) -> None:
    recorder = _Recorder()
    watcher = CdrInbox(recorder, tmp_path / "inbox", interval=0.05)
    task = asyncio.create_task(watcher.run())
    while watcher.bound is None:
        await asyncio.sleep(0.01)
    (tmp_path / "inbox" / "Master.csv").write_text(_master(2))
    async with asyncio.timeout(5):
        while len(recorder.events) < 2:
            await asyncio.sleep(0.02)
    task.cancel()
    assert watcher.counters.published == 2 and watcher.bound.startswith("file://")


async def test_the_inbox_tries_a_file_again_when_the_broker_did_not_take_it(tmp_path: Path) -> None:
    recorder = _Recorder(fail_after=0)
    watcher = CdrInbox(recorder, tmp_path / "inbox")
    await watcher.start()
    (tmp_path / "inbox" / "Master.csv").write_text(_master(3))
    await watcher.scan()
    assert await watcher.scan() == [] and watcher.counters.rejected_total == 0
    recorder.fail_after = None
    [report] = await watcher.scan()
    assert report.published == 3 and len(recorder.events) == 3


async def test_a_half_written_last_line_waits_for_the_next_load(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    whole = _master(6)
    cut = whole.index("\n", len(whole) // 2) + 20  # a few bytes into a row
    path.write_text(whole[:cut])
    ledger = CdrLedger(tmp_path / "ledger.json")
    recorder = _Recorder()
    first = await load_file(path, recorder, ledger)
    assert dict(first.rejected) == {} and first.rows == whole[:cut].count("\n")
    with path.open("a") as stream:  # the writer finishes the line and adds the rest
        stream.write(whole[cut:])
    second = await load_file(path, recorder, CdrLedger(tmp_path / "ledger.json"))
    assert dict(second.rejected) == {} and second.skipped_already == first.rows
    ids = [e.data.usage_id for e in recorder.events]  # type: ignore[attr-defined]
    assert sorted(ids) == sorted(f"AST-1705314220.{n}" for n in range(6) if n % 10 != 9)
    assert len(ids) == len(set(ids))


async def test_hash_and_rows_come_from_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer appends between the moment the file is hashed and the moment it is read: the load
    # reads no further than it hashed, so the appended rows belong to the next load.
    path = tmp_path / "Master.csv"
    path.write_text(_master(3))
    real = cdr.prefix_sha256

    def hash_then_append(stream: Any, size: int) -> str:
        digest = real(stream, size)
        with path.open("a") as appending:
            appending.write(_master(2, start=3))
        return digest

    monkeypatch.setattr(cdr, "prefix_sha256", hash_then_append)
    recorder = _Recorder()
    ledger = CdrLedger(tmp_path / "ledger.json")
    assert (await load_file(path, recorder, ledger)).published == 3
    monkeypatch.setattr(cdr, "prefix_sha256", real)
    assert (await load_file(path, recorder, ledger)).published == 2
    ids = [e.data.usage_id for e in recorder.events]  # type: ignore[attr-defined]
    assert ids == [f"AST-1705314220.{n}" for n in range(5)]


async def test_a_file_grown_four_times_publishes_each_record_once(tmp_path: Path) -> None:
    path = tmp_path / "Master.csv"
    ledger = CdrLedger(tmp_path / "ledger.json")
    recorder = _Recorder()
    text = ""
    for growth in range(5):
        text += _master(4, start=4 * growth)
        path.write_text(text)
        report = await load_file(path, recorder, ledger)
        assert (report.skipped_already, report.rows) == (4 * growth, 4 * (growth + 1))
    ids = [e.data.usage_id for e in recorder.events]  # type: ignore[attr-defined]
    assert ids == [f"AST-1705314220.{n}" for n in range(20) if n % 10 != 9]
    assert len(ledger.entries) == 1  # each version superseded the one it extends


@pytest.mark.parametrize("billsec", ["²", "١٢", "9" * 5000])
async def test_a_number_int_cannot_read_rejects_its_row_and_the_file_goes_on(
    tmp_path: Path, billsec: str
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text(_master(2) + asterisk_row(billsec=billsec, uniqueid="odd.1") + _master(2, start=2))
    recorder = _Recorder()
    report = await load_file(path, recorder, CdrLedger(tmp_path / "ledger.json"))
    assert (report.published, dict(report.rejected)) == (4, {"bad billsec": 1})


async def test_a_file_that_fails_to_load_does_not_stop_the_inbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    recorder = _Recorder()
    watcher = CdrInbox(recorder, inbox)
    await watcher.start()
    (inbox / "a.csv").write_text(_master(2))
    (inbox / "b.csv").write_text(_master(2, start=2))
    real = cdr.load_file

    async def failing_on_a(path: Path, *args: Any, **kwargs: Any) -> CdrLoadReport:
        if path.name == "a.csv":
            raise RuntimeError("unexpected")
        return await real(path, *args, **kwargs)

    monkeypatch.setattr(cdr, "load_file", failing_on_a)
    await watcher.scan()
    with capture_logs() as logs:
        reports = await watcher.scan()
    assert sorted((r.file, r.published) for r in reports) == [("a.csv", 0), ("b.csv", 2)]
    assert watcher.counters.rejected == {"load failed": 1}
    assert any(e.get("reason") == "load failed" and e.get("error") == "RuntimeError" for e in logs)
    assert len(recorder.events) == 2


def test_a_settled_file_without_a_final_newline_has_its_last_line(tmp_path: Path) -> None:
    import os
    import time

    from producers.receivers.cdr import SETTLED_SECONDS, CdrContent

    path = tmp_path / "by-hand.csv"
    path.write_bytes(b"a,b\n1,2\n3,4")
    with contextlib.closing(CdrContent.open(path)) as fresh:
        assert (fresh.size, fresh.partial) == (8, 3)  # just written: the last line may still grow
    old = time.time() - SETTLED_SECONDS - 1
    os.utime(path, (old, old))
    with contextlib.closing(CdrContent.open(path)) as settled:
        assert (settled.size, settled.partial) == (11, 0)


def test_two_users_of_one_ledger_see_each_others_loads(tmp_path: Path) -> None:
    path = tmp_path / "inbox.ledger.json"
    inbox, by_hand = CdrLedger(path), CdrLedger(path)  # a running inbox, and `ossbss cdr load`
    by_hand.record("a" * 64, "Master.csv", 100, 5, True)
    assert inbox.resume("a" * 64, "Master.csv", 100, lambda n: "") == Resume(5, True)
    inbox.record("b" * 64, "other.csv", 10, 1, True)  # merged with what the other one wrote
    assert set(CdrLedger(path).entries) == {"a" * 64, "b" * 64}
