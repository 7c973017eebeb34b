"""Real test targets: debootstrapped Debian 12 roots, driven by @chroot or by sshd inside them.

The base root is made once with debootstrap and cached as a tarball under ``~/.cache/dlrig``
(``DLRIG_CACHE`` overrides); each target unpacks a fresh copy, mounts /proc, /sys, /dev and
/dev/pts, and on teardown kills whatever runs inside it, unmounts and removes it. A root is
only removed once nothing is mounted below it any more.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DLRIG_CACHE", "~/.cache/dlrig")).expanduser()
SUITE = "bookworm"
MIRROR = os.environ.get("DLRIG_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("ca-certificates", "python3", "openssh-server", "sudo", "procps")
HOST_CA_DIR = Path("/usr/local/share/ca-certificates")
RECIPE_VERSION = "1"
SSH_USER = "dlrig"
ROOTS_DIR = Path(os.environ.get("DLRIG_ROOTS_DIR", "/var/tmp"))


def sh(cmd: Sequence[str], check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a command on this machine, capturing text output."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    result = subprocess.run(list(cmd), **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def _host_ca_certs() -> list[Path]:
    if not HOST_CA_DIR.is_dir():
        return []
    return sorted(p for p in HOST_CA_DIR.rglob("*.crt") if p.is_file())


def base_key() -> str:
    """Cache key of the base root: recipe, suite, mirror, packages and the host's extra CAs."""
    h = hashlib.sha256()
    h.update(json.dumps([RECIPE_VERSION, SUITE, MIRROR, BASE_PACKAGES]).encode())
    for cert in _host_ca_certs():
        h.update(cert.name.encode())
        h.update(cert.read_bytes())
    return h.hexdigest()[:16]


def base_tarball() -> Path:
    """Return the cached base root tarball, building it first when absent (under a lock)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"debian-{SUITE}-minbase-{base_key()}.tar"
    if tarball.exists():
        return tarball
    with open(CACHE / "roots.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        build = Path(tempfile.mkdtemp(prefix="dlrig-debootstrap-", dir=ROOTS_DIR))
        try:
            sh(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    SUITE,
                    str(build),
                    MIRROR,
                ],
                timeout=1800,
            )
            _trust_host_cas(build)
            # Services never start inside test roots (no init there); apt still installs them.
            policy = build / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
            sh(["chroot", str(build), "apt-get", "clean"])
            build.chmod(0o755)
            tmp = tarball.with_suffix(".tmp")
            sh(["tar", "-C", str(build), "--numeric-owner", "-cf", str(tmp), "."])
            tmp.rename(tarball)
        finally:
            _remove_tree(build)
    return tarball


def _trust_host_cas(root: Path) -> None:
    """Give a root this machine's extra CA certificates (TLS interception, corporate proxies)."""
    certs = _host_ca_certs()
    if not certs:
        return
    dest = root / "usr/local/share/ca-certificates"
    dest.mkdir(parents=True, exist_ok=True)
    for cert in certs:
        shutil.copy2(cert, dest / cert.name)
    sh(["chroot", str(root), "update-ca-certificates"])


