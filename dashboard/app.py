"""The HTTP application: API, event hub and dashboard on one port, with generated OpenAPI at
``/openapi.json`` and its pages at ``/docs``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI

from dashboard import hub, live
from dashboard.api import bss, errors, oss
from dashboard.context import Edge


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
    """Bind the listening socket first, so that port 0 resolves to a real port before serving and
    a port in use fails at once with one line."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen for HTTP on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the process that embeds it decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: FastAPI, sock: socket.socket) -> None:
    """Serve ``app`` on an already bound socket until cancelled; then shut down as uvicorn does on
    a signal (stop listening, close connections, at most two seconds for open responses), so
    that nothing of the listener stays registered with the event loop."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = _Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, timeout=5.0)
        raise
