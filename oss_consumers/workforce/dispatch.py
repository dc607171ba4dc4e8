"""Dispatch decisions, free of I/O: which skill a job needs, its SLA, and which technician gets
it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from events.x733 import AlarmType, ProbableCause, ResourceType

# Time to complete a work order, by its priority (1 highest).
SLA_BY_PRIORITY = {
    1: timedelta(hours=4),
    2: timedelta(hours=8),
    3: timedelta(hours=24),
    4: timedelta(hours=72),
}


POWER_CAUSES = frozenset(
    {
        ProbableCause.POWER_PROBLEM,
        ProbableCause.COMMERCIAL_POWER_FAILURE,
        ProbableCause.BATTERY_DISCHARGING,
        ProbableCause.COOLING_FAN_FAILURE,
        ProbableCause.HIGH_TEMPERATURE,
    }
)


@dataclass(frozen=True)
class Technician:
    id: str
    region: str
    skills: frozenset[str]
    shift_start: time
    shift_end: time
    max_open: int

    def on_shift(self, at: datetime) -> bool:
        """Whether ``at`` (UTC) falls in the shift; a shift ending before it starts runs overnight."""
        now = at.time().replace(tzinfo=None)
        if self.shift_start <= self.shift_end:
            return self.shift_start <= now < self.shift_end
        return now >= self.shift_start or now < self.shift_end


def parse_shift(text: str) -> tuple[time, time]:
    """``"06:00-18:00"`` into its start and end."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"shift {text!r} is not HH:MM-HH:MM") from None
    if start == end:
        raise ValueError(f"shift {text!r} is empty")
    return start, end


def required_skill(resource_type: ResourceType, alarm_type: AlarmType, cause: ProbableCause) -> str:
    """The skill a repair needs, from what failed and how."""
    if cause in POWER_CAUSES or alarm_type is AlarmType.ENVIRONMENTAL:
        return "power"
    if resource_type is ResourceType.CELL:
        return "radio"
    if resource_type in (ResourceType.LINK, ResourceType.PORT):
        return "fibre"
    if resource_type is ResourceType.NODE:
        return "router"
    return "general"


def due_date(created: datetime, priority: int) -> datetime:
    return created + SLA_BY_PRIORITY.get(priority, SLA_BY_PRIORITY[4])


def pick(
    technicians: Iterable[Technician],
    loads: Mapping[str, int],
    skill: str,
    region: str | None,
    at: datetime,
) -> Technician | None:
    """The technician for a job: on shift, with the skill, in the job's region (any region when
    the site has none), below their limit of open work orders; the least loaded first, then by id."""
    candidates = [
        t
        for t in technicians
        if t.on_shift(at)
        and skill in t.skills
        and (region is None or t.region == region)
        and loads.get(t.id, 0) < t.max_open
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda t: (loads.get(t.id, 0), t.id))
