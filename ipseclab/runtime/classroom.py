"""A class on one host: a lab and a JupyterLab per student.

:class:`Classroom` brings up ``N`` isolated labs — network namespaces
(:class:`~ipseclab.runtime.netlab.peers.NetLab`) or container stacks
(:class:`~ipseclab.runtime.containers.stack.ContainerLab`), named ``<class>01`` … with
addresses of their own (namespaces are isolated by the kernel; container labs get free subnets)
— and a JupyterLab per student on the student's own copy of the labs, on ports ``base_port + i``
of ``127.0.0.1`` with a token each.  A student's server has ``IPSECLAB_STACK`` set to the run
directory of the student's lab, so ``connect(PEERS, ...)`` in any lab attaches to the
student's own peers instead of building new ones.  With containers the JupyterLab is the
stack's own ``jupyter`` service; with namespaces it is a process on the host, stopped by its
PID.  ``class.json`` in ``/run/ipseclab-class/<class>/`` records everything, so
``ipseclab lab down --class NAME`` in another process takes it all down.  The students'
notebooks (``<home>/<student>/labs``) stay.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ipseclab.demo import DemoOptions
from ipseclab.errors import NetlabError
from ipseclab.files import open_private
from ipseclab.runtime.netlab.plan import validate_name

CLASS_ROOT = Path("/run/ipseclab-class")
DEFAULT_HOME = Path("/var/lib/ipseclab/classes")
LABS = Path(__file__).resolve().parents[2] / "labs"
MAX_STUDENTS = 99


@dataclass
class Student:
    """One seat: the lab's name, the JupyterLab's URL (with token) and, on the host, its PID."""

    name: str
    lab: str
    port: int
    token: str
    labs_dir: str
    run_dir: str
    pid: int | None = None
    started: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/lab?token={self.token}"


def _start_time(pid: int) -> int | None:
    from ipseclab.runtime.netlab.nsproc import start_time

    return start_time(pid)


class Classroom:
    """``N`` students' labs and JupyterLabs; :meth:`up`, :meth:`down`, :meth:`attach`."""

    def __init__(
        self,
        name: str,
        students: int,
        *,
        containers: bool = False,
        kind: str = "site-to-site",
        options: DemoOptions | None = None,
        base_port: int = 9000,
        home: Path | None = None,
    ) -> None:
        if not 1 <= students <= MAX_STUDENTS:
            raise NetlabError(f"a class has 1 to {MAX_STUDENTS} students (asked for {students})")
        self.name = validate_name(name)
        if len(name) > 8:
            raise NetlabError(f"class name {name!r}: at most 8 characters (the labs are named {name}01, {name}02, ...)")
        self.count = students
        self.containers = containers
        self.kind = kind
        self.options = options or DemoOptions()
        self.base_port = base_port
        self.home = Path(home) if home else DEFAULT_HOME / name
        self.students: list[Student] = []

    @property
    def state_dir(self) -> Path:
        return CLASS_ROOT / self.name

    # -- up ------------------------------------------------------------------------------------

    def up(self, *, timeout: float = 90.0) -> Classroom:
        """Every student's lab, then every JupyterLab (started together), then wait for them."""
        if self.state_dir.exists():
            raise NetlabError(f"class {self.name!r} is already up: ipseclab lab down --class {self.name}")
        CLASS_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_dir.mkdir(mode=0o700)
        try:
            for i in range(1, self.count + 1):
                self.students.append(self._seat(i))
                self._save()
            for student in self.students:
                self._start_jupyter(student)
                self._save()
            for student in self.students:
                self._wait_for_jupyter(student, timeout)
        except BaseException:
            self.down()
            raise
        return self

    def _seat(self, i: int) -> Student:
        lab_name = f"{self.name}{i:02d}"
        labs_dir = self.home / lab_name / "labs"
        if not labs_dir.exists():  # a student's notebooks survive the class going down and up again
            shutil.copytree(LABS, labs_dir, ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints", "solutions"))
        port = self.base_port + i
        if self.containers:
            from ipseclab.runtime.containers.stack import ContainerLab, free_networks

            lab = ContainerLab(lab_name, self.kind, self.options, jupyter=True, jupyter_port=port, labs_dir=labs_dir,
                               networks=free_networks(self.kind, lab_name)).up()
            token = (lab.state_dir / "jupyter.token").read_text().strip()
            run_dir = lab.state_dir
        else:
            from ipseclab.runtime.netlab.peers import NetLab
            from ipseclab.runtime.netlab.topology import destroy, lab_names

            if lab_name in lab_names():
                destroy(lab_name)
            lab = NetLab(lab_name, self.kind, self.options, dataplane=True).up()
            token = secrets.token_hex(16)
            run_dir = Path(lab.topology.state_dir)
        for client in lab.clients.values():
            with contextlib.suppress(Exception):
                client.close()  # type: ignore[attr-defined]
        return Student(lab_name, lab_name, port, token, str(labs_dir), str(run_dir))

    def _start_jupyter(self, student: Student) -> None:
        if self.containers:
            return  # the stack's jupyter service is the student's server
        state = self.state_dir / student.name
        for sub in ("runtime", "config", "ipython"):
            (state / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        env = dict(os.environ, IPSECLAB_STACK=student.run_dir, JUPYTER_RUNTIME_DIR=str(state / "runtime"),
                   JUPYTER_CONFIG_DIR=str(state / "config"), IPYTHONDIR=str(state / "ipython"))
        env.pop("JUPYTER_TOKEN", None)
        argv = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
                f"--port={student.port}", "--port-retries=0", f"--IdentityProvider.token={student.token}",
                f"--ServerApp.root_dir={student.labs_dir}", "--LabApp.news_url=",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        log = open(state / "jupyter.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(argv, cwd=student.labs_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        student.pid, student.started = proc.pid, _start_time(proc.pid)

    def _wait_for_jupyter(self, student: Student, timeout: float) -> None:
        url = f"http://127.0.0.1:{student.port}/api/status?token={student.token}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url, timeout=3) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise NetlabError(f"the JupyterLab of {student.name} did not answer on port {student.port} within {timeout:.0f} s")
            time.sleep(0.3)

    def _save(self) -> None:
        with open_private(self.state_dir / "class.json") as f:
            json.dump({"name": self.name, "containers": self.containers, "kind": self.kind,
                       "students": [asdict(s) for s in self.students]}, f, indent=1)

    # -- down ----------------------------------------------------------------------------------

    @classmethod
    def attach(cls, name: str) -> Classroom:
        """The class ``name`` that another process brought up."""
        path = CLASS_ROOT / validate_name(name) / "class.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NetlabError(f"no class {name!r} here ({path}: {exc})") from None
        room = cls(name, max(1, len(data["students"])), containers=data["containers"], kind=data["kind"])
        room.students = [Student(**s) for s in data["students"]]
        return room

    def down(self) -> None:
        """Stop every JupyterLab (by PID) and take every lab down; the notebooks stay."""
        for student in self.students:
            self._stop_jupyter(student)
            self._lab_down(student)
        self.students = []
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def _stop_jupyter(self, student: Student) -> None:
        pid = student.pid
        if pid is None or _start_time(pid) != student.started:  # gone, or the PID is someone else's now
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _start_time(pid) == student.started and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if _start_time(pid) == student.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)

    def _lab_down(self, student: Student) -> None:
        if self.containers:
            from ipseclab.runtime.containers.stack import ContainerLab, container_lab_names

            if student.lab in container_lab_names():
                ContainerLab.attach(student.lab).down()
        else:
            from ipseclab.runtime.netlab.topology import destroy, lab_names

            if student.lab in lab_names():
                destroy(student.lab)


def class_names() -> list[str]:
    """Classes up on this host."""
    return sorted(p.name for p in CLASS_ROOT.iterdir() if (p / "class.json").exists()) if CLASS_ROOT.is_dir() else []
