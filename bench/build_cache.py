"""Benchmark: cold build vs warm restore from the build cache, side by side, in one run.

For each component (Boost, then Caffe CPU_ONLY from the BVLC stand-in source), on fresh Debian 12
roots: host A builds with ``build_cache_dir`` set (and publishes), fresh host B runs the same
deploy and restores. Prerequisite packages are installed on both first (a run whose build fails
right after them), so the table compares the build against the restore.
Prints wall and CPU time (user + system of every waited-for process,
``getrusage(RUSAGE_CHILDREN)``) and the speedup. Target: warm ≥ 20x faster and ≤ 60 s.

Usage (root, like the e2e tier): ``python3 bench/build_cache.py [--components boost,caffe]
[--libraries system,filesystem,regex,thread,python]``; prints one row per component and the
whole stack.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e import boost_source, caffe_source, targets
from tests.e2e.test_caffe import REMOTE_REPO, _with_apt_cache

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


def _boost(libraries: str, cache: Path, workdir: Path) -> tuple[tuple, tuple]:
    archive = boost_source.source_archive()
    with targets.serve_directory(archive.parent) as base:
        data = {
            "boost_url": f"{base}/{archive.name}",
            "boost_sha256": boost_source.sha256(archive),
            "boost_libraries": libraries.split(","),
            "build_cache_dir": CACHE_IN_ROOT,
            "pip_stack_venv": None,  # Boost alone: Boost.Python for the distribution's python3
        }
        with targets.fresh_root() as root_a, targets.fresh_root() as root_b:
            host_a, host_b = _host(root_a, cache), _host(root_b, cache)
            # Prerequisites first on both, so only build vs restore is timed.
            for host in (host_a, host_b):
                targets.pyinfra(
                    host, "deploys.boost.boost", {**data, "boost_sha256": "0" * 64}, workdir=workdir
                )
            return (
                _timed(host_a, "deploys.boost.boost", data, workdir),
                _timed(host_b, "deploys.boost.boost", data, workdir),
            )


def _caffe(cache: Path, workdir: Path) -> tuple[tuple, tuple]:
    repo, commit = caffe_source.ssd_fixture_repo(), caffe_source.SSD_COMMIT
    data = {
        "caffe_repo": f"file://{REMOTE_REPO}",
        "caffe_ref": commit,
        "build_cache_dir": CACHE_IN_ROOT,
        # Caffe alone: the distribution's Boost and Python.
        "boost_source": "system",
        "pip_stack_venv": None,
    }
    with targets.fresh_root() as root_a, targets.fresh_root() as root_b:
        hosts = []
        for root in (root_a, root_b):
            target = targets.chroot_target(root)
            _with_apt_cache(target)
            root.bind(str(repo), REMOTE_REPO)
            root.bind(str(cache), CACHE_IN_ROOT, read_only=False)
            # Build dependencies first: a commit that does not exist fails right after them.
            targets.pyinfra(target, "deploys.caffe.caffe", {**data, "caffe_ref": "0" * 40})
            hosts.append(target)
        return (
            _timed(hosts[0], "deploys.caffe.caffe", data, workdir),
            _timed(hosts[1], "deploys.caffe.caffe", data, workdir),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", default="boost,caffe")
    parser.add_argument("--libraries", default="system,filesystem,regex,thread,python")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="dlrig-bench-"))
    cache = workdir / "cache"
    cache.mkdir()
    rows = []
    components = args.components.split(",")
    if "boost" in components:
        rows.append((f"boost ({args.libraries})", *_boost(args.libraries, cache, workdir)))
    if "caffe" in components:
        rows.append(("caffe (CPU_ONLY, BVLC 1.0 stand-in)", *_caffe(cache, workdir)))
    if len(rows) > 1:
        total = tuple(tuple(sum(row[i][j] for row in rows) for j in range(2)) for i in (1, 2))
        rows.append(("whole stack", *total))

    print(
        f"{'component':<48} {'cold wall':>10} {'cold CPU':>9} {'warm wall':>10} "
        f"{'warm CPU':>9} {'speedup':>8}"
    )
    for name, (cw, cc), (ww, wc) in rows:
        print(f"{name:<48} {cw:>9.1f}s {cc:>8.1f}s {ww:>9.1f}s {wc:>8.1f}s {cw / ww:>7.1f}x")


if __name__ == "__main__":
    main()
