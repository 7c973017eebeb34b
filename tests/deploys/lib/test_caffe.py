"""Caffe build logic: settings, Makefile.config, arches, build key, and the patch applier."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from deploys.lib import caffe as lib
from deploys.lib import caffe_scripts as scripts
from deploys.lib.compat import HostFacts, Options, resolve
from tests.deploys.lib.test_compat import compilers, debian12, driver, gpu, python, system, toolkit

INPUTS = {
    "os": "debian-12",
    "cxx_version": "12.2.0",
    "multiarch": "x86_64-linux-gnu",
    "nvcc": None,
    "cudnn": None,
    "boost": "1_88",
    "boost_key": "ab" * 32,
    "python": {
        "version": "3.11",
        "include": "/usr/include/python3.11",
        "libdir": "/usr/lib/x86_64-linux-gnu",
        "purelib": "/opt/dlrig/venv/lib/python3.11/site-packages",
        "numpy_include": "/opt/dlrig/venv/lib/python3.11/site-packages/numpy/_core/include",
        "numpy": "2.1.0",
    },
}


def _config(plan, inputs=None) -> str:
    settings = lib.resolve(plan, "open", {**INPUTS, **(inputs or {})}, "/b", "/s")
    return lib.render_makefile_config(settings)


def _line(config: str, name: str) -> list[str]:
    line = next(x for x in config.splitlines() if x.startswith(f"{name} :="))
    return line.split()[2:]


def colab_today() -> HostFacts:
    """Hosted Colab as it is today (googlecolab/backend-info): Ubuntu 22.04, the kernel's
    Python 3.13 in /usr/local (the distribution's Boost.Python is for 3.10), gcc 11.4, CUDA 12.8
    at /usr/local/cuda-12.8, a T4, driver 550, cuDNN 9 only in the pip wheel."""
    site = "/usr/local/lib/python3.13/dist-packages"
    return HostFacts(
        gpus=[gpu("7.5", "Tesla T4")],
        driver=driver("550.54.15", "12.4"),
        toolkits=[toolkit("12.8.93", "/usr/local/cuda-12.8")],
        cudnn={"version": "9.10.2", "where": f"{site}/nvidia/cudnn/include/cudnn_version.h"},
        compilers=compilers(11, default=11),
        python={**python("3.13.9"), "python": "/usr/local/bin/python3"},
        colab={"hosted": True},
        system=system("ubuntu", "22.04"),
    )


def test_cpu_only_server_links_dlrigs_boost_for_the_venv():
    plan = resolve(debian12(), Options())
    config = _config(plan)
    assert "CPU_ONLY := 1" in config
    assert "CUDA_ARCH" not in config
    assert "PYTHON_LIBRARIES := boost_python311 python3.11" in config
    assert f"CUSTOM_CXX := {plan.compiler.cxx}" in config
    assert plan.compiler.cxx == "/usr/bin/g++-12"
    assert plan.python.target == "/opt/dlrig/venv/bin/python"
    # dlrig's Boost comes first for headers and libraries; /usr/include never appears.
    assert _line(config, "INCLUDE_DIRS")[1] == "/opt/dlrig/boost/include"
    assert _line(config, "LIBRARY_DIRS")[0] == "/opt/dlrig/boost/lib"
    assert "/usr/include" not in _line(config, "INCLUDE_DIRS")
    assert "RELEASE_BUILD_DIR := /b" in config and "DISTRIBUTE_DIR := /s" in config


def test_system_boost_searches_no_dlrig_prefix():
    plan = resolve(debian12(), Options(boost_source="system"))
    config = _config(plan)
    assert "/opt/dlrig/boost" not in config
    assert plan.boost.prefix is None


def test_numpy_headers_of_the_interpreter_come_first():
    line = _line(_config(resolve(debian12(), Options())), "PYTHON_INCLUDE")
    assert line == [
        "/opt/dlrig/venv/lib/python3.11/site-packages/numpy/_core/include",
        "/usr/include/python3.11",
    ]


def test_colab_today_links_boost_python313_from_the_prefix_and_wheel_cudnn():
    plan = resolve(colab_today(), Options())
    assert plan.python.target == "/usr/local/bin/python3" and plan.python.venv is None
    assert not plan.python.system
    site = "/usr/local/lib/python3.13/dist-packages/nvidia/cudnn"
    assert plan.cudnn.usable and plan.cudnn.wheel
    assert (plan.cudnn.include, plan.cudnn.lib) == (f"{site}/include", f"{site}/lib")
    inputs = {
        "nvcc": "12.8",
        "cudnn": "9.10.2",
        "cxx_version": "11.4.0",
        "python": {
            "version": "3.13",
            "include": "/usr/local/include/python3.13",
            "libdir": "/usr/local/lib",
            "purelib": "/usr/local/lib/python3.13/dist-packages",
            "numpy_include": "/usr/local/lib/python3.13/dist-packages/numpy/_core/include",
            "numpy": "2.0.2",
        },
    }
    config = _config(plan, inputs)
    assert "PYTHON_LIBRARIES := boost_python313 python3.13" in config
    assert "USE_CUDNN := 1" in config
    assert "CUDA_DIR := /usr/local/cuda-12.8" in config
    assert "CUSTOM_CXX := /usr/bin/g++-11" in config
    assert (
        "CUDA_ARCH := -gencode arch=compute_75,code=sm_75 "
        "-gencode arch=compute_75,code=compute_75" in config
    )
    includes, libs = _line(config, "INCLUDE_DIRS"), _line(config, "LIBRARY_DIRS")
    assert "/opt/dlrig/boost/include" in includes and f"{site}/include" in includes
    assert libs[0] == "/opt/dlrig/boost/lib"
    assert f"{site}/lib" in libs and lib.links_dir("/b") in libs
    assert "NVCCFLAGS" not in config


def test_allow_unsupported_compiler_reaches_nvcc():
    facts = HostFacts(
        gpus=[gpu("8.6")],
        driver=driver("550.54.14", "12.4"),
        toolkits=[toolkit("11.8.89")],
        compilers=compilers(12),
        python=python(),
        system=system(),
    )
    plan = resolve(facts, Options(gcc=12, allow_unsupported_compiler=True))
    config = _config(plan, {"nvcc": "11.8"})
    assert "NVCCFLAGS += -allow-unsupported-compiler" in config
    assert "CUSTOM_CXX := /usr/bin/g++-12" in config


def test_cuda_plan_without_nvcc_is_an_error():
    plan = resolve(colab_today(), Options())
    with pytest.raises(ValueError, match="no nvcc"):
        lib.resolve(plan, "open", INPUTS, "/b", "/s")


def test_apt_packages_have_no_distribution_boost():
    for apt_python in (True, False):
        pkgs = lib.apt_packages("open", apt_python)
        assert not [p for p in pkgs if p.startswith("libboost")]
    assert "python3-numpy" in lib.apt_packages("open", True)
    assert "python3-numpy" not in lib.apt_packages("open", False)


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
        ["sh", "-c", scripts.APPLY_PATCHES, "apply", str(src), *map(str, patches)],
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
    # A dry run reads the inputs before the compiler and NumPy exist: no crash.
    bare = {"cxx_version": None, "multiarch": None, "boost": None, "python": None}
    config = _config(resolve(debian12(), Options()), bare)
    assert "CPU_ONLY := 1" in config
    assert "PYTHON_LIBRARIES := boost_python311 python3.11" in config