def _mounts_below(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    points = []
    with open("/proc/self/mounts") as f:
        for line in f:
            point = line.split()[1].replace("\\040", " ")
            if point.startswith(prefix) or point == prefix.rstrip("/"):
                points.append(point)
    return points


def _processes_in(root: Path) -> list[int]:
    real = str(root.resolve())
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") == real:
                pids.append(int(entry.name))
    return pids


def kill_processes_in(root: Path) -> None:
    """Kill every process whose root directory is ``root`` (sshd, started services)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = _processes_in(root)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        for _ in range(50):
            if not _processes_in(root):
                return
            time.sleep(0.1)


def _remove_tree(root: Path) -> None:
    kill_processes_in(root)
    for point in sorted(_mounts_below(root), key=len, reverse=True):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)
    left = _mounts_below(root)
    if left:
        raise RuntimeError(f"refusing to remove {root}: still mounted: {left}")
    shutil.rmtree(root, ignore_errors=True)


@dataclass
class Root:
    """A fresh, mounted Debian 12 root on this machine."""

    path: Path
    binds: list[tuple[str, str]] = field(default_factory=list)

    def run(self, command: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess:
        """Run a shell command inside the root (as root)."""
        return sh(["chroot", str(self.path), "sh", "-c", command], check=check, **kwargs)

    def bind(self, source: str, target: str | None = None, read_only: bool = True) -> None:
        """Bind-mount a host path into the root (e.g. a CUDA toolkit)."""
        target = target or source
        dest = self.path / target.lstrip("/")
        if Path(source).is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch()
        sh(["mount", "--bind", source, str(dest)])
        if read_only:
            sh(["mount", "-o", "remount,bind,ro", str(dest)])

    def packages(self) -> str:
        """The installed package list with versions, for "nothing changed" assertions."""
        return self.run("dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n'").stdout


@contextlib.contextmanager
def fresh_root(tarball: Path | None = None) -> Iterator[Root]:
    """Unpack the cached base root, mount the kernel file systems, clean up afterwards.

    + tarball: a root tarball made from the base root (a seeded variant); default: the base
    """
    tarball = tarball or base_tarball()
    ROOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="dlrig-root-", dir=ROOTS_DIR))
    path.chmod(0o755)  # it is "/" inside: users other than root must traverse it
    try:
        sh(["tar", "-C", str(path), "--numeric-owner", "-xf", str(tarball)])
        path.chmod(0o755)
        sh(["mount", "-t", "proc", "proc", str(path / "proc")])
        sh(["mount", "-t", "sysfs", "sysfs", str(path / "sys")])
        sh(["mount", "--bind", "/dev", str(path / "dev")])
        sh(["mount", "--bind", "/dev/pts", str(path / "dev/pts")])
        sh(["mount", "-t", "tmpfs", "tmpfs", str(path / "run")])
        shutil.copy2("/etc/resolv.conf", path / "etc/resolv.conf")
        yield Root(path)
    finally:
        _remove_tree(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> bool:
    """Wait until 127.0.0.1:port accepts connections; False if ``proc`` died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    return False


@contextlib.contextmanager
def serve_directory(path: Path) -> Iterator[str]:
    """Serve ``path`` over HTTP on a free loopback port; yield the base URL (no trailing /)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not _wait_for_port(port, proc, 15):
            raise RuntimeError(f"HTTP server for {path} did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Target:
    """Something pyinfra deploys to: a name for the inventory, its data, and its root."""

    kind: str  # "chroot" or "ssh"
    name: str
    data: dict[str, Any]
    root: Root
    testinfra_url: str
    user: str = "root"

    def testinfra(self) -> Any:
        """A pytest-testinfra host for checking state on the target."""
        import testinfra

        if self.kind == "chroot":
            return testinfra.get_host(str(self.root.path), connection="chroot")
        return testinfra.get_host(self.testinfra_url)


def chroot_target(root: Root) -> Target:
    return Target(
        kind="chroot",
        name=f"@chroot/{root.path}",
        data={},
        root=root,
        testinfra_url=f"chroot://{root.path}",
    )


def write_etc_hosts(root: Root) -> None:
    """Give a root the /etc/hosts a Debian install has: its host name resolves locally.

    debootstrap writes none. Without it every ``sudo`` asks DNS for the host name ("unable to
    resolve host"); a lost query costs the resolver's 5 s timeout, and with a fleet of hosts
    running sudo at once some always hit it — the main thing that serialized fleet runs.
    """
    hosts = root.path / "etc/hosts"
    if not hosts.exists():
        name = socket.gethostname()
        hosts.write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n::1\tlocalhost ip6-localhost\n")


@contextlib.contextmanager
def ssh_target(root: Root, workdir: Path) -> Iterator[Target]:
    """Start sshd inside ``root`` on a loopback port; yield a Target for user ``dlrig``.

    Key auth only, with a key made for this run; host key checking is on (the fixture writes
    known_hosts); ``dlrig`` has password-less sudo, so deploys run with ``_sudo=True``.
    """
    port = free_port()
    write_etc_hosts(root)
    key = workdir / "id_ed25519"
    sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    pub = (workdir / "id_ed25519.pub").read_text()
    root.run(
        f"id -u {SSH_USER} >/dev/null 2>&1 || useradd -m -s /bin/bash {SSH_USER}; "
        f"usermod -p '*' {SSH_USER}; "
        f"echo '{SSH_USER} ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/{SSH_USER}; "
        f"chmod 0440 /etc/sudoers.d/{SSH_USER}; "
        "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; mkdir -p /run/sshd"
    )
    for home, owner in ((f"home/{SSH_USER}", SSH_USER), ("root", "root")):
        ssh_dir = root.path / home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(pub)
        root.run(f"chown -R {owner}: /{home}/.ssh && chmod 600 /{home}/.ssh/authorized_keys")
    (root.path / "etc/ssh/sshd_config.d/dlrig-test.conf").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nUsePAM no\n"
    )
    host_key = (root.path / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(
        f"Host 127.0.0.1\n  Port {port}\n  User {SSH_USER}\n  IdentityFile {key}\n"
        f"  UserKnownHostsFile {known_hosts}\n  StrictHostKeyChecking yes\n"
    )
    log = open(workdir / "sshd.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        ["chroot", str(root.path), "/usr/sbin/sshd", "-D", "-e"],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        if not _wait_for_port(port, proc, 20):
            raise RuntimeError(f"sshd did not start: {(workdir / 'sshd.log').read_text()}")
        yield Target(
            kind="ssh",
            name=f"dlrig-test-{port}",
            data={
                "ssh_hostname": "127.0.0.1",
                "ssh_port": port,
                "ssh_user": SSH_USER,
                "ssh_key": str(key),
                "ssh_known_hosts_file": str(known_hosts),
                "ssh_strict_host_key_checking": "yes",
                "ssh_allow_agent": False,
                "ssh_look_for_keys": False,
                "_sudo": True,
            },
            root=root,
            testinfra_url=f"paramiko://{SSH_USER}@127.0.0.1:{port}?ssh_config={ssh_config}",
            user=SSH_USER,
        )
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
        log.close()


# --- running pyinfra -------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Run:
    """One pyinfra CLI run: exit code, output, and the per-operation results from ``--json``."""

    returncode: int
    stdout: str
    stderr: str
    results: dict[str, Any] | None

    @property
    def output(self) -> str:
        return _ANSI.sub("", self.stdout + self.stderr)

    @property
    def operations(self) -> list[dict[str, Any]]:
        return (self.results or {}).get("operations", [])

    @property
    def changed(self) -> list[str]:
        """Names of operations that changed something on some host."""
        return [op["name"] for op in self.operations if op["success"]]

    @property
    def failed(self) -> list[str]:
        return [op["name"] for op in self.operations if op["error"]]


def write_inventory(path: Path, targets: Sequence[Target], data: dict[str, Any]) -> Path:
    """Write a pyinfra inventory file for ``targets``, each with its own data plus ``data``."""
    hosts = [(t.name, {**t.data, **data}) for t in targets]
    path.write_text(
        "import json\n\nhosts = [tuple(h) for h in json.loads(" + repr(json.dumps(hosts)) + ")]\n"
    )
    return path


def pyinfra(
    targets: Target | Sequence[Target],
    deploy: str,
    data: dict[str, Any] | None = None,
    args: Sequence[str] = (),
    workdir: Path | None = None,
    timeout: int = 3600,
    env: dict[str, str] | None = None,
) -> Run:
    """Run ``pyinfra -y --json <inventory> <deploy> [args]`` from the repository root.

    + deploy: a deploy file (``deploys/colab.py``) or an import path (``deploys.ldconfig.ldconfig``)
    """
    targets = [targets] if isinstance(targets, Target) else list(targets)
    workdir = workdir or Path(tempfile.mkdtemp(prefix="dlrig-run-"))
    inventory = write_inventory(
        workdir / f"inventory_{time.monotonic_ns()}.py", targets, data or {}
    )
    cmd = [sys.executable, "-m", "pyinfra", "-y", "--json", str(inventory), deploy]
    proc = subprocess.run(
        [*cmd, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    results = None
    with contextlib.suppress(json.JSONDecodeError, ValueError):
        results = json.loads(proc.stdout[proc.stdout.index("{") :]).get("results")
    return Run(proc.returncode, proc.stdout, proc.stderr, results)


def converge_twice(
    targets: Target | Sequence[Target], deploy: str, data: dict[str, Any] | None = None, **kw: Any
) -> tuple[Run, Run]:
    """Run a deploy twice: the first run must succeed, the second must change nothing."""
    first = pyinfra(targets, deploy, data, **kw)
    assert first.returncode == 0, f"first run failed:\n{first.output[-6000:]}"
    assert first.results is not None, f"no results in output:\n{first.output[-3000:]}"
    second = pyinfra(targets, deploy, data, **kw)
    assert second.returncode == 0, f"second run failed:\n{second.output[-6000:]}"
    assert second.operations, "second run ran no operations"
    assert second.changed == [], f"second run changed: {second.changed}\n{second.output[-4000:]}"
    return first, second
