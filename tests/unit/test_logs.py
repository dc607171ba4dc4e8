"""Logs: JSON off a terminal, per-event context bound, library logs through the same pipeline."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from runtime.logs import configure_logging


def test_json_lines_carry_the_event_context_and_library_logs_share_the_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(
        event_id="e-1",
        event_type="AlarmRaised",
        topic="oss.alarms",
        partition=2,
        offset=41,
        correlation_id="c-1",
    )
    try:
        structlog.get_logger("oss_consumers.fault").info("alarm raised", alarm_id="ALM-1")
        logging.getLogger("aiokafka.consumer").warning("group rebalanced")
        logging.getLogger("faust").warning("faust speaks too")
        logging.getLogger("aiokafka").info("too chatty to show")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["alarm raised", "group rebalanced", "faust speaks too"]
    first = lines[0]
    assert first["event_id"] == "e-1" and first["offset"] == 41 and first["correlation_id"] == "c-1"
    assert first["level"] == "info" and first["logger"] == "oss_consumers.fault" and "timestamp" in first
    assert lines[1]["logger"] == "aiokafka.consumer" and lines[1]["topic"] == "oss.alarms"
