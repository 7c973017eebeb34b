"""e2e: Boost built from a real source archive on a Debian 12 root, served over loopback HTTP.

The archive is Boost 1.88.0 made from Debian's source package in the upstream release layout
(``tests/e2e/boost_source.py`` says how and what differs). Debian packages the roots install are
kept in ``~/.cache/dlrig/boost/apt-archives`` (bind-mounted as the roots' APT cache).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import boost_source, targets

pytestmark = [pytest.mark.e2e, pytest.mark.build]

PREFIX = "/opt/dlrig/boost"
DEPLOY = "deploys.boost.boost"
LOG = "/var/log/dlrig/boost-build.log"
APT_ARCHIVES = boost_source.BOOST_CACHE / "apt-archives"


@pytest.fixture(scope="module")
def boost_archive() -> Iterator[tuple[str, str]]:
    """(URL, sha256) of the Boost source archive on a loopback HTTP server."""
    archive = boost_source.source_archive()
    digest = boost_source.sha256(archive)
    with targets.serve_directory(archive.parent) as base:
        yield f"{base}/{archive.name}", digest


@pytest.fixture
def root(debian_root: targets.Target) -> targets.Target:
    """The Debian root, with APT's package cache shared across tests (downloads once)."""
    APT_ARCHIVES.mkdir(parents=True, exist_ok=True)
    debian_root.root.bind(str(APT_ARCHIVES), "/var/cache/apt/archives", read_only=False)
    return debian_root


def _data(archive: tuple[str, str], **extra) -> dict:
    url, digest = archive
    # Boost alone: Boost.Python for the distribution's python3 (no venv; the profile makes one).
    return {"boost_url": url, "boost_sha256": digest, "pip_stack_venv": None, **extra}


def _exists(target: targets.Target, path: str) -> bool:
    return (target.root.path / path.lstrip("/")).exists()


HELLO_FS = r"""
#include <boost/filesystem.hpp>
#include <iostream>
int main() {
    boost::filesystem::path p("/etc/os-release");
    std::cout << p.filename().string() << " " << boost::filesystem::exists(p) << "\n";
}
"""

HELLO_PY = r"""
#include <boost/python.hpp>
char const* greet() { return "hello from boost.python"; }
BOOST_PYTHON_MODULE(hello) { boost::python::def("greet", greet); }
"""


def test_wrong_sha256_fails_before_extraction(root, run_pyinfra, boost_archive):
    url, _ = boost_archive
    wrong = "0" * 64
    run = run_pyinfra(root, DEPLOY, _data((url, wrong)))
    assert run.returncode != 0
    assert f"sha256 mismatch for {url}: expected {wrong}" in run.output, run.output[-3000:]
    assert "boost_sha256" in run.output
    # Nothing was extracted, the bad download is gone, nothing installed, no key.
    assert not _exists(root, "/var/tmp/dlrig-boost-build")
    assert not any((root.root.path / "var/cache/dlrig/boost").iterdir())
    assert not _exists(root, PREFIX)


def _b2_pid(root: Path) -> int | None:
    """The library-building b2 inside ``root`` (not bootstrap's engine build), once it compiles."""
    real = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "root") != real:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(b"b2") and b"install" in argv:
                return int(entry.name)
    return None


