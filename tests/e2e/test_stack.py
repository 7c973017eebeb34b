"""e2e: the assembled stack, as the server profile runs it: one plan from Boost to the verdict.

A Debian 12 root over SSH as the sudo user ``dlrig`` runs ``deploys/gpu_server.py`` with every
default component: the pip stack in ``/opt/dlrig/venv`` (CPU: tensorflow-cpu, Keras, the local
CPU torch wheel), Boost 1.88 built from source with the plan's compiler and the venv's Python,
Caffe from the real SSD fork (``../shared/fixtures/``, the pinned ``weiliu89/caffe`` commit)
built against that Boost, and the speed check. Converged twice (the second run changes
nothing: a fresh host converges in one run). Then the Caffe prefix is removed and the next run
brings it back (restored from the build cache the first run published).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from deploys.caffe import PATCH_REMOTE_DIR, PTH_NAME
from deploys.lib.caffe import REPO, patch_files
from tests.e2e import boost_source, caffe_source, targets
from tests.e2e.test_caffe import CACHE_IN_ROOT, REMOTE_REPO, _with_apt_cache
from tests.e2e.test_pip_stack import (
    _LEAKY_ENV,
    PIP_CACHE,
    ROOT_CACHE,
    ROOT_WHEELS,
    VENV,
    WHEELS,
    _data,
)

pytestmark = [pytest.mark.e2e, pytest.mark.build]

BOOST = "/opt/dlrig/boost"
CAFFE = "/opt/dlrig/caffe"


def _needed(host, path: str) -> dict[str, str]:
    """``ldd`` of a library: soname -> where it resolves (every one must resolve)."""
    out = host.check_output(f"ldd {path}")
    resolved = {}
    for line in out.splitlines():
        if "=>" in line:
            name, _, where = line.strip().partition(" => ")
            assert "not found" not in where, f"{path}: {line}"
            resolved[name] = where.split(" (")[0]
    return resolved


@pytest.fixture
def stack_root(debian_root, monkeypatch):
    """A Debian 12 root with the pip wheelhouse and the local CPU torch wheel bound in, and
    /opt/dlrig on a tmpfs (venv, Boost, Caffe source and objects: many small files)."""
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    debian_root.root.bind(str(PIP_CACHE), ROOT_CACHE, read_only=False)
    debian_root.root.bind(str(WHEELS), ROOT_WHEELS)
    opt = debian_root.root.path / "opt/dlrig"
    opt.mkdir(parents=True)
    targets.sh(["mount", "-t", "tmpfs", "-o", "size=12g,mode=755", "tmpfs", str(opt)])
    return debian_root


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One build cache for this module's hosts: what the server run publishes, the next host
    restores (as a fleet or the next Colab VM would)."""
    return tmp_path_factory.mktemp("build-cache")


def _prepare(target: targets.Target, cache: Path, results: Path) -> dict:
    """Bind the source fixture, APT cache and build cache into the root; return the run's data."""
    assert any(WHEELS.glob("torch-*+cpu-cp311-*.whl")), f"no CPU torch wheel in {WHEELS}"
    _with_apt_cache(target)
    target.root.bind(str(caffe_source.ssd_fixture_repo()), REMOTE_REPO)
    target.root.bind(str(cache), CACHE_IN_ROOT, read_only=False)
    archive = boost_source.source_archive()
    return {
        **_data(),
        "boost_sha256": boost_source.sha256(archive),
        "caffe_repo": f"file://{REMOTE_REPO}",
        "build_cache_dir": CACHE_IN_ROOT,
        "speed_check_repeats": 2,
        "speed_check_results_dir": str(results),
    }


