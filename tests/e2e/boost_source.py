"""A real Boost source archive in the upstream release layout, made from Debian's source package.

CI cannot reach boost.org, but it can reach Debian's archive. Debian's ``boost1.88`` source
package (suite ``trixie``) carries an orig tarball made with git-archive-all from the
``boost-1.88.0`` tag of the boostorg/boost super-project, filtered by ``Files-Excluded`` in
debian/copyright. It is fetched with ``apt-get source --download-only`` through a private APT
configuration (its own sources list, lists, cache), so this machine's APT setup is untouched,
and the download is checked by APT against the signed Sources index.

The official release archive differs from that git export, and this module redoes what Boost's
release tooling does, so the deploy meets the layout it expects (``boost_1_88_0/`` on top,
``boost/`` headers, a ready engine source):

+ the top directory is renamed ``boost/`` → ``boost_1_88_0/``;
+ ``boost_1_88_0/boost/`` is made by merging every ``libs/*/include/boost`` and
  ``libs/numeric/*/include/boost`` tree (the release has real header files there; a git
  checkout only gets symlinks from ``b2 headers``);
+ ``tools/build/src/engine/jamgram.cpp`` / ``jamgram.hpp`` are generated files the release ships
  and Debian deletes (its rules regenerate them); they are regenerated here with **bison** from
  ``jamgram.y``, exactly as debian/rules does (``bison -y -d -o src/engine/jamgram.cpp
  src/engine/jamgram.y``). A missing bison fails the fixture with that explanation.

What stays different, honestly: files Debian excludes (``*.html``, ``*.pdf``, ``*.js``, project
files for other IDEs, …: documentation and Windows build files, nothing b2 needs on Linux) are
absent, and the git-only files (``.github/``, ``.circleci/``) are present. The result is served as
``boost_1_88_0.tar.gz``; its sha256 is not the official archive's, so tests pass their own
``boost_sha256`` (which is also what the deploy requires when the URL is overridden).

Everything is cached under ``~/.cache/dlrig/boost/`` (``DLRIG_CACHE`` overrides the root).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import tempfile
from pathlib import Path

from tests.e2e.targets import CACHE, MIRROR, sh

VERSION = "1.88.0"
SUITE = "trixie"
SOURCE_PACKAGE = "boost1.88"
RECIPE = "1"  # bump when the repacking below changes
BOOST_CACHE = CACHE / "boost"


def _under(version: str) -> str:
    return "boost_" + version.replace(".", "_")


def _apt_options(apt_dir: Path) -> list[str]:
    """apt-get options for a private configuration: nothing of this machine's apt state is used."""
    return [
        "-o",
        f"Dir::Etc::sourcelist={apt_dir / 'sources.list'}",
        "-o",
        f"Dir::Etc::sourceparts={apt_dir / 'sources.list.d'}",
        "-o",
        f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o",
        f"Dir::Cache={apt_dir / 'cache'}",
        "-o",
        "APT::Sandbox::User=root",
        "-q",
    ]


def download_orig(workdir: Path) -> Path:
    """Download Debian's orig tarball of ``SOURCE_PACKAGE`` into ``workdir``; return its path."""
    apt_dir = workdir / "apt"
    for sub in ("sources.list.d", "lists/partial", "cache/archives/partial"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(f"deb-src {MIRROR} {SUITE} main\n")
    options = _apt_options(apt_dir)
    sh(["apt-get", *options, "update"], timeout=600)
    sh(
        ["apt-get", *options, "source", "--download-only", SOURCE_PACKAGE],
        cwd=workdir,
        timeout=1200,
    )
    origs = sorted(workdir.glob(f"{SOURCE_PACKAGE}_{VERSION}.orig.tar.*"))
    if not origs:
        raise RuntimeError(f"apt-get source gave no orig tarball of {SOURCE_PACKAGE} {VERSION}")
    return origs[0]


def _merge_headers(tree: Path) -> int:
    """Make ``tree/boost`` from the libraries' include trees; return the number of files."""
    dest = tree / "boost"
    includes = sorted(tree.glob("libs/*/include/boost")) + sorted(
        tree.glob("libs/numeric/*/include/boost")
    )
    for inc in includes:
        shutil.copytree(inc, dest, dirs_exist_ok=True, symlinks=True)
    return sum(1 for p in dest.rglob("*") if p.is_file())


def repack(orig: Path, out: Path) -> None:
    """Turn Debian's orig tarball into ``out`` (``boost_X_Y_Z.tar.gz``, release layout)."""
    if not shutil.which("bison"):
        raise RuntimeError(
            "bison is needed to regenerate jamgram.cpp, which Debian drops from Boost's source "
            "(apt-get install bison; ./test.sh installs it)"
        )
    name = _under(VERSION)
    with tempfile.TemporaryDirectory(prefix="dlrig-boost-src-", dir=BOOST_CACHE) as tmp:
        work = Path(tmp)
        sh(["tar", "-C", str(work), "-xf", str(orig)], timeout=1200)
        (work / "boost").rename(work / name)
        tree = work / name
        engine = tree / "tools/build/src/engine"
        if (engine / "jamgram.cpp").exists():
            raise RuntimeError("Debian's tarball now has jamgram.cpp: revisit this fixture")
        sh(
            ["bison", "-y", "-d", "-o", "src/engine/jamgram.cpp", "src/engine/jamgram.y"],
            cwd=tree / "tools/build",
        )
        if _merge_headers(tree) < 1000 or not (tree / "boost/version.hpp").exists():
            raise RuntimeError("merging the libraries' headers into boost/ failed")
        tmp_out = out.with_suffix(".part")
        sh(
            [
                "sh",
                "-c",
                'tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner -cf - "$2" '
                '| gzip -1 > "$3"',
                "repack",
                str(work),
                name,
                str(tmp_out),
            ],
            timeout=1200,
        )
        tmp_out.rename(out)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def source_archive() -> Path:
    """The cached ``boost_1_88_0.tar.gz`` (built on first use, under a lock)."""
    BOOST_CACHE.mkdir(parents=True, exist_ok=True)
    out = BOOST_CACHE / f"r{RECIPE}" / f"{_under(VERSION)}.tar.gz"
    if out.exists():
        return out
    with open(BOOST_CACHE / "source.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.exists():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        debian = BOOST_CACHE / "debian"
        debian.mkdir(exist_ok=True)
        origs = sorted(debian.glob(f"{SOURCE_PACKAGE}_{VERSION}.orig.tar.*"))
        orig = origs[0] if origs else download_orig(debian)
        repack(orig, out)
    return out
