"""Classroom benchmark: what a student costs on one host, against a bare JupyterLab per student.

Run as root: ``.venv/bin/python bench/classroom.py [--students 20] [--containers]``.  Not part of
the test suite.  In one run, on the same machine:

* **baseline**: N bare JupyterLab servers (the same command line a class uses, no lab) —
  what any class of N notebook users costs here;
* **class**: ``Classroom(N)`` — per student a lab (two ``ipseclab peer`` daemons with the ESP
  data plane in network namespaces, or a container stack with its NAT router and JupyterLab)
  and a JupyterLab whose notebooks attach to it; then every student negotiates Main Mode +
  Quick Mode from a kernel of their own server (the Jupyter protocol, as a notebook does).

For each: seconds until all N are up (per student), memory per student (host ``MemAvailable``
drop over the run, in MiB), and for the class the slowest student's negotiation from a kernel.
Ratios are class / baseline: what the IPsec lab adds to a notebook server.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from jupyter_remote import run_code  # noqa: E402

from ipseclab.runtime.classroom import Classroom  # noqa: E402

NEGOTIATE = """
from ipseclab.demo import DemoOptions
from ipseclab.teaching.peers import connect
import time
t = time.monotonic()
peers = connect({mode!r}, DemoOptions(seed=5))
peers.session.run_to_end()
print(peers.session.established(), time.monotonic() - t)
"""


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def _wait(port: int, token: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=3) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    raise RuntimeError(f"JupyterLab on port {port} did not come up")


def baseline(n: int, base_port: int) -> tuple[float, float]:
    """N bare JupyterLabs: (seconds until all answer, MiB per server)."""
    work = Path(tempfile.mkdtemp(prefix="ipl-bench-jl-"))
    before = mem_available_mib()
    t0 = time.monotonic()
    procs = []
    try:
        for i in range(1, n + 1):
            token = secrets.token_hex(8)
            d = work / str(i)
            (d / "runtime").mkdir(parents=True)
            env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(d / "runtime"), JUPYTER_CONFIG_DIR=str(d / "config"))
            argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                    f"--port={base_port + i}", "--port-retries=0", f"--IdentityProvider.token={token}",
                    f"--ServerApp.root_dir={ROOT / 'labs'}"]
            procs.append((subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), base_port + i, token))
        for _, port, token in procs:
            _wait(port, token)
        seconds = time.monotonic() - t0
        time.sleep(2)
        used = (before - mem_available_mib()) / n
    finally:
        for proc, _, _ in procs:
            proc.terminate()
        for proc, _, _ in procs:
            proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    return seconds, used


def classroom(n: int, base_port: int, containers: bool) -> tuple[float, float, float, int]:
    """(seconds until up, MiB per student, slowest negotiation from a kernel in s, established count)."""
    home = Path(tempfile.mkdtemp(prefix="ipl-bench-class-"))
    before = mem_available_mib()
    t0 = time.monotonic()
    room = Classroom("bench", n, containers=containers, base_port=base_port, home=home)
    try:
        room.up(timeout=300)
        seconds = time.monotonic() - t0
        time.sleep(2)
        used = (before - mem_available_mib()) / n
        mode = "containers" if containers else "namespaces"
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda s: run_code(f"http://127.0.0.1:{s.port}", s.token, NEGOTIATE.format(mode=mode), timeout=300),
                                    room.students))
        ok = sum(r.split()[0] == "True" for r in results)
        slowest = max(float(r.split()[1]) for r in results)
    finally:
        room.down()
        shutil.rmtree(home, ignore_errors=True)
    return seconds, used, slowest, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--containers", action="store_true", help="container stacks instead of namespaces")
    parser.add_argument("--base-port", type=int, default=19500)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/classroom.py needs root (namespaces or rootful podman)", file=sys.stderr)
        return 2
    n = args.students
    print(f"{n} students, {'containers' if args.containers else 'network namespaces'}, {os.cpu_count()} CPUs")
    b_s, b_mib = baseline(n, args.base_port)
    c_s, c_mib, slowest, ok = classroom(n, args.base_port, args.containers)
    print(f"{'':28} {'bare JupyterLab':>16} {'class (lab + JupyterLab)':>26} {'ratio':>7}")
    print(f"{'up, all N (s)':28} {b_s:16.1f} {c_s:26.1f} {c_s / b_s:7.2f}")
    print(f"{'up, per student (s)':28} {b_s / n:16.2f} {c_s / n:26.2f}")
    print(f"{'memory per student (MiB)':28} {b_mib:16.0f} {c_mib:26.0f} {c_mib / b_mib:7.2f}")
    print(f"negotiations from the students' kernels: {ok}/{n} established, slowest {slowest:.2f} s")
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
