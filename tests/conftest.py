"""Shared helpers for the CLI and tshark comparison tests.

* ``run_ipseclab``: run the real command line (``python -m ipseclab.cli``) in a subprocess.
* ``tshark``: dissect a capture with the installed tshark (``-T pdml``) and return, per frame,
  what tshark shows: exchange type, message ID, the *top-level* ISAKMP payload chain (decrypted
  payloads included) and the ESP SPI.  Skips the test when tshark is not installed.

Why PDML: ``-T fields -e isakmp.typepayload`` flattens the Proposal (2) and Transform (3)
substructures of an SA payload into the same list as the real payloads.  In PDML every payload
is an ``isakmp.typepayload`` element and the nesting is kept, so the top-level chain is exactly
the ``isakmp.typepayload`` children of the ``isakmp`` protocol element, plus (for an encrypted
message tshark could decrypt) those of its ``isakmp.enc.data`` element.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest


@dataclass
class TsharkPayload:
    """One top-level ISAKMP payload: its type and every field below it (``show`` / raw hex ``value``)."""

    type: int
    fields: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class TsharkFrame:
    number: int
    exchange_type: int | None = None  # None: no ISAKMP in this frame
    message_id: int | None = None
    encrypted: bool = False
    payloads: list[TsharkPayload] = field(default_factory=list)
    esp_spi: int | None = None
    keepalive: bool = False

    @property
    def payload_types(self) -> list[int]:
        return [p.type for p in self.payloads]

    def payload(self, ptype: int) -> list[TsharkPayload]:
        return [p for p in self.payloads if p.type == ptype]


def _payload(element: ET.Element) -> TsharkPayload:
    payload = TsharkPayload(int(element.get("show")))
    for f in element.iter("field"):
        if f is not element:
            payload.fields.setdefault(f.get("name", ""), []).append(f.get("show", ""))
            payload.values.setdefault(f.get("name", ""), []).append(f.get("value", ""))
    return payload


def _frame(packet: ET.Element) -> TsharkFrame:
    number = next(
        int(f.get("show")) for f in packet.iter("field") if f.get("name") == "frame.number"
    )
    frame = TsharkFrame(number)
    for proto in packet.findall("proto"):
        name = proto.get("name")
        if name == "isakmp":
            top = {f.get("name"): f for f in proto.findall("field")}
            frame.exchange_type = int(top["isakmp.exchangetype"].get("show"))
            frame.message_id = int(top["isakmp.messageid"].get("show"), 16)
            flags = [f for f in proto.iter("field") if f.get("name") == "isakmp.flag_e"]
            frame.encrypted = bool(flags) and flags[0].get("show") == "1"
            containers = [proto] + [
                f for f in proto.findall("field") if f.get("name") == "isakmp.enc.data"
            ]
            for container in containers:
                for f in container.findall("field"):
                    if f.get("name") == "isakmp.typepayload":
                        frame.payloads.append(_payload(f))
        elif name == "esp":
            spi = [f.get("show") for f in proto.iter("field") if f.get("name") == "esp.spi"]
            frame.esp_spi = int(spi[0], 16) if spi else None
        elif name == "udpencap":
            frame.keepalive = any(
                f.get("name") == "udpencap.nat_keepalive" for f in proto.iter("field")
            )
    return frame


def tshark_frames(pcap: Path, options: list[str]) -> tuple[dict[int, TsharkFrame], str]:
    """tshark's dissection of every frame, and tshark's stderr (for option complaints)."""
    result = subprocess.run(
        ["tshark", "-r", str(pcap), *options, "-T", "pdml"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    frames = [_frame(p) for p in root.iter("packet")]
    return {f.number: f for f in frames}, result.stderr


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the ``tshark`` fixture get the ``tshark`` marker (``-m "not tshark"``)."""
    for item in items:
        if "tshark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.tshark)


@pytest.fixture(scope="session")
def tshark() -> Callable[[Path, list[str]], tuple[dict[int, TsharkFrame], str]]:
    if shutil.which("tshark") is None:
        pytest.skip(
            "tshark is not installed (Debian: apt-get install tshark); cannot compare with Wireshark"
        )
    return tshark_frames


def ipseclab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``ipseclab ARGS`` as a user would; a Python traceback is always a failure."""
    result = subprocess.run(
        [sys.executable, "-m", "ipseclab.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


@pytest.fixture(scope="session")
def run_ipseclab() -> Callable[..., subprocess.CompletedProcess[str]]:
    return ipseclab


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A kernelspec directory holding one spec: this interpreter running ipykernel."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from notebook_support import KERNEL_NAME

    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = write_kernel_spec(str(kernels / KERNEL_NAME))
    spec = json.loads((Path(spec_dir) / "kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.fixture(scope="module")
def lab_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of labs/ without earlier exports: notebooks write their exports here."""
    from notebook_support import LABS

    dst = tmp_path_factory.mktemp("labs")
    shutil.copytree(LABS, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints"))
    return dst
