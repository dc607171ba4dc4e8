"""The live dashboard in a real browser against the running system: an alarm raised by a probe
appears on the open page within seconds, without a reload, and acknowledging it from the page
shows it acknowledged once fault management has applied the request."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
import yaml
from playwright.async_api import Browser, Page, async_playwright, expect

from runtime.embedded import start_broker
from runtime.infra import Endpoints
from runtime.settings import PROJECT_ROOT

OSSBSS = str(Path(sys.executable).parent / "ossbss")
LINK = "LINK-LON-CR1-AG1"  # London's only way out of its aggregation switch: its services go down
OPERATOR = "e2e-operator"
SOON = 15_000  # ms: how long the page may take to show a change


@dataclass
class Dashboard:
    env: dict[str, str]
    process: subprocess.Popen[str]
    url: str
    output: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> str:
        done = subprocess.run([OSSBSS, *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"ossbss {' '.join(args)} failed: {done.stderr}"
        return done.stdout


def chromium() -> str:
    """Debian's chromium; its absence fails the test (CI installs it), it never skips it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium is not installed: the dashboard test drives Debian's chromium "
            "(apt-get install chromium); Playwright cannot download a browser here"
        )
    return path


def _drain(stream: Iterator[str], into: list[str]) -> None:
    """Keep reading the system's output so that its pipe never fills."""
    for line in stream:
        into.append(line)


@pytest_asyncio.fixture(loop_scope="session")
async def dashboard(endpoints: Endpoints, tmp_path: Path) -> AsyncIterator[Dashboard]:
    chromium()  # a missing browser is the failure to report, before starting anything
    # A broker and a database of its own, as the other end-to-end tests have.
    broker = await start_broker()
    name = f"e2e_dash_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(endpoints.database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "DATABASE_URL": endpoints.database_url.rsplit("/", 1)[0] + f"/{name}",
        "OSSBSS_STATE_DIR": str(tmp_path / "state"),
        "OSSBSS_LOG_FORMAT": "json",
        "OSSBSS_REBALANCE_TIMEOUT_MS": "2000",
        "OSSBSS_HTTP_PORT": "0",
        "OSSBSS_RECEIVERS": "",
        "OSSBSS_CDR_INBOX": str(tmp_path / "cdr-inbox"),
    }
    log = tmp_path / "up.log"
    process = subprocess.Popen(
        [OSSBSS, "up", "--no-simulator"], env=env, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        url = await asyncio.wait_for(asyncio.to_thread(_dashboard_url, process.stdout, output), timeout=90)
    except (TimeoutError, AssertionError):
        process.kill()
        await broker.stop()
        raise AssertionError(f"no dashboard URL; output: {output}\n{log.read_text()[-3000:]}") from None
    threading.Thread(target=_drain, args=(process.stdout, output), daemon=True).start()
    try:
        yield Dashboard(env, process, url, output)
    finally:
        process.send_signal(2)
        await asyncio.to_thread(process.wait, timeout=30)
        await broker.stop()
        assert process.returncode == 0, log.read_text()[-3000:]


def _dashboard_url(stdout: Iterator[str], output: list[str]) -> str:
    """The URL in ``dashboard and API at http://HOST:PORT/ ...``, the line ``ossbss up`` prints
    once it serves."""
    for line in stdout:
        output.append(line)
        if line.startswith("dashboard and API at "):
            return line.split()[4]
    raise AssertionError("ossbss up ended before serving the dashboard")


@contextlib.asynccontextmanager
async def browser_page(tmp_path: Path) -> AsyncIterator[tuple[Page, list[str]]]:
    """A headless chromium page, and the errors its scripts raise."""
    executable = chromium()
    async with async_playwright() as playwright:
        browser: Browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1200})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            try:
                yield page, errors
            finally:
                await page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            await browser.close()


def services_on(link: str) -> set[str]:
    """The demo services placed on ``link``."""
    network = yaml.safe_load((PROJECT_ROOT / "demo" / "network.yaml").read_text())
    return {s["id"] for s in network["services"] if link in s["path"]}


async def test_an_alarm_appears_live_and_is_acknowledged_from_the_page(
    dashboard: Dashboard, tmp_path: Path
) -> None:
    async with browser_page(tmp_path) as (page, errors):
        await page.goto(dashboard.url)
        await expect(page.locator("#connection")).to_have_text("live", timeout=SOON)
        await expect(page.locator("#alarms")).to_contain_text("No open alarms", timeout=SOON)

        dashboard.cli("probe", "raise", LINK)

        row = page.locator(f'.alarm[data-object="{LINK}"]')
        await expect(row).to_be_visible(timeout=SOON)
        await expect(row).to_have_attribute("data-ack-state", "unacknowledged")
        await expect(row).to_contain_text("lossOfSignal")
        # The other panes follow the same events: the stream, the map and the outages.
        await expect(page.locator('#stream tr[data-type="AlarmRaised"]').first).to_be_visible(timeout=SOON)
        await expect(page.locator(f'#network g.link[data-resource="{LINK}"]')).to_have_class(
            re.compile(r"\bsev-critical\b"), timeout=SOON
        )
        await expect(page.locator("#outages tr[data-service-id]")).to_have_count(
            len(services_on(LINK)), timeout=SOON
        )

        await page.locator("#operator").fill(OPERATOR)
        await row.get_by_role("button", name="Acknowledge").click()

        await expect(row).to_have_attribute("data-ack-state", "acknowledged", timeout=SOON)
        await expect(row).to_contain_text(f"acknowledged by {OPERATOR}")
        await expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
        assert errors == [], errors
