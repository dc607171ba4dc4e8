"""The HTTP application: API, event hub and dashboard on one port, with generated OpenAPI at
``/openapi.json`` and its pages at ``/docs``."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from dashboard import hub, live
from dashboard.api import bss, errors, oss
from dashboard.context import Edge
from runtime import http


def create_app(edge: Edge) -> FastAPI:
    app = FastAPI(
        title="ossbss",
        summary="Event-driven telecom OSS/BSS: TM Forum-shaped API and live operations dashboard.",
        version="0.1.0",
    )
    app.state.edge = edge
    errors.install(app)
    app.include_router(oss.router)
    app.include_router(bss.router)
    app.include_router(hub.router)
    app.include_router(live.router)
    return app


def background(edge: Edge) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
    """Every long-running task of the HTTP side (name, coroutine function)."""
    return [*hub.background(edge), *live.background(edge)]


def listen(host: str, port: int) -> socket.socket:
    """The dashboard's listening socket, bound before serving (port 0: any free port)."""
    return http.listen(host, port, "HTTP")


serve = http.serve
