"""`ossbss up` on its embedded servers: they stop with it on Ctrl-C and when it is killed, and a
start-up failure is one clear line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.test_fault_to_notification import OSSBSS, free_ports


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    env["OSSBSS_STATE_DIR"] = str(tmp_path / "state")
    env["OSSBSS_LOG_FORMAT"] = "json"
    env.update(free_ports(tmp_path))
    return env


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[psutil.Process]]:
    process = subprocess.Popen(
        [OSSBSS, "up", "--no-simulator"],
        env=_embedded_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("ossbss is up"), line
    servers = [
        child
        for child in psutil.Process(process.pid).children(recursive=False)
        if child.name().startswith(("tansu", "postgres"))
    ]
    assert {s.name().split("-")[0] for s in servers} == {"tansu", "postgres"}
    return process, servers


def _gone(servers: list[psutil.Process], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(s.is_running() and s.status() != psutil.STATUS_ZOMBIE for s in servers):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_embedded_servers_do_not_outlive_the_process(tmp_path: Path, how: signal.Signals) -> None:
    process, servers = _start(tmp_path)
    process.send_signal(how)
    process.wait(timeout=30)
    if how == signal.SIGINT:
        assert process.returncode == 0
    assert _gone(servers), [s.pid for s in servers if s.is_running()]


def test_start_up_failures_are_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _embedded_env(tmp_path) | {"OSSBSS_BROKER_PORT": str(port)}
        done = subprocess.run([OSSBSS, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"ossbss: port {port} on 127.0.0.1 is already in use")
    assert "Traceback" not in done.stderr

    env = _embedded_env(tmp_path) | {"DATABASE_URL": "mysql://db/x"}
    done = subprocess.run([OSSBSS, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "ossbss: bad setting DATABASE_URL: Value error, DATABASE_URL must start with postgresql:// or postgres://"
    )
