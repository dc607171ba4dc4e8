"""Alarm lifecycle decisions, free of I/O: what a raise or a clear does given what is known.

X.733 semantics with OpenNMS-style reduction: one active alarm per reduction key; repeats
increment its count; a clear ends it; a clear that arrives before its raise is held and applied
when the raise comes; stale repeats (observed before the last clear) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from events.network import ProbeAlarmCleared, ProbeAlarmRaised
from events.x733 import SERVICE_AFFECTING_SEVERITIES, PerceivedSeverity, ProbableCause


@dataclass(frozen=True)
class KeyState:
    """What fault management knows of one reduction key when an event for it arrives."""

    active_alarm_id: str | None = None
    last_cleared_at: datetime | None = None
    held_clear_at: datetime | None = None


class RaiseOutcome(Enum):
    NEW = "new"  # a new active alarm
    NEW_AND_CLEARED = "new_and_cleared"  # its clear was already held: recorded, then cleared
    REPEAT = "repeat"  # the active alarm seen again
    STALE = "stale"  # observed before the last clear of this key: dropped


class ClearOutcome(Enum):
    CLEAR = "clear"  # clears the active alarm
    HOLD = "hold"  # no alarm yet: keep the clear for the raise that is on its way
    STALE = "stale"  # repeat of a clear already applied: dropped


def decide_raise(state: KeyState, event: ProbeAlarmRaised) -> RaiseOutcome:
    """What a probe's raise does to its reduction key."""
    if state.active_alarm_id is not None:
        return RaiseOutcome.REPEAT
    if state.last_cleared_at is not None and event.event_time <= state.last_cleared_at:
        return RaiseOutcome.STALE
    if state.held_clear_at is not None and state.held_clear_at >= event.event_time:
        return RaiseOutcome.NEW_AND_CLEARED
    return RaiseOutcome.NEW


def decide_clear(state: KeyState, event: ProbeAlarmCleared) -> ClearOutcome:
    """What a probe's clear does to its reduction key."""
    if state.active_alarm_id is not None:
        return ClearOutcome.CLEAR
    if state.last_cleared_at is not None and event.event_time <= state.last_cleared_at:
        return ClearOutcome.STALE
    return ClearOutcome.HOLD


def opens_ticket(severity: PerceivedSeverity, service_affecting: bool) -> bool:
    """A trouble ticket is opened for service-affecting major and critical alarms."""
    return service_affecting and severity in SERVICE_AFFECTING_SEVERITIES


# Faults fixed from the network operations centre: no one needs to go on site.
REMOTE_CAUSES = frozenset(
    {
        ProbableCause.SOFTWARE_ERROR,
        ProbableCause.CONFIGURATION_OR_CUSTOMIZATION_ERROR,
        ProbableCause.AUTHENTICATION_FAILURE,
        ProbableCause.OUT_OF_MEMORY,
        ProbableCause.PROCESSOR_PROBLEM,
        ProbableCause.CONGESTION,
        ProbableCause.THRESHOLD_CROSSED,
        ProbableCause.PERFORMANCE_DEGRADED,
        ProbableCause.BANDWIDTH_REDUCED,
    }
)


def needs_field_work(cause: ProbableCause) -> bool:
    """Whether a ticket's fault needs a technician on site (and so a work order)."""
    return cause not in REMOTE_CAUSES


def ticket_priority(severity: PerceivedSeverity) -> int:
    """TMF621 priority, 1 highest, from the alarm's severity."""
    return {
        PerceivedSeverity.CRITICAL: 1,
        PerceivedSeverity.MAJOR: 2,
        PerceivedSeverity.MINOR: 3,
    }.get(severity, 4)


CORRELATION_WINDOW = timedelta(seconds=30)


def explains(root_raised_at: datetime, symptom_observed_at: datetime) -> bool:
    """Whether a node alarm raised at ``root_raised_at`` explains a link alarm observed at
    ``symptom_observed_at``: the link's alarm follows the node's within the correlation window."""
    return root_raised_at <= symptom_observed_at <= root_raised_at + CORRELATION_WINDOW


# How long a ticket may stay open, by severity, before it is escalated.
ESCALATION_LIMITS = {
    PerceivedSeverity.CRITICAL: timedelta(minutes=15),
    PerceivedSeverity.MAJOR: timedelta(hours=1),
    PerceivedSeverity.MINOR: timedelta(hours=4),
    PerceivedSeverity.WARNING: timedelta(hours=24),
    PerceivedSeverity.INDETERMINATE: timedelta(hours=24),
}
