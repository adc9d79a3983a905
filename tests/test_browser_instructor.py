"""The projector page in a real browser: ``ipseclab instructor`` (Voilà) at 1280 x 720.

The page shows no code; nine clicks on *Next* draw Main Mode and Quick Mode; *inspect* on MM5
opens the decrypted message; the *Keys* tab lists SKEYID_e; a scenario switch to Aggressive Mode
restarts the exchange with three phase-1 messages.  Stopped by PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, free_port, missing_browser_requirements

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture
def projector(tmp_path: Path):
    reason = missing_browser_requirements()
    if reason:
        print(f"SKIP the projector page in the browser: {reason}")
        pytest.skip(reason)
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"))
    log = (tmp_path / "instructor.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ipseclab.cli", "instructor", "--port", str(port), "--seed", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError((tmp_path / "instructor.log").read_text()[-2000:])
        time.sleep(0.3)
    try:
        yield url
    finally:  # the CLI and the Voilà server it started: by their process group, which we created
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_projector_page_steps_an_exchange_without_code(projector: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
            page.set_default_timeout(60_000)
            page.goto(projector)
            view = page.locator(".ipl-projector")
            view.wait_for(state="visible")
            assert page.locator(".jp-InputArea-editor, .CodeMirror, .cm-editor").count() == 0, "no code on the projector"
            expect(view).to_contain_text("Peers in memory")
            arrows = view.locator(".ipl-diagram svg.ipl-arrow")
            next_button = view.locator('.widget-button:has-text("Next ▶")')
            expect(arrows).to_have_count(1)
            for step in range(1, 10):
                next_button.click()
                expect(arrows).to_have_count(min(step + 1, 9))
            expect(view.locator(".ipl-stepper")).to_contain_text("Established")
            view.locator('.widget-button[title="inspect MM5"]').click()
            expect(view.locator(".ipl-inspector")).to_contain_text("decrypted payloads")
            page.screenshot(path=str(ARTIFACTS / "projector_1_main_mode.png"))
            view.locator('.lm-TabBar-tab:has-text("Keys")').click()
            expect(view.locator(".ipl-keys")).to_contain_text("SKEYID_e")
            view.locator("select").filter(has=page.locator("option", has_text="Aggressive Mode")).select_option("Aggressive Mode")
            view.locator('.widget-button.mod-success:has-text("Start")').click()
            expect(arrows).to_have_count(1)
            view.locator('.widget-button:has-text("Run to end")').click()
            expect(arrows).to_have_count(6)
            labels = [arrows.nth(i).get_attribute("data-label").split()[0] for i in range(6)]
            assert labels == ["AM1", "AM2", "AM3", "QM1", "QM2", "QM3"], labels
            page.screenshot(path=str(ARTIFACTS / "projector_2_aggressive.png"))
        finally:
            browser.close()
