"""Caffe sources for e2e builds: Debian's bullseye ``caffe`` source package as a local git repo.

CI cannot reach GitHub, so the stand-in is BVLC Caffe 1.0 (git 99bd997, the SSD fork's
upstream, same Makefile layout) from Debian's archive, fetched with ``apt-get source`` under a
private apt configuration (this machine's apt setup is untouched), cached under
``~/.cache/dlrig/caffe/`` and committed into a git repository with fixed dates, so its commit
id is the same on every machine. ``DLRIG_CAFFE_SSD_MIRROR`` may name a local git mirror of
weiliu89/caffe; the same tests then run against the real fork.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.targets import CACHE, sh
from tests.e2e.targets import REPO as REPO_ROOT

CAFFE_CACHE = CACHE / "caffe"
APT_CACHE = CAFFE_CACHE / "apt"  # own dir: apt locks it while a root installs
DEBIAN_MIRROR = os.environ.get("DLRIG_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SOURCE_PACKAGE = "caffe"
ORIG = "caffe_1.0.0+git20180821.99bd997.orig.tar.gz"
SSD_COMMIT = "4817bf8b4200b35ada8ed0dc378dceaf38c539e4"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "dlrig",
    "GIT_AUTHOR_EMAIL": "dlrig@localhost",
    "GIT_COMMITTER_NAME": "dlrig",
    "GIT_COMMITTER_EMAIL": "dlrig@localhost",
    "GIT_AUTHOR_DATE": "2018-08-21T00:00:00Z",
    "GIT_COMMITTER_DATE": "2018-08-21T00:00:00Z",
}


def debian_orig_tarball() -> Path:
    """Bullseye's caffe upstream tarball, downloaded once with a private apt configuration."""
    CAFFE_CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CAFFE_CACHE / ORIG
    if tarball.exists():
        return tarball
    with open(CAFFE_CACHE / "download.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        work = Path(tempfile.mkdtemp(prefix="dlrig-caffe-apt-"))
        try:
            (work / "lists/partial").mkdir(parents=True)
            (work / "sources.list").write_text(f"deb-src {DEBIAN_MIRROR} bullseye main\n")
            opts = [
                "-o",
                f"Dir::Etc::sourcelist={work / 'sources.list'}",
                "-o",
                "Dir::Etc::sourceparts=/dev/null",
                "-o",
                f"Dir::State::Lists={work / 'lists'}",
                "-o",
                "APT::Sandbox::User=root",
            ]
            sh(["apt-get", *opts, "update"], timeout=600)
            sh(["apt-get", *opts, "source", "--download-only", SOURCE_PACKAGE], cwd=work)
            got = work / ORIG
            if not got.exists():
                raise RuntimeError(f"apt-get source {SOURCE_PACKAGE} did not give {ORIG}")
            shutil.copy2(got, tarball.with_suffix(".tmp"))
            tarball.with_suffix(".tmp").rename(tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tarball


def standin_repo() -> tuple[Path, str]:
    """A git repository of BVLC Caffe 1.0 (cached); returns (path, commit)."""
    tarball = debian_orig_tarball()
    repo = CAFFE_CACHE / "bvlc-caffe-1.0.git"
    with open(CAFFE_CACHE / "repo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (repo / ".git").is_dir():
            tmp = Path(tempfile.mkdtemp(prefix="bvlc-caffe-", dir=CAFFE_CACHE))
            sh(["tar", "-C", str(tmp), "-xzf", str(tarball)])
            env = {**os.environ, **_GIT_ENV}
            sh(["git", "init", "-q", "-b", "master", str(tmp)])
            sh(["git", "-C", str(tmp), "add", "-A"], env=env)
            sh(["git", "-C", str(tmp), "commit", "-q", "-m", "BVLC Caffe 1.0 (99bd997)"], env=env)
            tmp.rename(repo)
        commit = sh(["git", "-C", str(repo), "rev-parse", "HEAD"]).stdout.strip()
    return repo, commit


def ssd_mirror() -> Path | None:
    """A repository holding the pinned SSD commit, from ``DLRIG_CAFFE_SSD_MIRROR``; else None.

    The mirror itself may lack blobs outside the pinned tree (snapshots leave out large
    files), so the deploy clones a shallow copy of just that commit, cached per mirror.
    """
    path = os.environ.get("DLRIG_CAFFE_SSD_MIRROR")
    if not path or not Path(path).is_dir():
        return None
    ok = subprocess.run(
        ["git", "-C", path, "cat-file", "-e", f"{SSD_COMMIT}^{{commit}}"], capture_output=True
    )
    if ok.returncode != 0:
        return None
    CAFFE_CACHE.mkdir(parents=True, exist_ok=True)
    repo = CAFFE_CACHE / f"ssd-{SSD_COMMIT[:12]}.git"
    with open(CAFFE_CACHE / "repo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not repo.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix="ssd-", dir=CAFFE_CACHE))
            sh(["git", "init", "-q", "--bare", str(tmp)])
            sh(
                [
                    "git",
                    "-C",
                    str(tmp),
                    "fetch",
                    "-q",
                    "--depth",
                    "1",
                    "--upload-pack",
                    "git -c uploadpack.allowAnySHA1InWant=true upload-pack",
                    f"file://{Path(path).resolve()}",
                    SSD_COMMIT,
                ]
            )
            sh(["git", "-C", str(tmp), "update-ref", "refs/heads/ssd", SSD_COMMIT])
            sh(["git", "-C", str(tmp), "symbolic-ref", "HEAD", "refs/heads/ssd"])
            tmp.rename(repo)
    return repo


SSD_FIXTURE = REPO_ROOT.parent / "shared" / "fixtures" / f"caffe-ssd-{SSD_COMMIT[:7]}.git.tar.gz"


def ssd_fixture_repo() -> Path:
    """The real SSD fork at the pinned commit, from ``../shared/fixtures/`` (a shallow bare
    repository; see the README beside it), unpacked once under the cache. Missing: a failure."""
    if not SSD_FIXTURE.is_file():
        raise AssertionError(f"the Caffe-SSD source fixture is missing: {SSD_FIXTURE}")
    CAFFE_CACHE.mkdir(parents=True, exist_ok=True)
    repo = CAFFE_CACHE / f"fixture-ssd-{SSD_COMMIT[:12]}.git"
    with open(CAFFE_CACHE / "repo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not repo.is_dir():
            tmp = Path(tempfile.mkdtemp(prefix="fixture-ssd-", dir=CAFFE_CACHE))
            sh(["tar", "-C", str(tmp), "-xzf", str(SSD_FIXTURE)])
            (unpacked,) = tmp.glob("*.git")
            got = sh(["git", "-C", str(unpacked), "rev-parse", f"{SSD_COMMIT}^{{commit}}"])
            assert got.stdout.strip() == SSD_COMMIT
            unpacked.rename(repo)
            shutil.rmtree(tmp)
    return repo
