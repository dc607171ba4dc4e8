"""TMF638 service states and the moves between them, free of I/O.

Provisioning walks a new service through ``designed`` (a path is chosen), ``reserved`` (the
path's resources are held for it) and ``active``, in one transaction; termination ends any
state but ``terminated`` itself, which is final.
"""

from __future__ import annotations

from enum import StrEnum


class ServiceState(StrEnum):
    """TMF638 ``ServiceStateType``."""

    FEASIBILITY_CHECKED = "feasibilityChecked"
    DESIGNED = "designed"
    RESERVED = "reserved"
    INACTIVE = "inactive"
    ACTIVE = "active"
    TERMINATED = "terminated"


NEXT: dict[ServiceState, frozenset[ServiceState]] = {
    ServiceState.FEASIBILITY_CHECKED: frozenset({ServiceState.DESIGNED, ServiceState.TERMINATED}),
    ServiceState.DESIGNED: frozenset({ServiceState.RESERVED, ServiceState.TERMINATED}),
    ServiceState.RESERVED: frozenset({ServiceState.INACTIVE, ServiceState.ACTIVE, ServiceState.TERMINATED}),
    ServiceState.INACTIVE: frozenset({ServiceState.ACTIVE, ServiceState.TERMINATED}),
    ServiceState.ACTIVE: frozenset({ServiceState.INACTIVE, ServiceState.TERMINATED}),
    ServiceState.TERMINATED: frozenset(),
}
"""The states each state may move to."""

PROVISIONING = (ServiceState.DESIGNED, ServiceState.RESERVED, ServiceState.ACTIVE)
"""The states a provided service passes, in order."""


def may_move(current: str, target: ServiceState) -> bool:
    """Whether a service in state ``current`` may move to ``target``. An unknown state may not
    move at all: the inventory would not know what it is ending."""
    try:
        return target in NEXT[ServiceState(current)]
    except ValueError:
        return False


def preceding(target: ServiceState) -> list[str]:
    """The states from which a service may move to ``target``."""
    return [state.value for state, nexts in NEXT.items() if target in nexts]
