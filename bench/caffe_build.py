"""Cold Caffe build on a fresh Debian 12 root: wall and CPU time, per phase. Prints a table.

Usage (root, like the e2e tier):

    python3 -m bench.caffe_build              # BVLC Caffe 1.0 stand-in (Debian source package)
    DLRIG_CAFFE_SSD_MIRROR=/path/to/mirror python3 -m bench.caffe_build --ssd

The apt .debs come from ``~/.cache/dlrig/apt`` when cached (so "apt" is mostly unpacking).
Phases: the whole first pyinfra run (wall, CPU of all its descendants), the ``make`` steps
from the build log's time stamps, and the no-op second run.
"""

from __future__ import annotations

import argparse
import datetime
import resource
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e import caffe_source, targets
from tests.e2e.test_caffe import REMOTE_REPO, _with_apt_cache


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _make_phases(log: str) -> list[tuple[str, float]]:
    """(target list, seconds) for each ``make`` in the build log."""
    starts: dict[str, datetime.datetime] = {}
    out = []
    for line in log.splitlines():
        if not line.startswith("== "):
            continue
        _, stamp, rest = line.split(" ", 2)
        when = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if rest.startswith("make "):
            starts[rest.split(" ", 2)[2]] = when
        elif rest.startswith("done make "):
            what = rest.removeprefix("done make ")
            out.append((what, (when - starts[what]).total_seconds()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--standin", action="store_true", help="build BVLC Caffe 1.0 (Debian's) instead"
    )
    args = parser.parse_args()
    if args.standin:
        repo, commit = caffe_source.standin_repo()
        source = "BVLC Caffe 1.0 (Debian stand-in)"
    else:
        repo, commit = caffe_source.ssd_fixture_repo(), caffe_source.SSD_COMMIT
        source = "weiliu89/caffe ssd (../shared/fixtures)"
    rows = []
    with targets.fresh_root() as root:
        target = targets.chroot_target(root)
        _with_apt_cache(target)
        root.bind(str(repo), REMOTE_REPO)
        # Caffe alone: the distribution's Boost and Python (the profile builds dlrig's first).
        data = {
            "caffe_repo": f"file://{REMOTE_REPO}",
            "caffe_ref": commit,
            "boost_source": "system",
            "pip_stack_venv": None,
        }
        work = Path(tempfile.mkdtemp(prefix="dlrig-bench-caffe-"))
        for label in ("first run (cold)", "second run (no-op)"):
            t0, c0 = time.monotonic(), _cpu()
            run = targets.pyinfra(target, "deploys.caffe.caffe", data, workdir=work)
            if run.returncode != 0:
                print(run.output[-4000:], file=sys.stderr)
                return 1
            rows.append((label, time.monotonic() - t0, _cpu() - c0))
        log = (root.path / "var/log/dlrig/caffe-build.log").read_text()
        for what, secs in _make_phases(log):
            rows.append((f"  make {what}", secs, None))
    cores = len(__import__("os").sched_getaffinity(0))
    print(f"Caffe cold build, CPU_ONLY, {source}, {cores} cores")
    print(f"{'phase':<34} {'wall s':>8} {'CPU s':>8}")
    for label, wall, cpu in rows:
        print(f"{label:<34} {wall:>8.1f} {'' if cpu is None else f'{cpu:.1f}':>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
