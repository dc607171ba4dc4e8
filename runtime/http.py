"""Serving an ASGI application inside a process that owns its own lifecycle: bind first, serve
until cancelled, then shut down the way uvicorn does on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn


def listen(host: str, port: int, what: str = "HTTP") -> socket.socket:
    """Bind the listening socket first, so that port 0 resolves to a real port before serving and
    a port in use fails at once with one line naming ``what`` listens there."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen for {what} on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the process that embeds it decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` on an already bound socket until cancelled; then stop listening, close the
    connections and give open responses at most two seconds, so that nothing of the listener stays
    registered with the event loop. The socket stays the caller's to close."""
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
