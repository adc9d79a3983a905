"""Helpers for the real-browser tests: a private JupyterLab server and a Playwright-driven page.

* :class:`LabServer` starts ``jupyter lab`` from this Python environment on a free 127.0.0.1
  port with a random token, its own runtime/config/settings/workspace directories (so nothing
  from the user's ``~/.jupyter`` leaks in and nothing is written there), the news/update toast
  switched off and notebook windowing disabled (every cell stays in the DOM).  It is stopped by
  its PID: terminate, wait, kill.
* :class:`LabPage` wraps a Playwright page on that server: open a notebook through Lab's own
  command registry (``window.jupyterapp``, exposed by ``--LabApp.expose_app_in_browser``), run all
  cells, wait for the kernel to be idle, collect errors, take screenshots, close the notebook
  and shut its kernel down.

Launching Chromium: always Debian's ``/usr/bin/chromium`` (Playwright cannot download browsers
on these machines) with the arguments from ``/work/shared/notes/machine-facts.md``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
MAX_SHOT_HEIGHT = 16_000  # px: taller notebooks are cut in their screenshot

# JupyterLab user settings written into the private settings directory.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # no "Would you like to get notified about Jupyter news?" toast over the lower right
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    # render every cell (no virtual scrolling), so DOM checks and screenshots see all of them;
    # no blank space after the last cell, so a notebook can be grown to its content's height
    # a notebook naming a kernelspec this server lacks gets the default kernel, not a dialog
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "scrollPastEnd": False,
        "autoStartDefaultKernel": True,
    },
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_browser_requirements() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing (pip install playwright; never 'playwright install' here)"
    return None


@dataclass
class LabServer:
    """A private ``jupyter lab`` serving ``root_dir``; every other directory lives under ``state_dir``."""

    root_dir: Path
    state_dir: Path
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        return f"{self.base_url}/{path}?token={self.token}"

    def start(self, timeout: float = 60) -> None:
        config_dir = self.state_dir / "config"
        settings_dir = self.state_dir / "user-settings"
        for rel, value in LAB_SETTINGS.items():
            p = settings_dir / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(json.dumps(value))
        for d in ("config", "runtime", "workspaces", "ipython"):
            (self.state_dir / d).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTER_RUNTIME_DIR=str(self.state_dir / "runtime"),
            IPYTHONDIR=str(self.state_dir / "ipython"),
            PYTHONUNBUFFERED="1",
        )
        env.pop("JUPYTER_TOKEN", None)
        self.port = self.port or free_port()
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={settings_dir}",
            f"--LabApp.workspaces_dir={self.state_dir / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        self.log_path = self.state_dir / "jupyter-lab.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            cmd, cwd=self.root_dir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer /api/status within {timeout} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate the server by its PID (never by name); kill it if it lingers."""
        p = self.process
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Jupyter asks for confirmation on the first SIGINT/SIGTERM only on a tty; be sure anyway.
            p.kill()
            p.wait(timeout=10)

    def log_tail(self, n: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])


# JavaScript run in the page.  `app` is window.jupyterapp; the notebook panel is found by path.
_JS_FIND = """
const findPanel = (path) => {
  for (const w of window.jupyterapp.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) return w;
  }
  return null;
};
"""

# page.evaluate has no timeout of its own: every promise awaited here is raced against one
_JS_TIMEOUT = """
const within = (promise, ms, what) => Promise.race([
  promise,
  new Promise((_, reject) => setTimeout(() => reject(new Error('timed out: ' + what)), ms)),
]);
"""

_JS_OPEN = (
    "async ([path, ms]) => {"
    + _JS_TIMEOUT
    + """
  const app = window.jupyterapp;
  await within(app.restored, ms, 'Lab restored');
  const w = await within(app.commands.execute('docmanager:open', {path, factory: 'Notebook'}), ms, 'open ' + path);
  await within(w.context.ready, ms, path + ' loaded');
  app.shell.activateById(w.id);
  return w.id;
}"""
)

