"""Alarm lifecycle decisions, without a database."""

from __future__ import annotations

from datetime import timedelta

from events.network import ProbeAlarmCleared
from events.x733 import PerceivedSeverity
from oss_consumers.fault.lifecycle import (
    ClearOutcome,
    KeyState,
    RaiseOutcome,
    decide_clear,
    decide_raise,
    opens_ticket,
    ticket_priority,
)
from tests.unit.test_codec import T0, raised


def cleared(at=T0):  # type: ignore[no-untyped-def]
    r = raised()
    return ProbeAlarmCleared.model_validate(
        {
            k: v
            for k, v in r.model_dump().items()
            if k not in ("perceived_severity", "service_affecting", "alarm_details")
        }
        | {"event_time": at}
    )


def test_first_raise_is_new_and_repeats_are_counted() -> None:
    assert decide_raise(KeyState(), raised()) is RaiseOutcome.NEW
    assert decide_raise(KeyState(active_alarm_id="ALM-1"), raised()) is RaiseOutcome.REPEAT


def test_raise_observed_before_the_last_clear_is_stale() -> None:
    state = KeyState(last_cleared_at=T0 + timedelta(seconds=5))
    assert decide_raise(state, raised(event_time=T0)) is RaiseOutcome.STALE
    assert decide_raise(state, raised(event_time=T0 + timedelta(seconds=6))) is RaiseOutcome.NEW


def test_held_clear_applies_to_the_raise_it_overtook() -> None:
    state = KeyState(held_clear_at=T0 + timedelta(seconds=1))
    assert decide_raise(state, raised(event_time=T0)) is RaiseOutcome.NEW_AND_CLEARED


def test_held_clear_older_than_the_raise_does_not_clear_it() -> None:
    state = KeyState(held_clear_at=T0 - timedelta(seconds=1))
    assert decide_raise(state, raised(event_time=T0)) is RaiseOutcome.NEW


def test_clear_without_alarm_is_held_and_repeated_clear_is_stale() -> None:
    assert decide_clear(KeyState(), cleared()) is ClearOutcome.HOLD
    assert decide_clear(KeyState(active_alarm_id="ALM-1"), cleared()) is ClearOutcome.CLEAR
    assert decide_clear(KeyState(last_cleared_at=T0), cleared(T0)) is ClearOutcome.STALE
    assert decide_clear(KeyState(last_cleared_at=T0), cleared(T0 + timedelta(seconds=1))) is ClearOutcome.HOLD


def test_tickets_for_service_affecting_major_and_critical_only() -> None:
    assert opens_ticket(PerceivedSeverity.CRITICAL, True)
    assert opens_ticket(PerceivedSeverity.MAJOR, True)
    assert not opens_ticket(PerceivedSeverity.MINOR, True)
    assert not opens_ticket(PerceivedSeverity.CRITICAL, False)
    assert ticket_priority(PerceivedSeverity.CRITICAL) < ticket_priority(PerceivedSeverity.MAJOR)