def test_server_profile_assembled_stack(stack_root, converge, tmp_path, shared_cache):
    root = stack_root.root
    results = tmp_path / "results"
    data = _prepare(stack_root, shared_cache, results)
    archive = boost_source.source_archive()
    with (
        targets.serve_directory(archive.parent) as base,
        targets.ssh_target(root, tmp_path) as server,
    ):
        data["boost_url"] = f"{base}/{archive.name}"
        first, _ = converge(server, "deploys/gpu_server.py", data)
        host = stack_root.testinfra()

        # One plan: the venv's interpreter, dlrig's Boost, the plan's compiler.
        assert f"python: {VENV}/bin/python 3.11" in first.output
        assert f"boost: built into {BOOST} (boost_python311)" in first.output
        # The real fork: every patch applies (none is skipped as SSD-only).
        for patch in patch_files():
            host.run_expect(
                [0],
                f"cd /opt/dlrig/src/caffe && git apply --check -R {PATCH_REMOTE_DIR}/{patch.name}",
            )
        config = host.file("/opt/dlrig/src/caffe/Makefile.config").content_string
        assert "CUSTOM_CXX := /usr/bin/g++-12" in config
        assert "PYTHON_LIBRARIES := boost_python311 python3.11" in config

        # Caffe links dlrig's Boost, nothing from /usr/lib; no libboost-*-dev is installed.
        for lib in (f"{CAFFE}/lib/libcaffe.so", f"{CAFFE}/python/caffe/_caffe.so"):
            boost_libs = {k: v for k, v in _needed(host, lib).items() if "libboost" in k}
            assert boost_libs, f"{lib} links no Boost"
            for name, where in boost_libs.items():
                assert where.startswith(f"{BOOST}/lib/"), f"{lib}: {name} => {where}"
        assert "boost_python311" in " ".join(_needed(host, f"{CAFFE}/python/caffe/_caffe.so"))
        dev = host.run("dpkg-query -W -f '${Package} ${Status}\\n' 'libboost*-dev'").stdout
        assert " installed" not in dev, dev

        # pycaffe imports in the plan's interpreter (the venv), through the .pth file.
        purelib = host.check_output(
            f"{VENV}/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])'"
        )
        assert host.file(f"{purelib}/{PTH_NAME}").content_string == f"{CAFFE}/python\n"
        where = host.check_output(
            f"cd / && {VENV}/bin/python -c 'import caffe; print(caffe.__file__)'"
        )
        assert where == f"{CAFFE}/python/caffe/__init__.py"

        # The fork's own layers run: a small SSD-style net's DetectionOutput, in the venv.
        for name in ("tiny-ssd.prototxt", "forward_check.py"):
            shutil.copy(REPO / "files/caffe" / name, root.path / "tmp" / name)
        out = host.check_output(
            f"cd / && {VENV}/bin/python /tmp/forward_check.py /tmp/tiny-ssd.prototxt"
        )
        forward = json.loads(out.splitlines()[-1])
        assert "DetectionOutput" in forward["layers"] and forward["finite"]
        assert forward["outputs"] == {"detection_out": [1, 1, 10, 7]}

        # Caffe's key includes Boost's; both are recorded inside their prefixes.
        boost_key = json.loads(host.file(f"{BOOST}/.dlrig-build-key.json").content_string)
        caffe_key = json.loads(host.file(f"{CAFFE}/.dlrig-build-key.json").content_string)
        assert caffe_key["parts"]["boost_build"] == boost_key["build_key"]

        # The verdict of this run, fetched back, has TensorFlow, PyTorch and Caffe figures.
        (fetched,) = results.glob("*/verdict.json")
        verdict = json.loads(fetched.read_text())
        assert verdict["ok"] is True, verdict
        for framework in ("tensorflow", "torch"):
            assert verdict["figures"][framework]["cpu_gflops"] > 0, verdict
        assert verdict["figures"]["caffe"], verdict
        assert "FAILED" not in first.output

        # A damaged install comes back: the Caffe prefix removed, a Boost library deleted (the
        # recorded keys alone would say "built"). Both are restored from the cache this run
        # published; the same Boost key leaves Caffe's key as it was.
        host.run_expect([0], f"rm -rf {CAFFE} {BOOST}/lib/libboost_filesystem.so*")
        again, _ = converge(server, "deploys/gpu_server.py", data)
        changed = " ".join(again.changed)
        assert "Build Boost 1.88.0" in changed, changed
        assert "Build and install Caffe (when the build key changed)" in changed, changed
        assert host.file(f"{BOOST}/lib/libboost_filesystem.so").exists
        assert host.file(f"{CAFFE}/lib/libcaffe.so").exists
        again_key = json.loads(host.file(f"{CAFFE}/.dlrig-build-key.json").content_string)
        assert again_key["key"] == caffe_key["key"]
        imported = host.check_output(
            f"cd / && {VENV}/bin/python -c 'import caffe; print(caffe.__name__)'"
        )
        assert imported == "caffe"


def test_colab_profile_fresh_root_converges_in_one_run(
    stack_root, converge, tmp_path, shared_cache
):
    """The colab entry deploy on a root as bare as a new VM: the first run converges (Boost and
    Caffe restored from the cache the server run published, keyed on this host's own plan), the
    second changes nothing: no Boost rebuild because NumPy arrived after it."""
    results = tmp_path / "results"
    data = _prepare(stack_root, shared_cache, results)
    archive = boost_source.source_archive()
    with targets.serve_directory(archive.parent) as base:
        data["boost_url"] = f"{base}/{archive.name}"
        first, _ = converge(stack_root, "deploys/colab.py", data)
    changed = " ".join(first.changed)
    assert "Build Boost 1.88.0" in changed and "Build and install Caffe" in changed
    host = stack_root.testinfra()
    assert (
        host.check_output(f"cd / && {VENV}/bin/python -c 'import caffe, numpy, tensorflow'") == ""
    )
    (fetched,) = results.glob("*/verdict.json")
    assert json.loads(fetched.read_text())["ok"] is True
