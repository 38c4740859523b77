"""Headless Chromium over the DevTools protocol (aiohttp websocket client): console errors, values, screenshots."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Without the background-networking flags Chromium keeps trying Google's hosts on a closed network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)

# Every figure's traces as plain JSON (typed arrays become lists).
FIGURE_DATA_JS = """
Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => ({
  id: gd.id,
  traces: gd.data.map(t => ({
    name: t.name, meta: t.meta || null, x: Array.from(t.x || []), y: Array.from(t.y || []),
    customdata: t.customdata ? Array.from(t.customdata) : null,
    error_y: t.error_y && t.error_y.array ? {plus: Array.from(t.error_y.array),
                                             minus: Array.from(t.error_y.arrayminus || t.error_y.array)} : null,
    error_x: t.error_x && t.error_x.array ? {plus: Array.from(t.error_x.array),
                                             minus: Array.from(t.error_x.arrayminus || t.error_x.array)} : null,
    xaxis: t.xaxis || 'x', yaxis: t.yaxis || 'y'})),
  axes: Object.fromEntries(Object.keys(gd._fullLayout).filter(k => /^[xy]axis\\d*$/.test(k)).map(k => [k, {
    range: gd._fullLayout[k].range, tickmode: gd._fullLayout[k].tickmode,
    ticks: (gd._fullLayout[k]._vals || []).map(v => v.text),
    title: gd._fullLayout[k].title && gd._fullLayout[k].title.text}]))
}))
"""


def require_chromium() -> str:
    """The browser, installed by `make venv` where it can be (root); a root machine without it is a broken setup."""
    if CHROMIUM is None:
        if os.geteuid() == 0:
            pytest.fail("chromium is not installed: `make venv` installs Debian's chromium (apt-get, as root)")
        pytest.skip("chromium is not installed and this user cannot install it (make venv does as root)")
    return CHROMIUM


@dataclass
class PageResult:
    errors: list[str]  # console errors, uncaught exceptions, failed loads and CSP violations
    values: list[Any]
    screenshot: Path | None
    messages: list[str] = field(default_factory=list)


def open_page(
    url: str,
    profile: Path,
    *,
    expressions: Sequence[str] = (),
    screenshot: Path | None = None,
    width: int = 1400,
    element_shots: Sequence[tuple[str, Path]] = (),
    # Loaded, and every figure drawn (or failed: the page script marks both); a page without figures (an error
    # page) is ready once loaded, so its test fails on what it shows instead of timing out.
    ready: str = (
        "document.readyState === 'complete' && (document.querySelectorAll('script[data-figure]').length === 0"
        " || document.body.hasAttribute('data-figures'))"
    ),
    timeout: float = 90.0,
) -> PageResult:
    """Load ``url`` in a fresh headless Chromium, wait for ``ready``, evaluate ``expressions``, then screenshot."""
    chromium = require_chromium()
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [chromium, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},1000", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chromium did not open its DevTools port (exit code {process.poll()})")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        return asyncio.run(
            asyncio.wait_for(_drive(port, url, expressions, screenshot, width, ready, element_shots), timeout=timeout)
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _drive(
    port: int,
    url: str,
    expressions: Sequence[str],
    screenshot: Path | None,
    width: int,
    ready: str,
    element_shots: Sequence[tuple[str, Path]] = (),
) -> PageResult:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = _Session(ws)
            reader = asyncio.create_task(cdp.read())
            try:
                for domain in ("Runtime", "Log", "Page"):
                    await cdp.call(f"{domain}.enable")
                await cdp.call("Page.navigate", url=url)
                while not await cdp.evaluate(ready):
                    await asyncio.sleep(0.1)
                values = [await cdp.evaluate(expression) for expression in expressions]
                shot = None
                if screenshot is not None:
                    height = await cdp.evaluate("Math.ceil(document.documentElement.scrollHeight)")
                    await cdp.call(
                        "Emulation.setDeviceMetricsOverride",
                        width=width,
                        height=min(int(height), 16000),
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    await asyncio.sleep(0.5)  # responsive figures redraw at the new size
                    image = await cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                    screenshot.write_bytes(base64.b64decode(image["data"]))
                    shot = screenshot
                for selector, path in element_shots:  # one element at full resolution (what a person looks at)
                    box = await cdp.evaluate(
                        f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                        " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()"
                    )
                    image = await cdp.call(
                        "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip={**box, "scale": 1}
                    )
                    path.write_bytes(base64.b64decode(image["data"]))
                await asyncio.sleep(0.2)  # late console messages
                return PageResult(cdp.errors, values, shot, cdp.messages)
            finally:
                reader.cancel()


class _Session:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.errors: list[str] = []
        self.messages: list[str] = []

    async def read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self.pending.pop(data["id"])
                if "error" in data:
                    future.set_exception(RuntimeError(f"CDP error: {data['error']}"))
                else:
                    future.set_result(data.get("result", {}))
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                self.messages.append(f"{params['type']}: {text}")
                if params["type"] in ("error", "assert"):
                    self.errors.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                self.errors.append(f"exception: {details.get('exception', {}).get('description', details['text'])}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                self.errors.append(f"log ({entry.get('source')}): {entry['text']} {entry.get('url', '')}")

    async def call(self, method: str, **params: Any) -> Any:
        ident = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_json({"id": ident, "method": method, "params": params})
        return await future

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:80]}... raised {result['exceptionDetails']}")
        return result["result"].get("value")


def keep_screenshot(path: Path | None) -> None:
    """Copy a screenshot to $EVALS_SCREENSHOTS (when set) so a person can look at it after the run."""
    target = os.environ.get("EVALS_SCREENSHOTS")
    if path is not None and target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