_JS_KERNEL_IDLE = (
    "(path) => {"
    + _JS_FIND
    + """
  const w = findPanel(path);
  if (!w) return false;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""
)

_JS_RUN_ALL = (
    "async ([path, ms]) => {"
    + _JS_FIND
    + _JS_TIMEOUT
    + """
  const app = window.jupyterapp;
  const w = findPanel(path);
  app.shell.activateById(w.id);
  await within(app.commands.execute('notebook:run-all-cells'), ms, 'run all cells of ' + path);
  return true;
}"""
)

# no cell is running or queued (no '*' prompt); Run All stops at a cell that raises
_JS_NONE_PENDING = (
    "(path) => {"
    + _JS_FIND
    + """
  const w = findPanel(path);
  if (!w) return false;
  const prompts = [...w.node.querySelectorAll('.jp-InputPrompt')].map(p => p.textContent);
  return !prompts.some(t => t.includes('*'));
}"""
)

# every widget output has its view in the DOM (or shows why not)
_JS_WIDGETS_RENDERED = (
    "(path) => {"
    + _JS_FIND
    + """
  const w = findPanel(path);
  const outs = [...w.node.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.widget-view+json"]')];
  return outs.every(o => o.querySelector('.jupyter-widgets') || /Error displaying widget/.test(o.innerText));
}"""
)

# per cell: tags, error outputs from the model, stderr / Traceback text from the DOM
_JS_REPORT = (
    "(path) => {"
    + _JS_FIND
    + """
  const w = findPanel(path);
  const model = w.content.model.toJSON();
  const nodes = [...w.content.node.querySelectorAll(':scope .jp-Cell')];
  return model.cells.map((c, i) => {
    const node = nodes[i];
    const q = (sel) => node ? [...node.querySelectorAll(sel)].map(e => e.innerText) : [];
    return {
      index: i,
      type: c.cell_type,
      tags: (c.metadata && c.metadata.tags) || [],
      source: Array.isArray(c.source) ? c.source.join('') : c.source,
      ran: c.cell_type !== 'code' || c.execution_count !== null,
      errors: (c.outputs || []).filter(o => o.output_type === 'error')
                .map(o => o.ename + ': ' + o.evalue),
      stderr: q('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'),
      rendered: q('.jp-OutputArea-output .jp-RenderedText'),
      widget_errors: node ? (node.innerText.match(/Error displaying widget[^\\n]*/g) || []) : [],
    };
  });
}"""
)

_JS_CLOSE = (
    "async ([path, ms]) => {"
    + _JS_FIND
    + _JS_TIMEOUT
    + """
  const w = findPanel(path);
  if (!w) return false;
  try {
    await within(w.sessionContext.shutdown(), ms, 'kernel shutdown');
  } finally {
    w.dispose();
  }
  return true;
}"""
)

# the notebook's scroll container: how much taller its content is than its window
_JS_OVERFLOW = (
    "(path) => {"
    + _JS_FIND
    + """
  const w = findPanel(path);
  let best = 0;
  for (const el of [w.content.node, ...w.content.node.querySelectorAll(':scope > *')]) {
    best = Math.max(best, el.scrollHeight - el.clientHeight);
  }
  return best;
}"""
)


# scroll the notebook to its first cell (Run All leaves it at the last one)
_JS_SCROLL_TOP = (
    "(path) => {"
    + _JS_FIND
    + """
  const w = findPanel(path);
  for (const el of [w.content.node, ...w.content.node.querySelectorAll(':scope > *')]) el.scrollTop = 0;
  return true;
}"""
)


@dataclass
class CellProblem:
    index: int
    what: str
    text: str

    def __str__(self) -> str:
        return f"cell {self.index}: {self.what}: {self.text[:1500]}"


class LabPage:
    """One Chromium page showing the private Lab; notebooks are opened and closed in it."""

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server
        self.console_errors: list[str] = []
        page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: self.console_errors.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None,
        )

    def load(self, timeout: float = 60_000) -> None:
        self.page.goto(self.server.url("lab"), wait_until="domcontentloaded", timeout=timeout)
        self.page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout)
        self.page.evaluate("async () => { await window.jupyterapp.restored; }")
        self.page.wait_for_selector(".jp-DirListing-content", timeout=timeout)

    def open(self, path: str, timeout: float = 60_000) -> Any:
        """Open a notebook, wait for its kernel; returns the locator of its panel."""
        widget_id = self.page.evaluate(_JS_OPEN, [path, timeout])
        # a kernel dialog (should the settings not prevent it) is answered with the default kernel
        deadline = time.monotonic() + timeout / 1000
        while not self.page.evaluate(_JS_KERNEL_IDLE, path):
            dialog = self.page.locator(".jp-Dialog .jp-mod-accept")
            if dialog.count():
                dialog.first.click()
            if time.monotonic() > deadline:
                raise AssertionError(f"{path}: the kernel was not idle after {timeout / 1000:.0f} s")
            time.sleep(0.1)
        panel = self.page.locator(f"#{widget_id}")
        panel.wait_for(state="visible", timeout=timeout)
        return panel

    def wait_kernel_idle(self, path: str, timeout: float = 60_000) -> None:
        self.page.wait_for_function(_JS_KERNEL_IDLE, arg=path, timeout=timeout, polling=100)

    def run_all(self, path: str, timeout: float = 120_000) -> None:
        """Run all cells; wait until none is running or queued and the kernel is idle."""
        self.page.evaluate(_JS_RUN_ALL, [path, timeout])
        self.page.wait_for_function(_JS_NONE_PENDING, arg=path, timeout=timeout, polling=100)
        self.wait_kernel_idle(path, timeout)
        self.page.wait_for_function(_JS_WIDGETS_RENDERED, arg=path, timeout=timeout, polling=100)

    def problems(self, path: str) -> list[CellProblem]:
        """Error outputs, Tracebacks on stderr and widget display errors.

        Cells tagged ``raises-exception`` (the nbconvert/nbclient convention) may show an error.
        A code cell that did not run (Run All stopped at an error) is a problem too.
        """
        out = []
        for cell in self.page.evaluate(_JS_REPORT, path):
            if not cell["ran"] and cell["source"].strip():
                out.append(CellProblem(cell["index"], "not run", cell["source"][:200]))
            if "raises-exception" in cell["tags"]:
                continue
            out += [CellProblem(cell["index"], "error output", e) for e in cell["errors"]]
            out += [CellProblem(cell["index"], "stderr Traceback", t) for t in cell["stderr"] if "Traceback" in t]
            out += [
                CellProblem(cell["index"], "Traceback in output", t)
                for t in cell["rendered"]
                if "Traceback" in t and t not in cell["stderr"]
            ]
            out += [CellProblem(cell["index"], "widget", t) for t in cell["widget_errors"]]
        return out

    def stderr_texts(self, path: str) -> list[str]:
        """Every stderr output (warnings included), for the test log."""
        return [t for c in self.page.evaluate(_JS_REPORT, path) for t in c["stderr"]]

    def _frames(self, n: int = 2) -> None:
        """Let the page lay out and paint after a resize or scroll."""
        self.page.evaluate(
            "(n) => new Promise(r => { const f = k => k ? requestAnimationFrame(() => f(k - 1)) : r(); f(n); })", n
        )

    @contextmanager
    def viewport_height(self, height: int) -> Iterator[None]:
        """Temporarily make the window at least ``height`` pixels tall (same width)."""
        size = dict(self.page.viewport_size or VIEWPORT)
        if height > size["height"]:
            self.page.set_viewport_size({"width": size["width"], "height": height})
            self._frames()
        try:
            yield
        finally:
            self.page.set_viewport_size(size)

    def screenshot_notebook(self, path: str, file: Path, max_height: int = MAX_SHOT_HEIGHT) -> None:
        """The whole notebook as one tall page (Lab's notebook scrolls by itself, so the
        window is grown until it no longer has to, up to ``max_height``)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        file.parent.mkdir(parents=True, exist_ok=True)
        height = (self.page.viewport_size or VIEWPORT)["height"] + self.page.evaluate(_JS_OVERFLOW, path) + 40
        with self.viewport_height(min(height, max_height)):
            if height <= max_height:
                with suppress(PlaywrightTimeout):
                    self.page.wait_for_function(
                        f"(path) => ({_JS_OVERFLOW})(path) <= 2", arg=path, timeout=5_000, polling=100
                    )
            self.page.evaluate(_JS_SCROLL_TOP, path)
            self._frames()
            self.page.screenshot(path=str(file), full_page=True)

    def screenshot_element(self, locator: Any, file: Path, max_height: int = MAX_SHOT_HEIGHT) -> None:
        """One widget, all of it: the window is made tall enough for it, and it is scrolled
        to the top of the notebook."""
        file.parent.mkdir(parents=True, exist_ok=True)
        box = locator.bounding_box()
        # menu bar, tab bar, notebook toolbar and status bar take about 150 px
        with self.viewport_height(min(int(box["height"]) + 200 if box else 0, max_height)):
            locator.evaluate("e => e.scrollIntoView({block: 'start'})")
            self._frames()
            locator.screenshot(path=str(file))

    def close(self, path: str, timeout: float = 20_000) -> None:
        self.page.evaluate(_JS_CLOSE, [path, timeout])
