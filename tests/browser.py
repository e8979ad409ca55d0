"""Headless Chromium driven over the DevTools protocol on a pipe (stdlib only).

`chromium --remote-debugging-pipe` reads protocol commands as JSON from its file descriptor 3
and writes replies and events to descriptor 4, each message ended by a NUL byte: no websocket
library, no open debugging port. A test loads a page, waits until an expression holds, runs
JavaScript in it (clicks included), and saves screenshots.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

# where Debian, Ubuntu and Google put it
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find() -> str | None:
    return next((path for name in NAMES if (path := shutil.which(name))), None)


def install() -> str | None:
    """Debian's chromium, installed with apt-get when this process may (root); its path, or
    None with apt-get absent or refused."""
    if find() or shutil.which("apt-get") is None or os.geteuid() != 0:
        return find()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(command, env=env, capture_output=True, timeout=900).returncode != 0:
            return None
    return find()


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to descriptors >= 10, clear of the browser's 3 and 4."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved  # type: ignore[return-value]


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless browser with one page, closed (with its process group) by `close`."""

    def __init__(self, binary: str, profile: Path, size: tuple[int, int] = (1600, 1000)) -> None:
        to_browser_r, self._to_browser = _high(os.pipe())
        self._from_browser, from_browser_w = _high(os.pipe())
        args = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}", "about:blank"]  # fmt: skip
        # bash places the pipe ends on the browser's descriptors 3 and 4, then becomes it
        reads, writes = to_browser_r, from_browser_w
        script = f'exec "$@" 3<&{reads} 4>&{writes} {reads}<&- {writes}>&-'
        self.process = subprocess.Popen(
            ["bash", "-c", script, "chromium", *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(to_browser_r, from_browser_w), start_new_session=True,
        )  # fmt: skip
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self.session: str | None = None
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", {"targetId": page["targetId"],
                                                       "flatten": True})  # fmt: skip
        self.session = attached["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    # -- the protocol -----------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any] | None = None, timeout: float = 60) -> Any:
        """Send one command and wait for its reply (events in between are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise BrowserError("no reply from the browser in time (or it exited)")
            ready, _, _ = select.select([self._from_browser], [], [], min(left, 1))
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("the browser closed its pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    # -- what a test does -------------------------------------------------------------------
    def open(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})  # fmt: skip
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 90, what: str = "") -> None:
        """Poll until the expression is truthy (a single-page app renders after loading)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(f"!!({expression})")
            except BrowserError:
                value = None
            if value:
                return
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''") or ""
                raise BrowserError(f"timed out waiting for {what or expression}; the page "
                                   f"shows: {' '.join(text.split())[:1500]}")  # fmt: skip
            time.sleep(0.5)

    def click(self, element: str) -> None:
        """Click, as a mouse does, the element a JavaScript expression gives (scrolled into
        view first): menus that open on pointer events open."""
        where = (f"(() => {{ const e = {element}; e.scrollIntoView({{block: 'center'}});"
                 " const r = e.getBoundingClientRect();"
                 " return [r.x + r.width / 2, r.y + r.height / 2]; })()")  # fmt: skip
        box, deadline = self.evaluate(where), time.monotonic() + 10
        while time.monotonic() < deadline:  # menus and dialogs move while they open
            time.sleep(0.3)
            again = self.evaluate(where)
            if again == box:
                break
            box = again
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                   "button": "left", "clickCount": 1})  # fmt: skip

    def by_text(self, text: str) -> str:
        """A JavaScript expression for the innermost clickable element showing `text`."""
        path = json.dumps(f"//*[normalize-space(text())={text!r}]")
        return (f"(() => {{ const x = document.evaluate({path}"
                ", document, null, XPathResult.ORDERED_NODE_SNAPSHOT_TYPE, null);"
                " const e = x.snapshotItem(x.snapshotLength - 1);"
                " return e.closest('button,[role=button],[role=menuitem],[role=option],a,label')"
                " || e; })()")  # fmt: skip

    def text(self) -> str:
        return self.evaluate("document.body.innerText") or ""

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.evaluate("[document.documentElement.scrollWidth, "
                                 "document.documentElement.scrollHeight]")  # fmt: skip
            params["clip"] = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """End the browser and everything it started (its process group)."""
        if self.process.poll() is None:
            try:
                self.call("Browser.close", timeout=10)
                self.process.wait(timeout=10)
            except (BrowserError, OSError, subprocess.TimeoutExpired):
                pass
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        else:  # its helpers (renderer, zygote) share its group
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
