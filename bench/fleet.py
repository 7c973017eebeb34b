#!/usr/bin/env python3
"""Fleet scaling: wall time of a no-op rerun of the light profile on 1, 4, 8, 16 SSH hosts.

Starts 16 SSH test hosts (fresh Debian 12 roots, sshd on loopback, user ``dlrig`` + sudo, host
keys checked; see tests/e2e/fleet.py), converges the light profile on all of them once, then
times no-op reruns (``pyinfra -y <inventory> <deploy>``, whole process) on the first 1, 4, 8
and 16 hosts, ``--repeat`` times each, and prints a table. Also counts the remote commands per
host (fact round trips + commands) from ``--debug`` output, and the CPU time of the controller
(the pyinfra process) and of the whole machine per run: the test hosts' sshd, sudo and probes
run on the same cores here, so "all CPU" minus "controller CPU" is what real servers would
carry themselves. Needs root, like the e2e tier.

    sudo python3 bench/fleet.py [--sizes 1,4,8,16] [--repeat 5] [--deploy deploys/gpu_server.py]
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e import fleet, targets  # noqa: E402

# The server entry deploy's light profile: no builds, no pip stack, no speed check.
DATA = {
    "profile_skip": ["boost", "caffe", "pip_stack", "speed_check"],
    "preflight_require_gpu": False,
    "ldconfig_entries": {"bench": ["/opt/dlrig-bench/lib"]},
}


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / 100


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(inventory: Path, deploy: str, debug: bool = False) -> tuple[float, float, float, str]:
    """One pyinfra run: wall s, controller CPU s, machine CPU s, stderr."""
    cmd = [sys.executable, "-m", "pyinfra", "-y", str(inventory), deploy]
    if debug:
        cmd.insert(3, "--debug")
    cpu0, all0, start = _children_cpu(), _machine_cpu(), time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - start
    cpu, all_cpu = _children_cpu() - cpu0, _machine_cpu() - all0
    if proc.returncode != 0 or (not debug and "] Success" in proc.stderr):
        raise SystemExit(f"run on {inventory} failed or changed something:\n{proc.stderr[-3000:]}")
    return wall, cpu, all_cpu, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,8,16")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--deploy", default="deploys/gpu_server.py")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="dlrig-bench-fleet-"))
    t0 = time.monotonic()
    with (
        fleet.local_distribution_repo(workdir) as prepare,
        fleet.ssh_fleet(
            max(sizes), workdir, prepare=prepare, tarball=fleet.seeded_tarball()
        ) as hosts,
    ):
        started = time.monotonic() - t0
        first = targets.pyinfra(hosts, args.deploy, DATA, workdir=workdir)
        if first.returncode != 0:
            raise SystemExit(f"converge failed:\n{first.output[-3000:]}")
        rows = []
        for n in sizes:
            inventory = targets.write_inventory(workdir / f"inv_{n}.py", hosts[:n], DATA)
            _run(inventory, args.deploy)  # warm: page cache, pyc files
            runs = [_run(inventory, args.deploy) for _ in range(args.repeat)]
            walls = [r[0] for r in runs]
            debug = _run(inventory, args.deploy, debug=True)[3]
            commands = len(re.findall(r"Running command on ", debug)) / n
            rows.append(
                (
                    n,
                    statistics.median(walls),
                    min(walls),
                    max(walls),
                    commands,
                    statistics.median(r[1] for r in runs),
                    statistics.median(r[2] for r in runs),
                )
            )

    base = rows[0][1]
    print(f"fleet of {max(sizes)} SSH test hosts started in {started:.1f} s; deploy {args.deploy}")
    print(f"no-op rerun, whole pyinfra process, median of {args.repeat}:")
    print()
    print(
        "| hosts | median s | min s | max s | x of 1 host | remote commands / host "
        "| controller CPU s | all CPU s |"
    )
    print("|------:|---------:|------:|------:|------------:|------:|------:|------:|")
    for n, med, lo, hi, commands, cpu, all_cpu in rows:
        print(
            f"| {n} | {med:.2f} | {lo:.2f} | {hi:.2f} | {med / base:.2f} | {commands:.0f} "
            f"| {cpu:.2f} | {all_cpu:.2f} |"
        )


if __name__ == "__main__":
    main()