def _run_and_kill_b2(target: targets.Target, data: dict, workdir: Path) -> tuple[int, str]:
    """Run the deploy once; SIGKILL the library-building b2 once it compiles; return output."""
    inventory = targets.write_inventory(workdir / "inventory_kill.py", [target], data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyinfra", "-y", str(inventory), DEPLOY],
        cwd=targets.REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    objects = target.root.path / "var/tmp/dlrig-boost-build/build"
    killed = None
    try:
        deadline = time.monotonic() + 1800
        while proc.poll() is None and time.monotonic() < deadline:
            pid = _b2_pid(target.root.path)
            if pid and objects.is_dir() and any(objects.rglob("*.o")):
                os.kill(pid, signal.SIGKILL)
                killed = pid
                break
            time.sleep(0.2)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed, f"b2 was never seen compiling:\n{output[-3000:]}"
    return proc.returncode, output


def test_boost_killed_mid_build_then_converges_and_is_usable(
    root, tmp_path, converge, boost_archive
):
    # One build serves both checks (CI budget): a SIGKILL of b2 mid-build fails the run and
    # records no key; the rerun completes, a third run changes nothing, and the result works.
    data = _data(boost_archive)
    returncode, output = _run_and_kill_b2(root, data, tmp_path)
    assert returncode != 0
    assert "Boost build failed" in output and LOG in output
    assert not _exists(root, f"{PREFIX}/.dlrig-build-key.json")
    assert not _exists(root, f"{PREFIX}/lib")

    first, _ = converge(root, DEPLOY, data)
    assert any("Build Boost 1.88.0" in name for name in first.changed), first.changed
    assert not _exists(root, f"{PREFIX}.dlrig-staging")
    assert not _exists(root, "/var/tmp/dlrig-boost-build")
    host = root.testinfra()
    for lib in ("system", "filesystem", "regex", "thread", "python311"):
        assert host.file(f"{PREFIX}/lib/libboost_{lib}.so.1.88.0").exists, lib
    assert host.file(f"{PREFIX}/include/boost/version.hpp").contains("BOOST_LIB_VERSION")
    key = json.loads(host.file(f"{PREFIX}/.dlrig-build-key.json").content_string)
    assert key["inputs"]["version"] == "1.88.0"
    assert key["inputs"]["cxx_version"] == host.check_output("g++ -dumpfullversion")
    assert key["inputs"]["libraries"] == ["filesystem", "python", "regex", "system", "thread"]
    assert host.file(LOG).contains("b2 -j")
    assert f"libboost_filesystem.so.1.88.0 (libc6,x86-64) => {PREFIX}/lib" in host.check_output(
        "/sbin/ldconfig -p"
    )

    # A C++ program linking boost_filesystem runs (found through ld.so.conf.d, no rpath).
    (root.root.path / "tmp/fs.cpp").write_text(HELLO_FS)
    root.root.run(
        f"g++ -I{PREFIX}/include /tmp/fs.cpp -L{PREFIX}/lib -lboost_filesystem -o /tmp/fs"
    )
    assert root.root.run("/tmp/fs").stdout == "os-release 1\n"

    # A tiny Boost.Python module imports in the system Python.
    (root.root.path / "tmp/hello.cpp").write_text(HELLO_PY)
    root.root.run(
        f"g++ -shared -fPIC -I{PREFIX}/include $(python3-config --includes) /tmp/hello.cpp "
        f"-L{PREFIX}/lib -lboost_python311 -o /tmp/hello.so"
    )
    out = root.root.run("cd /tmp && python3 -c 'import hello; print(hello.greet())'").stdout
    assert out == "hello from boost.python\n"


def test_system_boost_installs_distro_packages(root, converge):
    data = {
        "boost_source": "system",
        "boost_libraries": ["filesystem", "system"],
        "pip_stack_venv": None,
    }
    converge(root, DEPLOY, data)
    packages = root.root.packages()
    for pkg in ("libboost-filesystem-dev", "libboost-system-dev"):
        assert f"\n{pkg} " in "\n" + packages, pkg
    assert not _exists(root, PREFIX)
    assert not _exists(root, "/etc/ld.so.conf.d/dlrig-boost-lib.conf")
    (root.root.path / "tmp/fs.cpp").write_text(HELLO_FS)
    root.root.run("apt-get install -y -q --no-install-recommends g++ >/dev/null")
    root.root.run("g++ /tmp/fs.cpp -lboost_filesystem -o /tmp/fs")
    assert root.root.run("/tmp/fs").stdout == "os-release 1\n"
