"""Benchmark: cold Boost build on a fresh Debian 12 root (wall and CPU time), and the no-op rerun.

Runs ``deploys.boost.boost`` with the test source archive (``tests/e2e/boost_source.py``)
served over loopback HTTP, as root, and prints a table:

+ first run: APT prerequisites + download + verify + extract + bootstrap + b2 + install
+ cold build: the build alone (prefix and key removed, prerequisites and archive in place)
+ no-op rerun: same key recorded, nothing to do

CPU time is user + system of every process the run waited for (pyinfra, chroot, b2, the
compilers), from ``getrusage(RUSAGE_CHILDREN)``.

Usage: ``python3 bench/boost_build.py [--libraries system,filesystem,...]``
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import boost_source, targets

PREFIX = "/opt/dlrig/boost"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(target: targets.Target, data: dict, workdir: Path) -> tuple[float, float, targets.Run]:
    cpu0, wall0 = _children_cpu(), time.monotonic()
    run = targets.pyinfra(target, "deploys.boost.boost", data, workdir=workdir)
    wall, cpu = time.monotonic() - wall0, _children_cpu() - cpu0
    if run.returncode != 0:
        raise SystemExit(f"deploy failed:\n{run.output[-4000:]}")
    return wall, cpu, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libraries", default="system,filesystem,regex,thread,python")
    args = parser.parse_args()
    archive = boost_source.source_archive()
    data = {
        "boost_url": "",
        "boost_sha256": boost_source.sha256(archive),
        "boost_libraries": args.libraries.split(","),
        "pip_stack_venv": None,  # Boost alone: Boost.Python for the distribution's python3
    }
    apt_cache = boost_source.BOOST_CACHE / "apt-archives"
    apt_cache.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="dlrig-bench-"))
    rows = []
    try:
        with targets.serve_directory(archive.parent) as base, targets.fresh_root() as root:
            root.bind(str(apt_cache), "/var/cache/apt/archives", read_only=False)
            target = targets.chroot_target(root)
            data["boost_url"] = f"{base}/{archive.name}"
            wall, cpu, _ = timed(target, data, workdir)
            rows.append(("first run (apt + download + build)", wall, cpu))
            shutil.rmtree(root.path / PREFIX.lstrip("/"))
            wall, cpu, _ = timed(target, data, workdir)
            rows.append(("cold build (extract + bootstrap + b2 + install)", wall, cpu))
            wall, cpu, run = timed(target, data, workdir)
            if run.changed:
                raise SystemExit(f"no-op rerun changed: {run.changed}")
            rows.append(("no-op rerun", wall, cpu))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Boost {boost_source.VERSION}, libraries {args.libraries}, {os.cpu_count()} CPUs")
    print(f"| {'step':<48} | {'wall s':>7} | {'CPU s':>7} |")
    print(f"|{'-' * 50}|{'-' * 9}|{'-' * 9}|")
    for name, wall, cpu in rows:
        print(f"| {name:<48} | {wall:7.1f} | {cpu:7.1f} |")


if __name__ == "__main__":
    main()
