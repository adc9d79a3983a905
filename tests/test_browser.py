"""The labs in a real browser: JupyterLab served from this environment, driven by headless Chromium.

* every notebook in ``labs/`` opens, runs all cells without an error output or a Traceback, and
  is photographed to ``tests/artifacts/<notebook>.png``;
* in a notebook that shows an ``IkeLab``, a student's walk through the exchange: nine clicks on
  *Next* deliver Main Mode and Quick Mode, the sequence diagram shows nine arrows with the right
  notation, both peers reach ``QM_IDLE``, *inspect* on MM5 decodes its encrypted payloads and a
  selected field is highlighted in the hex dump (``tests/artifacts/stepper_*.png``).

The server runs on a temporary copy of ``labs/`` so runs never dirty the tree.  Needs Debian's
``/usr/bin/chromium`` and the ``playwright`` package (skipped, with the reason, without them);
Playwright is never asked to download a browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    LabPage,
    LabServer,
    missing_browser_requirements,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
LABS = Path(os.environ.get("IPSECLAB_BROWSER_LABS", ROOT / "labs"))  # override: try other notebooks
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
NOTEBOOKS = sorted(p.name for p in LABS.glob("*.ipynb"))
FALLBACK = "_ikelab_browser_check.ipynb"
TIMEOUT = 60_000  # ms, for every wait on the page


def _code_sources(nb: Path) -> str:
    cells = json.loads(nb.read_text()).get("cells", [])
    return "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")


def ikelab_notebook() -> str | None:
    """The lab notebook the stepper test drives: its first IkeLab is the plain seeded demo
    (``IkeLab(DemoOptions(seed=...))``, nine messages from MM1 to QM3); 01 or 04 first.
    None: no lab has one, the test uses a notebook of its own."""
    candidates = [n for n in NOTEBOOKS if _demo_seed(_code_sources(LABS / n)) is not None]
    preferred = [n for n in candidates if n.startswith(("01", "04"))]
    return (preferred or candidates or [None])[0]


def _fallback_notebook(path: Path) -> None:
    """A one-cell notebook showing the default demo lab (used only if no lab shows an IkeLab)."""
    source = "from ipseclab.demo import DemoOptions\nfrom ipseclab.teaching.widgets import IkeLab\n\nIkeLab(DemoOptions(seed=1))\n"
    nb = {
        "cells": [{"cell_type": "code", "execution_count": None, "id": "ikelab", "metadata": {}, "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabPage]:
    reason = missing_browser_requirements()
    if reason:
        print(f"SKIP browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("browser")
    root = tmp / "labs"
    shutil.copytree(LABS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "lab-export"))
    if ikelab_notebook() is None:
        _fallback_notebook(root / FALLBACK)
    server = LabServer(root_dir=root, state_dir=tmp / "state")
    t0 = time.monotonic()
    server.start()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                page.set_default_timeout(TIMEOUT)
                lab_page = LabPage(page, server)
                lab_page.load()
                print(f"JupyterLab up and loaded in Chromium after {time.monotonic() - t0:.1f} s")
                yield lab_page
                if lab_page.console_errors:
                    print("browser console errors:\n  " + "\n  ".join(lab_page.console_errors[:30]))
            finally:
                browser.close()
    finally:
        server.stop()


@pytest.mark.skipif(not NOTEBOOKS, reason="labs/ holds no notebook yet")
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_clean_in_jupyterlab(lab: LabPage, notebook: str) -> None:
    t0 = time.monotonic()
    lab.open(notebook)
    try:
        lab.run_all(notebook)
        lab.screenshot_notebook(notebook, ARTIFACTS / f"{Path(notebook).stem}.png")
        for text in lab.stderr_texts(notebook):
            print(f"{notebook} stderr: {text[:300]}")
        problems = lab.problems(notebook)
        assert not problems, f"{notebook} shows errors after Run All:\n" + "\n".join(map(str, problems))
    finally:
        lab.close(notebook)
    print(f"{notebook}: opened, ran and checked in {time.monotonic() - t0:.1f} s")


# The nine arrows of the default demo: notation, not just message names.
EXPECTED_PREFIXES = ["MM1", "MM2", "MM3", "MM4", "MM5", "MM6", "QM1", "QM2", "QM3"]
EXPECTED_NOTATION = {
    "MM1": re.compile(r"^MM1  HDR, SA(, VID)*$"),
    "MM2": re.compile(r"^MM2  HDR, SA(, VID)*$"),
    "MM3": re.compile(r"^MM3  HDR, KE, Ni(, NAT-D)*$"),
    "MM4": re.compile(r"^MM4  HDR, KE, Nr(, NAT-D)*$"),
    "MM5": re.compile(r"^MM5  HDR\*, IDii, HASH_I$"),
    "MM6": re.compile(r"^MM6  HDR\*, IDir, HASH_R$"),
    "QM1": re.compile(r"^QM1  HDR\*, HASH\(1\), SA, Ni(, KE)?, IDci, IDcr$"),
    "QM2": re.compile(r"^QM2  HDR\*, HASH\(2\), SA, Nr(, KE)?, IDci, IDcr$"),
    "QM3": re.compile(r"^QM3  HDR\*, HASH\(3\)$"),
}


def _demo_seed(sources: str) -> int | None:
    """The seed of the notebook's first ``IkeLab(...)`` if that is ``IkeLab(DemoOptions(seed=N))``
    (no other demo option; N a number or a NAME = number assignment), else None."""
    first = sources.find("IkeLab(")
    m = re.compile(r"IkeLab\(DemoOptions\(seed=(\w+)\)").match(sources, first) if first >= 0 else None
    if m is None:  # the labs' form: the lab view on connect(PEERS, DemoOptions(seed=...)).session
        m = re.search(r"connect\(PEERS, DemoOptions\(seed=(\w+)\), lab=\"\w+\"\)\n(?:print\(peers.describe\(\)\)\n)?"
                      r"(\w+) = IkeLab\(session=peers.session", sources)
        if m is None or sources.find("IkeLab(") < m.start():
            return None
    if m.group(1).isdigit():
        return int(m.group(1))
    v = re.search(rf"^{m.group(1)}\s*=\s*(\d+)\b", sources, re.M)
    return int(v.group(1)) if v else None


def _model_labels(seed: int) -> list[str]:
    """What the Python model says the arrows are after nine steps of the default demo."""
    from ipseclab.demo import DemoOptions
    from ipseclab.teaching.widgets import IkeLab

    ike = IkeLab(DemoOptions(seed=seed))
    for _ in range(9):
        ike.session.next()
    return ike.diagram.arrow_labels()


def test_ikelab_stepper_in_jupyterlab(lab: LabPage) -> None:
    notebook = ikelab_notebook() or FALLBACK
    seed = 1 if notebook == FALLBACK else _demo_seed(_code_sources(LABS / notebook))
    _stepper_walk(lab, notebook, seed, shots="stepper")


def test_ikelab_stepper_on_container_peers(lab: LabPage) -> None:
    """The same walk with ``PEERS = "containers"``: the widgets step two ipseclab daemons in the
    compose stack's containers; the stack goes when the server (and so the kernel) stops."""
    from ipseclab.runtime.containers.stack import container_lab_names, containers_available

    reason = containers_available()
    if reason:
        print(f"SKIP the browser walk on container peers: {reason}")
        pytest.skip(reason)
    source = ikelab_notebook()
    assert source is not None, "a lab shows the plain demo's IkeLab"
    nb = json.loads((lab.server.root_dir / source).read_text())
    for cell in nb["cells"]:
        text = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "code" and text.startswith('PEERS = "memory"'):
            cell["source"] = text.replace('PEERS = "memory"', 'PEERS = "containers"', 1)
    notebook = f"{Path(source).stem}_containers.ipynb"
    (lab.server.root_dir / notebook).write_text(json.dumps(nb))
    before = set(container_lab_names())
    ours: set[str] = set()
    _stepper_walk(lab, notebook, None, shots="containers_stepper", expect_text="Peers in containers",
                  during=lambda: ours.update(set(container_lab_names()) - before))
    assert ours, "the notebook's lab ran in containers"
    deadline = time.monotonic() + 60  # closing the notebook shut its kernel down: the stack goes with it
    while ours & set(container_lab_names()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not ours & set(container_lab_names()), "the kernel's exit took its container lab down"


def _stepper_walk(lab: LabPage, notebook: str, seed: int | None, *, shots: str, expect_text: str | None = None,
                  during: Callable[[], object] | None = None) -> None:
    from playwright.sync_api import expect

    t0 = time.monotonic()
    print(f"driving the IkeLab of {notebook}")
    page = lab.page
    lab.open(notebook)
    try:
        lab.run_all(notebook)
        assert not lab.problems(notebook), "\n".join(map(str, lab.problems(notebook)))
        if expect_text:
            expect(page.locator(".jp-OutputArea-output").filter(has_text=expect_text).first).to_be_visible()
        if during is not None:
            during()
        ike = page.locator(".ipl-ikelab").first
        ike.wait_for(state="visible")
        stepper = ike.locator(".ipl-stepper")
        diagram = ike.locator(".ipl-diagram")
        arrows = diagram.locator("svg.ipl-arrow")
        status = stepper.locator(".widget-html").last
        next_button = stepper.locator('.widget-button:has-text("Next ▶")')

        # the notebook may have stepped already: start over with its own configuration
        stepper.locator('.widget-button:has-text("Reset ⟲")').click()
        expect(arrows).to_have_count(1)  # MM1 is in flight
        expect(status).to_contain_text("MM_SA_SENT")
        expect(next_button).to_be_enabled()
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_0_start.png")

        for step in range(1, 10):
            next_button.click()
            # after step k the reply to message k is on the wire, except after the last one
            expect(arrows).to_have_count(min(step + 1, 9))
            if step == 6:
                expect(status).to_contain_text("QM_IDLE")
                lab.screenshot_element(ike, ARTIFACTS / f"{shots}_1_main_mode.png")
        expect(next_button).to_be_disabled()
        expect(status).to_contain_text("nothing in flight")

        labels = [arrows.nth(i).get_attribute("data-label") for i in range(arrows.count())]
        assert [lab_.split()[0] for lab_ in labels] == EXPECTED_PREFIXES, labels
        for label in labels:
            assert EXPECTED_NOTATION[label.split()[0]].match(label), label
        if seed is not None:  # the notebook's lab is the plain demo: the same arrows as the model
            assert labels == _model_labels(seed), labels

        text = status.inner_text()
        states = re.findall(r"(\w+): (QM_IDLE|MM_\w+|AM_\w+)", text)
        assert len(states) >= 2 and all(st == "QM_IDLE" for _, st in states[:2]), text
        expect(status).to_contain_text("Established")
        lanes = diagram.locator("svg.ipl-lanes").text_content() or ""
        assert lanes.count("QM_IDLE") == 2, lanes
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_2_quick_mode.png")

        # inspect MM5: its encrypted payloads, decoded
        tabs = ike.locator(".jupyter-widget-Tab, .widget-tab").first
        tabs.locator('.lm-TabBar-tab:has-text("Message inspector")').click()
        diagram.locator('.widget-button[title="inspect MM5"]').click()
        inspector = ike.locator(".ipl-inspector")
        heading = inspector.locator(".widget-html").first
        expect(heading).to_contain_text("MM5")
        expect(heading).to_contain_text("encrypted")
        accordion = inspector.locator(".jupyter-widget-Accordion, .widget-accordion").first
        expect(accordion).to_contain_text("Identification")
        expect(accordion).to_contain_text("Hash")
        expect(inspector).to_contain_text("decrypted payloads")
        expect(inspector).to_contain_text("on the wire")
        expect(inspector.locator(".hl")).to_have_count(0)
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_3_inspect_mm5.png")

        # select a field: its bytes light up in the plaintext dump
        select = inspector.locator("select").first
        options = [t.replace("\xa0", " ") for t in select.locator("option").all_inner_texts()]
        index = next(i for i, t in enumerate(options) if "Identification data:" in t)
        select.select_option(index=index)
        expect(inspector.locator(".hl").first).to_be_visible()
        expect(inspector).to_contain_text("selected: Identification data")
        cells = [t for t in inspector.locator(".hex .hl").all_inner_texts() if re.fullmatch(r"[0-9a-f]{2}", t)]
        assert len(cells) == 4, cells  # an IPv4 address
        if seed is not None:  # the demo's left peer is 192.0.2.1
            assert cells == ["c0", "00", "02", "01"], cells
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_4_field_selected.png")
        page.screenshot(path=str(ARTIFACTS / f"{shots}_5_page.png"))

        # the other tabs, as a student sees them after the exchange
        tabs.locator('.lm-TabBar-tab:has-text("Keys")').click()
        expect(ike.locator(".ipl-keys")).to_contain_text("SKEYID_e")
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_6_keys.png")
        tabs.locator('.lm-TabBar-tab:has-text("Policies")').click()
        expect(ike.locator(".ipl-policies .widget-button:has-text('Apply and negotiate')")).to_be_visible()
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_7_policies.png")
        tabs.locator('.lm-TabBar-tab:has-text("Export")').click()
        expect(ike.locator('.widget-button:has-text("Export pcap + keys")')).to_be_visible()
        lab.screenshot_element(ike, ARTIFACTS / f"{shots}_8_export.png")
    finally:
        lab.close(notebook)
    print(f"stepper walk in {time.monotonic() - t0:.1f} s")


# What a student's laptop shows: the lab at 1280 x 800, file browser open.
_JS_LAYOUT = """(path) => {
  const panel = [...document.querySelectorAll('.jp-NotebookPanel')].find(p => p.querySelector('.jp-NotebookPanel-notebook') && !p.classList.contains('lm-mod-hidden'));
  const nb = panel.querySelector('.jp-NotebookPanel-notebook');
  const box = nb.getBoundingClientRect();
  const sticking = [];
  for (const el of nb.querySelectorAll('.jp-OutputArea-output *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > box.right + 1) sticking.push(el.className.toString().slice(0, 50) + ' +' + Math.round(r.right - box.right));
  }
  const ike = nb.querySelector('.ipl-ikelab');
  const dumps = [...ike.querySelectorAll('.ipl-inspector .hex')];
  const clipped = dumps.filter(h => h.scrollWidth > h.clientWidth + 1).length;
  const fields = ike.querySelector('.ipl-inspector select');
  const lastDump = dumps[dumps.length - 1];
  return {sideways: nb.scrollWidth - nb.clientWidth, sticking: sticking.slice(0, 5), dumps: dumps.length, clipped,
          fieldsBelowHex: Math.round(fields.getBoundingClientRect().top - lastDump.getBoundingClientRect().bottom)};
}"""

_JS_NEWEST_ARROW_VISIBLE = """(index) => {
  const scroller = document.querySelectorAll('.ipl-diagram .ipl-scroller')[index];
  const arrows = scroller.querySelectorAll('svg.ipl-arrow');
  const last = arrows[arrows.length - 1].getBoundingClientRect(), box = scroller.getBoundingClientRect();
  return {arrows: arrows.length, scrolls: scroller.scrollHeight > scroller.clientHeight,
          visible: last.top >= box.top - 1 && last.bottom <= box.bottom + 1};
}"""


def test_what_students_hit_at_1280x800(lab: LabPage) -> None:
    """After Run All the lab view waits at its first message; the Policies form forgets an
    unapplied edit on Reset; nothing needs sideways scrolling, the hex dumps keep their ASCII
    column, the field list sits right under the bytes it highlights; a long diagram shows its
    newest arrow."""
    from playwright.sync_api import expect

    notebook = ikelab_notebook()
    assert notebook is not None
    page = lab.page
    page.set_viewport_size({"width": 1280, "height": 800})
    lab.open(notebook)
    try:
        lab.run_all(notebook)
        assert not lab.problems(notebook), "\n".join(map(str, lab.problems(notebook)))
        ike = page.locator(".ipl-ikelab").first
        stepper = ike.locator(".ipl-stepper")
        next_button = stepper.locator('.widget-button:has-text("Next ▶")')
        expect(ike.locator(".ipl-diagram svg.ipl-arrow")).to_have_count(1)  # Run All left it at MM1
        expect(next_button).to_be_enabled()

        # Policies: an edit, applied (a mismatch), then Reset: the form shows the notebook's policies again
        tabs = ike.locator(".jupyter-widget-Tab, .widget-tab").first
        tabs.locator('.lm-TabBar-tab:has-text("Policies")').click()
        policies = ike.locator(".ipl-policies")
        right_hash = policies.locator(".widget-vbox").nth(1).locator(".widget-dropdown:has-text('hash') select").first
        assert right_hash.input_value() != "sha512", "the demo's right uses its own hash"
        original = right_hash.input_value()
        right_hash.select_option("sha512")
        policies.locator(".widget-button:has-text('Apply and negotiate')").click()
        expect(policies).to_contain_text("does not match")
        stepper.locator('.widget-button:has-text("Reset ⟲")').click()
        expect(right_hash).to_have_value(original)
        policies.locator(".widget-button:has-text('Apply and negotiate')").click()
        expect(policies).to_contain_text("Established")

        # layout at 1280 x 800, with a message open in the inspector
        tabs.locator('.lm-TabBar-tab:has-text("Message inspector")').click()
        ike.locator('.widget-button[title="inspect MM5"]').click()
        expect(ike.locator(".ipl-inspector .hex")).to_have_count(2)
        layout = page.evaluate(_JS_LAYOUT, notebook)
        assert layout["sideways"] <= 0 and not layout["sticking"], layout
        assert layout["dumps"] == 2 and layout["clipped"] == 0, layout
        assert 0 <= layout["fieldsBelowHex"] <= 60, layout
        lab.screenshot_element(ike, ARTIFACTS / "laptop_1280x800_inspector.png")

        # the longest diagram of the notebook: its newest arrow is in view
        count = page.locator(".ipl-diagram .ipl-scroller").count()
        longest = max(range(count), key=lambda i: page.locator(".ipl-diagram .ipl-scroller").nth(i).locator("svg.ipl-arrow").count())
        page.locator(".ipl-diagram .ipl-scroller").nth(longest).scroll_into_view_if_needed()
        seen = page.evaluate(_JS_NEWEST_ARROW_VISIBLE, longest)
        assert seen["scrolls"] and seen["visible"], seen
    finally:
        lab.close(notebook)
    try:  # Lab 4's part 4 says what its output shows: a rekey at the soft lifetime
        quick = next(n for n in NOTEBOOKS if n.startswith("04"))
        lab.open(quick)
        lab.run_all(quick)
        part4 = page.locator(".jp-MarkdownCell").filter(has_text="4. Lifetimes and rekeying")
        expect(part4).to_contain_text("soft lifetime")
        expect(part4).not_to_contain_text("When the SAs expire")
        expect(page.locator(".jp-OutputArea-output").filter(has_text="soft lifetime of 540 s of 600 s reached").first).to_be_attached()
        lab.close(quick)
    finally:
        page.set_viewport_size(VIEWPORT)
