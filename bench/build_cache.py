"""Benchmark: cold build vs warm restore from the build cache, side by side, in one run.

For each component (Boost now; Caffe once its deploy takes the cache), on fresh Debian 12 roots:
host A builds with ``build_cache_dir`` set (and publishes), fresh host B runs the same deploy and
restores. Prerequisite packages come from a warm APT cache on both, so the table compares the
build against the restore. Prints wall and CPU time (user + system of every waited-for process,
``getrusage(RUSAGE_CHILDREN)``) and the speedup. Target: warm ≥ 20x faster and ≤ 60 s.

Usage: ``python3 bench/build_cache.py [--libraries system,filesystem,regex,thread,python]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import boost_source, targets

CACHE_IN_ROOT = "/srv/dlrig-cache"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _host(root: targets.Root, cache: Path) -> targets.Target:
    apt_cache = boost_source.BOOST_CACHE / "apt-archives"
    apt_cache.mkdir(parents=True, exist_ok=True)
    root.bind(str(apt_cache), "/var/cache/apt/archives", read_only=False)
    root.bind(str(cache), CACHE_IN_ROOT, read_only=False)
    return targets.chroot_target(root)


def _timed(target: targets.Target, deploy: str, data: dict, workdir: Path) -> tuple[float, float]:
    cpu0, wall0 = _children_cpu(), time.monotonic()
    run = targets.pyinfra(target, deploy, data, workdir=workdir)
    wall, cpu = time.monotonic() - wall0, _children_cpu() - cpu0
    if run.returncode != 0:
        raise SystemExit(f"{deploy} failed:\n{run.output[-4000:]}")
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libraries", default="system,filesystem,regex,thread,python")
    args = parser.parse_args()
    archive = boost_source.source_archive()
    workdir = Path(tempfile.mkdtemp(prefix="dlrig-bench-"))
    cache = workdir / "cache"
    cache.mkdir()
    rows = []
    with targets.serve_directory(archive.parent) as base:
        data = {
            "boost_url": f"{base}/{archive.name}",
            "boost_sha256": boost_source.sha256(archive),
            "boost_libraries": args.libraries.split(","),
            "build_cache_dir": CACHE_IN_ROOT,
        }
        with targets.fresh_root() as root_a, targets.fresh_root() as root_b:
            host_a, host_b = _host(root_a, cache), _host(root_b, cache)
            # Prerequisites first on both, so only build vs restore is timed.
            for host in (host_a, host_b):
                targets.pyinfra(
                    host, "deploys.boost.boost", {**data, "boost_sha256": "0" * 64}, workdir=workdir
                )
            cold = _timed(host_a, "deploys.boost.boost", data, workdir)
            warm = _timed(host_b, "deploys.boost.boost", data, workdir)
            rows.append(("boost (" + args.libraries + ")", cold, warm))

    print(
        f"{'component':<48} {'cold wall':>10} {'cold CPU':>9} {'warm wall':>10} "
        f"{'warm CPU':>9} {'speedup':>8}"
    )
    for name, (cw, cc), (ww, wc) in rows:
        print(f"{name:<48} {cw:>9.1f}s {cc:>8.1f}s {ww:>9.1f}s {wc:>8.1f}s {cw / ww:>7.1f}x")


if __name__ == "__main__":
    main()
