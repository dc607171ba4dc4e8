"""BSS resources: TMF622 product orders, TMF678 customer bills, TMF635 usage."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
