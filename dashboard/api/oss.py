"""OSS resources: TMF642 alarms, TMF621 trouble tickets, TMF697 work orders."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
