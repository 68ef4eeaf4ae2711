"""A headless Chromium driven over the DevTools protocol through ``--remote-debugging-pipe``.

The pipe transport is NUL-separated JSON on file descriptors 3 (commands) and 4 (replies), so no
websocket client is needed. Used by the browser tests of TensorBoard.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

# text of every element under ``root`` (a selector), shadow roots included: TensorBoard's
# HParams dashboard is made of Polymer elements whose content lives in shadow DOM
DEEP_TEXTS = """((selector) => { const out = []; const walk = (n, inside) => {
  if (n.shadowRoot) walk(n.shadowRoot, inside);
  for (const c of n.children || []) { const now = inside || c.matches(selector);
    if (now && c.children.length === 0 && !['STYLE', 'SCRIPT'].includes(c.tagName)) out.push(c.textContent.trim());
    walk(c, now); } };
  walk(document, false); return out.filter(t => t); })"""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless browser page; ``goto``, ``js`` and ``screenshot``."""

    def __init__(self, binary: str, width: int = 1600, height: int = 1000) -> None:
        cmd_r, self._cmd_w = os.pipe()
        resp_r, resp_w = os.pipe()
        self._profile = tempfile.mkdtemp(prefix="trueval-chromium-")
        args = [binary, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
                f"--user-data-dir={self._profile}", f"--window-size={width},{height}", "about:blank"]
        # the browser reads commands on fd 3 and writes replies on fd 4
        self.proc = subprocess.Popen(["bash", "-c", f'exec "$@" 3<&{cmd_r} 4>&{resp_w}', "chromium", *args],
                                     pass_fds=(cmd_r, resp_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(resp_w)
        self._id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._cv = threading.Condition()
        threading.Thread(target=self._read, args=(resp_r,), daemon=True).start()
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", page=True)
        self.send("Emulation.setDeviceMetricsOverride", page=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def _read(self, fd: int) -> None:
        buffer = b""
        with os.fdopen(fd, "rb", buffering=0) as stream:
            while chunk := stream.read(1 << 16):
                buffer += chunk
                while b"\0" in buffer:
                    raw, buffer = buffer.split(b"\0", 1)
                    message = json.loads(raw)
                    if "id" in message:
                        with self._cv:
                            self._replies[message["id"]] = message
                            self._cv.notify_all()

    def send(self, method: str, page: bool = False, timeout: float = 60, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if page:
            message["sessionId"] = self._session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"chromium did not answer {method}")
                self._cv.wait(min(left, 1.0))
            reply = self._replies.pop(self._id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", page=True, url=url)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", page=True, expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Evaluate ``expression`` until it is truthy (the page renders asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.5)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", page=True, format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (TimeoutError, RuntimeError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        shutil.rmtree(self._profile, ignore_errors=True)
