"""e2e: the ldconfig deploy registers library directories on real targets."""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.e2e

LIBDIR = "/opt/dlrig-test/lib"


def _place_library(root, tmp_path) -> None:
    # A real shared library (own soname) in a directory the linker does not search by default.
    src = tmp_path / "t.c"
    src.write_text("int dlrig_test(void) { return 42; }\n")
    libdir = root.path / LIBDIR.lstrip("/")
    libdir.mkdir(parents=True)
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libdlrigtest.so.1",
            "-o",
            str(libdir / "libdlrigtest.so.1"),
            str(src),
        ],
        check=True,
    )


@pytest.mark.parametrize("target_fixture", ["debian_root", "ssh_host"])
def test_ldconfig_registers_and_removes(request, tmp_path, converge, target_fixture):
    target = request.getfixturevalue(target_fixture)
    _place_library(target.root, tmp_path)
    host = target.testinfra()
    assert "libdlrigtest.so.1" not in host.check_output("/sbin/ldconfig -p")

    converge(target, "deploys.ldconfig.ldconfig", {"ldconfig_entries": {"test": [LIBDIR]}})

    conf = host.file("/etc/ld.so.conf.d/dlrig-data-test.conf")
    assert conf.exists and conf.mode == 0o644
    assert LIBDIR in conf.content_string
    assert f"libdlrigtest.so.1 (libc6,x86-64) => {LIBDIR}/libdlrigtest.so.1" in host.check_output(
        "/sbin/ldconfig -p"
    )

    # Dropping the entry removes the file and the library from the cache.
    converge(target, "deploys.ldconfig.ldconfig", {"ldconfig_entries": {}})
    assert not host.file("/etc/ld.so.conf.d/dlrig-data-test.conf").exists
    assert "libdlrigtest.so.1" not in host.check_output("/sbin/ldconfig -p")


def test_ldconfig_rejects_relative_dirs_before_change(debian_root, run_pyinfra):
    run = run_pyinfra(
        debian_root, "deploys.ldconfig.ldconfig", {"ldconfig_entries": {"x": ["lib"]}}
    )
    assert run.returncode != 0
    assert "absolute directories" in run.output
    assert not (debian_root.root.path / "etc/ld.so.conf.d/dlrig-data-x.conf").exists()


def test_entry_left_by_a_failed_ldconfig_is_picked_up(debian_root, tmp_path, converge):
    """An entry written by a run whose ldconfig failed: the next run runs ldconfig anyway."""
    from deploys.ldconfig import render

    _place_library(debian_root.root, tmp_path)
    conf = debian_root.root.path / "etc/ld.so.conf.d/dlrig-data-test.conf"
    conf.write_text(render([LIBDIR]))
    assert "libdlrigtest.so.1" not in debian_root.root.run("/sbin/ldconfig -p").stdout

    first, _ = converge(
        debian_root, "deploys.ldconfig.ldconfig", {"ldconfig_entries": {"test": [LIBDIR]}}
    )

    # The entry is already right; the stale linker cache alone makes the step run ldconfig.
    assert first.changed == ["Register library directories | Register library directories of data"]
    assert "libdlrigtest.so.1" in debian_root.root.run("/sbin/ldconfig -p").stdout
