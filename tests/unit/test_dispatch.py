"""Dispatch decisions: shifts, skills, regions and loads."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from events.x733 import AlarmType, ProbableCause, ResourceType
from oss_consumers.fault.lifecycle import needs_field_work
from oss_consumers.workforce.dispatch import Technician, due_date, parse_shift, pick, required_skill

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)


def tech(
    id_: str, region: str = "south", skills: str = "fibre", shift: str = "06:00-18:00", max_open: int = 2
) -> Technician:
    start, end = parse_shift(shift)
    return Technician(id_, region, frozenset(skills.split(",")), start, end, max_open)


def test_a_shift_that_ends_before_it_starts_runs_overnight() -> None:
    night = tech("N", shift="18:00-06:00")
    assert night.on_shift(MIDNIGHT) and not night.on_shift(NOON)
    day = tech("D")
    assert day.on_shift(NOON) and not day.on_shift(MIDNIGHT)
    assert not day.on_shift(datetime(2026, 11, 27, 18, 0, tzinfo=UTC))  # the end is exclusive


@pytest.mark.parametrize("text", ["06:00", "6-18", "06:00-06:00", "25:00-06:00"])
def test_bad_shifts_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="shift"):
        parse_shift(text)


def test_pick_needs_the_skill_the_region_the_shift_and_room() -> None:
    crew = [
        tech("A", skills="router"),
        tech("B", region="north"),
        tech("C", shift="18:00-06:00"),
        tech("D", max_open=1),
        tech("E"),
        tech("F"),
    ]
    loads = {"D": 1, "E": 1}
    chosen = pick(crew, loads, "fibre", "south", NOON)
    assert chosen is not None and chosen.id == "F"  # E is busier; D is full; A, B, C cannot
    assert pick(crew, {"D": 1, "E": 2, "F": 2}, "fibre", "south", NOON) is None
    anywhere = pick(crew, {"D": 1, "E": 2, "F": 2}, "fibre", None, NOON)
    assert anywhere is not None and anywhere.id == "B"  # a site without a region: anyone


def test_ties_go_to_the_lowest_id() -> None:
    chosen = pick([tech("Z"), tech("M")], {}, "fibre", "south", NOON)
    assert chosen is not None and chosen.id == "M"


def test_skills_and_field_work_follow_the_fault() -> None:
    assert (
        required_skill(ResourceType.LINK, AlarmType.COMMUNICATIONS, ProbableCause.LOSS_OF_SIGNAL) == "fibre"
    )
    assert (
        required_skill(ResourceType.NODE, AlarmType.EQUIPMENT, ProbableCause.EQUIPMENT_MALFUNCTION)
        == "router"
    )
    assert (
        required_skill(ResourceType.NODE, AlarmType.ENVIRONMENTAL, ProbableCause.HIGH_TEMPERATURE) == "power"
    )
    assert (
        required_skill(ResourceType.SITE, AlarmType.EQUIPMENT, ProbableCause.COMMERCIAL_POWER_FAILURE)
        == "power"
    )
    assert (
        required_skill(ResourceType.CELL, AlarmType.EQUIPMENT, ProbableCause.TRANSMITTER_FAILURE) == "radio"
    )
    assert (
        required_skill(ResourceType.PORT, AlarmType.COMMUNICATIONS, ProbableCause.LOSS_OF_SIGNAL) == "fibre"
    )
    assert needs_field_work(ProbableCause.LOSS_OF_SIGNAL)
    assert not needs_field_work(ProbableCause.SOFTWARE_ERROR)


def test_the_sla_follows_the_priority() -> None:
    assert (due_date(NOON, 1) - NOON).total_seconds() == 4 * 3600
    assert (due_date(NOON, 4) - NOON).total_seconds() == 72 * 3600
    assert due_date(NOON, 9) == due_date(NOON, 4)


def test_overnight_shift_parsing_keeps_times() -> None:
    assert parse_shift("22:30-06:15") == (time(22, 30), time(6, 15))
