"""A fleet of SSH test hosts: N fresh Debian 12 roots, each with sshd on its own loopback port.

Every host is a :func:`tests.e2e.targets.fresh_root` with :func:`tests.e2e.targets.ssh_target`
on top: user ``dlrig`` with password-less sudo, key auth, host keys checked against a
known_hosts file written for that host. Roots are unpacked (and removed) in parallel; every
host is torn down however the block is left.

+ ssh_fleet: context manager → list of ``Target``
+ stop_sshd / start_sshd: make a host unreachable, or bring its sshd back
+ change_host_key: give a host a new host key (its known_hosts entry no longer matches)
+ local_distribution_repo: point every host's distribution sources at a loopback signed repo
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from tests.e2e import aptrepo
from tests.e2e.targets import (
    CACHE,
    Root,
    Target,
    base_key,
    base_tarball,
    fresh_root,
    kill_processes_in,
    serve_directory,
    sh,
    ssh_target,
    write_etc_hosts,
)

T = TypeVar("T")

# Unpacking a root is I/O plus tar's CPU: more workers than this only thrash a 2-core machine.
UNPACK_WORKERS = 4


def _enter_all(
    stack: contextlib.ExitStack,
    managers: Sequence[contextlib.AbstractContextManager[T]],
    workers: int,
) -> list[T]:
    """Enter ``managers`` in parallel; register one callback on ``stack`` that exits them all.

    Managers that were entered are always exited (in parallel), also when another one failed
    to enter: the first error is raised after the successful ones are registered.
    """
    entered: list[contextlib.AbstractContextManager[T]] = []
    values: list[T] = []
    errors: list[BaseException] = []

    def _exit_all(*exc: Any) -> None:
        with ThreadPoolExecutor(max(1, min(workers, len(entered)))) as pool:
            results = [pool.submit(m.__exit__, None, None, None) for m in entered]
        failures = [r.exception() for r in results if r.exception() is not None]
        if failures:
            raise failures[0]  # type: ignore[misc]

    with ThreadPoolExecutor(max(1, min(workers, len(managers)))) as pool:
        futures = [pool.submit(m.__enter__) for m in managers]
    for manager, future in zip(managers, futures, strict=True):
        try:
            values.append(future.result())
            entered.append(manager)
        except BaseException as e:
            errors.append(e)
    stack.push(_exit_all)
    if errors:
        raise errors[0]
    return values


# What the toolchain deploy installs on Debian 12 without CUDA (its default packages plus the
# system GCC preflight picks). Seeded roots have them already: a fleet of hosts then runs the
# real toolchain deploy without downloading and unpacking a compiler once per host.
SEED_PACKAGES = ("build-essential", "ccache", "gcc-12", "g++-12")
SEED_DIR = CACHE / "fleet"


def seeded_tarball() -> Path:
    """The base root with ``SEED_PACKAGES`` installed, cached as a tarball (built when absent).

    Built once from a fresh base root with apt from the Debian archive (its .debs kept in
    ``~/.cache/dlrig/fleet/apt-archives`` for rebuilds); the root's APT lists are
    emptied. Keyed on the base root and the package list.
    """
    key = hashlib.sha256(json.dumps([base_key(), SEED_PACKAGES, 2]).encode()).hexdigest()[:16]
    tarball = SEED_DIR / f"light-seed-{key}.tar"
    if tarball.exists():
        return tarball
    SEED_DIR.mkdir(parents=True, exist_ok=True)
    with open(SEED_DIR / "seed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        archives = SEED_DIR / "apt-archives"
        (archives / "partial").mkdir(parents=True, exist_ok=True)
        with fresh_root(base_tarball()) as root:
            root.bind(str(archives), "/var/cache/apt/archives", read_only=False)
            root.run(
                "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
                "apt-get install -y -qq --no-install-recommends "
                "-o Binary::apt::APT::Keep-Downloaded-Packages=true " + " ".join(SEED_PACKAGES),
                timeout=1800,
            )
            sh(["umount", str(root.path / "var/cache/apt/archives")])
            # The Debian archive's lists are ~100 MB per host and the fleet uses a loopback
            # repo: drop them (apt-get update refills them from wherever sources point).
            root.run("rm -rf /var/lib/apt/lists/* && mkdir -p /var/lib/apt/lists/partial")
            for mount in ("dev/pts", "dev", "sys", "proc", "run"):
                sh(["umount", str(root.path / mount)])
            tmp = tarball.with_suffix(".tmp")
            sh(["tar", "-C", str(root.path), "--numeric-owner", "-cf", str(tmp), "."])
            tmp.rename(tarball)
    return tarball


@contextlib.contextmanager
def ssh_fleet(
    count: int,
    workdir: Path,
    prepare: Callable[[Root], None] | None = None,
    tarball: Path | None = None,
):
    """Start ``count`` SSH test hosts at once; yield their ``Target``s; always tear them down.

    + count: number of hosts (each ~300 MB of disk while it lives)
    + workdir: a directory on this machine; host ``i`` keeps its client key, known_hosts and
      sshd log in ``workdir/host-<i>``
    + prepare: called with each root (in parallel) before sshd starts, e.g. to point its APT
      sources at a loopback repository
    + tarball: the root tarball to unpack per host (default: the base root; see
      ``seeded_tarball``)

    **Example:**

    .. code:: python

        with ssh_fleet(8, tmp_path) as hosts:
            converge_twice(hosts, "deploys/gpu_server.py", {"profile_skip": [...]})
    """
    with contextlib.ExitStack() as stack:
        tarball = tarball or base_tarball()
        roots = _enter_all(stack, [fresh_root(tarball) for _ in range(count)], UNPACK_WORKERS)
        for root in roots:
            write_etc_hosts(root)
        if prepare is not None:
            with ThreadPoolExecutor(UNPACK_WORKERS) as pool:
                list(pool.map(prepare, roots))
        dirs = []
        for i in range(count):
            d = workdir / f"host-{i:02d}"
            d.mkdir(parents=True, exist_ok=True)
            dirs.append(d)
        hosts = _enter_all(
            stack,
            [ssh_target(root, d) for root, d in zip(roots, dirs, strict=True)],
            UNPACK_WORKERS,
        )
        yield hosts


def write_grouped_inventory(
    path: Path, groups: dict[str, Sequence[Target]], data: dict[str, Any]
) -> Path:
    """Write a pyinfra inventory with one ``(hosts, data)`` group per entry of ``groups``."""
    body = {
        name: [[t.name, {**t.data, **data}] for t in members] for name, members in groups.items()
    }
    path.write_text(
        "import json\n\n"
        f"for _name, _hosts in json.loads({json.dumps(body)!r}).items():\n"
        "    globals()[_name] = [tuple(h) for h in _hosts]\n"
    )
    return path


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_sshd(target: Target) -> None:
    """Make a host unreachable: kill every process in its root (sshd included)."""
    kill_processes_in(target.root.path)
    deadline = time.monotonic() + 10
    while _port_open(target.data["ssh_port"]):
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd of {target.name} still listens")
        time.sleep(0.05)


def start_sshd(target: Target) -> None:
    """Start sshd in a host's root again (same config and port); it dies with the root."""
    port = target.data["ssh_port"]
    subprocess.Popen(
        ["chroot", str(target.root.path), "/usr/sbin/sshd", "-D", "-e"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"sshd of {target.name} did not come back")
        time.sleep(0.05)


def change_host_key(target: Target) -> None:
    """Give a host new host keys and restart its sshd: its known_hosts entry is now stale."""
    stop_sshd(target)
    target.root.run("rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null")
    start_sshd(target)


def known_hosts_line(target: Target) -> str:
    """The host's current ed25519 host key as a known_hosts line (``[127.0.0.1]:port …``)."""
    kind, key = (target.root.path / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    return f"[127.0.0.1]:{target.data['ssh_port']} {kind} {key}"


KEYRING = "/usr/share/keyrings/dlrig-fleet-test.gpg"


@contextlib.contextmanager
def local_distribution_repo(workdir: Path) -> Iterator[Callable[[Root], None]]:
    """Serve a signed APT repo on loopback; yield a ``prepare`` that makes it a root's only source.

    A fleet of hosts then runs ``apt-get update`` (the APT sources deploy does, after enabling
    deb-src) against this machine instead of the Debian archive: fast and offline.
    """
    repo = aptrepo.build_signed_repo(workdir / "distrepo", {"dlrig-fleet-probe": "1.0"})
    keyring = workdir / "distrepo.gpg"
    subprocess.run(["gpg", "--dearmor", "-o", str(keyring), str(repo.key)], check=True)
    with serve_directory(repo.root) as url:

        def prepare(root: Root) -> None:
            dest = root.path / KEYRING.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(keyring.read_bytes())
            (root.path / "etc/apt/sources.list").write_text(
                f"deb [signed-by={KEYRING}] {url} {repo.suite} {repo.component}\n"
            )

        yield prepare
