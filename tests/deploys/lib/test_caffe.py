"""Caffe build logic: settings, Makefile.config, arches, build key, and the patch applier."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploys import caffe as deploy
from deploys.lib import caffe as lib

DATA = dict(deploy.DEFAULTS)
INPUTS = {
    "os": "debian-12",
    "cxx_version": "12.2.0",
    "multiarch": "x86_64-linux-gnu",
    "nvcc": None,
    "cudnn": None,
    "boost": "1_74",
    "python": {
        "version": "3.11",
        "include": "/usr/include/python3.11",
        "libdir": "/usr/lib/x86_64-linux-gnu",
        "purelib": "/usr/local/lib/python3.11/dist-packages",
        "numpy_include": "/usr/local/lib/python3.11/dist-packages/numpy/_core/include",
        "numpy": "2.1.0",
    },
}


def _settings(data=None, inputs=None) -> lib.Settings:
    return lib.resolve({**DATA, **(data or {})}, {**INPUTS, **(inputs or {})}, "/b", "/s")


def test_cpu_only_when_no_nvcc():
    config = lib.render_makefile_config(_settings())
    assert "CPU_ONLY := 1" in config
    assert "CUDA_ARCH" not in config
    assert "PYTHON_LIBRARIES := boost_python311 python3.11" in config
    assert "CUSTOM_CXX := g++" in config
    assert "RELEASE_BUILD_DIR := /b" in config
    assert "DISTRIBUTE_DIR := /s" in config


def test_numpy_headers_of_the_interpreter_come_first():
    config = lib.render_makefile_config(_settings())
    line = next(x for x in config.splitlines() if x.startswith("PYTHON_INCLUDE :="))
    assert line.split()[2:] == [
        "/usr/local/lib/python3.11/dist-packages/numpy/_core/include",
        "/usr/include/python3.11",
    ]


def test_include_dirs_never_list_usr_include():
    config = lib.render_makefile_config(_settings())
    line = next(x for x in config.splitlines() if x.startswith("INCLUDE_DIRS :="))
    assert "/usr/include " not in line + " "
    assert "/usr/include/hdf5/serial" in line


def test_cuda_build_with_cudnn_and_host_compiler():
    s = _settings(
        {"caffe_cxx": "g++-11", "caffe_cuda_arch": ["75", "8.6"], "caffe_cudnn_dir": "/c"},
        {"nvcc": "11.8", "cudnn": "8.9.7"},
    )
    config = lib.render_makefile_config(s)
    assert "CPU_ONLY" not in config
    assert "USE_CUDNN := 1" in config
    assert "CUSTOM_CXX := g++-11" in config
    assert (
        "CUDA_ARCH := -gencode arch=compute_75,code=sm_75 -gencode arch=compute_86,code=sm_86 "
        "-gencode arch=compute_86,code=compute_86" in config
    )
    assert "/c/include" in config and "/c/lib" in config


def test_forced_cuda_without_nvcc_is_an_error():
    with pytest.raises(ValueError, match="no nvcc"):
        _settings({"caffe_cpu_only": False})


def test_arches_the_toolkit_dropped_are_left_out():
    assert lib.pick_arches(["30", "35", "75"], "11.8") == ["35", "75"]
    assert lib.pick_arches(["35", "75"], "12.4") == ["75"]
    with pytest.raises(ValueError, match="supports none"):
        lib.pick_arches(["30"], "12.4")
    assert lib.pick_arches([], "11.8") == lib.DEFAULT_ARCHES[11]


def test_cxx_package():
    assert lib.cxx_package("g++-11") == "g++-11"
    assert lib.cxx_package("clang++-15") == "clang-15"
    assert lib.cxx_package("g++") is None
    assert "g++-11" in lib.apt_packages("open", "g++-11", system_python=True)
    assert "python3-numpy" not in lib.apt_packages("open", "", system_python=False)


def test_build_key_is_stable_and_sensitive():
    parts = {"commit": "abc", "patches": lib.patch_set_hash()}
    assert lib.build_key(parts) == lib.build_key(dict(reversed(parts.items())))
    assert lib.build_key(parts) != lib.build_key({**parts, "commit": "abd"})


def test_every_patch_has_a_header_saying_what_fails():
    patches = lib.patch_files()
    assert len(patches) >= 6
    for patch in patches:
        text = patch.read_text()
        header = lib.patch_header(text)
        assert header.startswith("Subject: "), patch.name
        assert "Fails without it" in header, patch.name
        assert lib.patch_targets(text), patch.name


# --- the patch applier (the shell script the deploy runs), on a small git tree ---------------

GIT = shutil.which("git")


def _tree(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a/f.txt").write_text("one\ntwo\nthree\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(src), "commit", "-qm", "x"], check=True, env=env)
    return src


def _patch(tmp_path: Path, name: str, path: str, old: str, new: str) -> Path:
    p = tmp_path / name
    p.write_text(
        f"Subject: {name}\n\nFails without it: nothing.\n\n"
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,3 +1,3 @@\n one\n-{old}\n+{new}\n three\n"
    )
    return p


def _apply(src: Path, *patches: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", "-c", deploy._APPLY_PATCHES, "apply", str(src), *map(str, patches)],
        capture_output=True,
        text=True,
    )


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_patches_apply_once_then_report_already_applied(tmp_path):
    src = _tree(tmp_path)
    p = _patch(tmp_path, "0001-x.patch", "a/f.txt", "two", "TWO")
    first = _apply(src, p)
    assert first.returncode == 0, first.stderr
    assert "0001-x.patch: applied" in first.stdout
    second = _apply(src, p)
    assert second.returncode == 0, second.stderr
    assert "0001-x.patch: already applied" in second.stdout
    assert (src / "a/f.txt").read_text() == "one\nTWO\nthree\n"


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_patch_for_absent_file_is_skipped_and_says_so(tmp_path):
    src = _tree(tmp_path)
    p = _patch(tmp_path, "0002-ssd.patch", "src/ssd_only.cpp", "two", "TWO")
    run = _apply(src, p)
    assert run.returncode == 0, run.stderr
    assert "0002-ssd.patch: skipped" in run.stdout
    assert "src/ssd_only.cpp" in run.stdout


@pytest.mark.skipif(GIT is None, reason="needs git")
def test_patch_that_no_longer_applies_is_an_error_naming_it(tmp_path):
    src = _tree(tmp_path)
    p = _patch(tmp_path, "0003-stale.patch", "a/f.txt", "zwei", "TWO")
    run = _apply(src, p)
    assert run.returncode != 0
    assert "0003-stale.patch no longer applies" in run.stderr


def test_settings_before_anything_is_installed():
    # Change detection runs before apt installs the compiler and NumPy: no crash, and the
    # build key differs from the one after installing (so the build runs).
    bare = {"cxx_version": None, "multiarch": None, "boost": None, "python": None}
    config = lib.render_makefile_config(_settings(inputs=bare))
    assert "CPU_ONLY := 1" in config


def test_plan_fills_what_host_data_leaves_open():
    from types import SimpleNamespace as NS

    plan = NS(
        cpu_only=False,
        cuda=NS(path="/usr", version="11.8.89"),
        compiler=NS(cxx="/usr/bin/g++-11"),
        cuda_arch=["7.5", "8.6"],
        cudnn={"version": "8.9.6", "usable": True},
    )
    d = lib.from_plan(dict(DATA), plan)
    assert d["caffe_cpu_only"] is False
    assert d["caffe_cuda_dir"] == "/usr"
    assert d["caffe_cxx"] == "/usr/bin/g++-11"
    assert d["caffe_cuda_arch"] == ["75", "86"]
    assert d["caffe_cudnn"] is True
    # Explicit host data wins over the plan.
    mine = lib.from_plan({**DATA, "caffe_cpu_only": True, "caffe_cxx": "g++"}, plan)
    assert mine["caffe_cpu_only"] is True and mine["caffe_cxx"] == "g++"
    cpu = lib.from_plan(dict(DATA), NS(**{**vars(plan), "cpu_only": True, "cuda": None}))
    assert cpu["caffe_cpu_only"] is True and cpu["caffe_cxx"] == ""
