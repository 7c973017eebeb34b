"""e2e: the plan and Caffe's Makefile.config for hosted Colab's layout of today, from the facts'
real commands run on a fixture tree (no hand-written fact answers).

The tree is a Debian 12 root laid out as hosted Colab is (googlecolab/backend-info): a Colab
VM marker, CUDA 12.8 at ``/usr/local/cuda-12.8`` (``/usr/local/cuda`` links to it), cuDNN 9 only
in the ``nvidia-cudnn-cu12`` wheel of the interpreter's site-packages, and dlrig's Boost 1.88
in ``/opt/dlrig/boost``. The interpreter is the root's own Python 3.11, standing in for the
kernel's Python: what matters is that the plan takes the interpreter the stack runs in, not the
distribution's Boost.Python. Preflight and ``CaffeBuildInputs`` run through pyinfra's
``@chroot`` connector against it.

Test doubles, for what cannot exist here: ``nvidia-smi`` (no GPU) prints the captured answers of
a Tesla T4 and driver 570 (``tests/facts/gpu.*`` fixtures); ``nvcc`` prints CUDA 12.8.93's
``--version`` text (the toolkit compiles nothing in this test).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploys.lib import buildkey
from deploys.lib import caffe as lib
from deploys.lib.plan import Plan
from tests.e2e import targets

pytestmark = pytest.mark.e2e

FACTS = Path(__file__).resolve().parents[1] / "facts"
SITE = "/usr/local/lib/python3.11/dist-packages"
CUDNN = f"{SITE}/nvidia/cudnn"

# nvcc 12.8.93 (cuda-nvcc-12-8 12.8.93-1, as googlecolab/backend-info lists for the 2025/2026
# runtimes); the text nvcc 12.8 prints.
NVCC_12_8 = """nvcc: NVIDIA (R) Cuda compiler driver
Copyright (c) 2005-2025 NVIDIA Corporation
Built on Fri_Feb_21_20:23:50_PST_2025
Cuda compilation tools, release 12.8, V12.8.93
Build cuda_12.8.r12.8/compiler.35583870_0
"""

# cuDNN 9.10.2's cudnn_version.h defines (nvidia-cudnn-cu12 9.10.2.21, the torch 2.8+ pin).
CUDNN_VERSION_H = """/* cudnn_version.h (nvidia-cudnn-cu12 9.10.2.21), version defines */
#ifndef CUDNN_VERSION_H_
#define CUDNN_VERSION_H_
#define CUDNN_MAJOR 9
#define CUDNN_MINOR 10
#define CUDNN_PATCHLEVEL 2
#define CUDNN_VERSION (CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 + CUDNN_PATCHLEVEL)
#endif
"""


def _fixture_output(name: str) -> str:
    return "\n".join(json.loads((FACTS / f"{name}.json").read_text())["output"]) + "\n"


def _nvidia_smi_double() -> str:
    """Test double of nvidia-smi: the captured T4 rows for --query-gpu, else the driver header."""
    gpus = _fixture_output("gpu.NvidiaGpus/colab_t4")
    header = "".join(
        line + "\n"
        for line in _fixture_output("gpu.NvidiaDriver/driver_570").splitlines()
        if line.startswith("|")
    )
    return (
        "#!/bin/sh\n# dlrig test double of nvidia-smi (no GPU on this machine)\n"
        'case "$*" in *--query-gpu*) cat <<"EOF"\n'
        + gpus
        + 'EOF\n;; *) cat <<"EOF"\n'
        + header
        + "EOF\n;; esac\n"
    )


def _write(root: Path, path: str, text: str, mode: int = 0o644) -> None:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(text)
    dest.chmod(mode)


def _lay_out_colab(root: Path) -> None:
    _write(root, "/var/colab/hostname", "colab-fixture\n")
    _write(
        root, "/usr/local/cuda-12.8/bin/nvcc", f"#!/bin/sh\ncat <<'EOF'\n{NVCC_12_8}EOF\n", 0o755
    )
    (root / "usr/local/cuda").symlink_to("cuda-12.8")
    _write(root, "/usr/local/bin/nvidia-smi", _nvidia_smi_double(), 0o755)
    _write(root, f"{CUDNN}/include/cudnn_version.h", CUDNN_VERSION_H)
    _write(root, f"{CUDNN}/lib/libcudnn.so.9", "")  # the wheel ships libcudnn.so.N only
    _write(
        root,
        "/opt/dlrig/boost/include/boost/version.hpp",
        '#define BOOST_VERSION 108800\n#define BOOST_LIB_VERSION "1_88"\n',
    )
    _write(
        root,
        "/opt/dlrig/boost/.dlrig-build-key.json",
        buildkey.render("boost", {"version": "1.88.0", "cxx": "g++-12"}),
    )


def test_colab_today_plan_and_makefile_config_from_real_fact_commands(debian_root, tmp_path):
    root = debian_root.root.path
    _lay_out_colab(root)
    plans = tmp_path / "plans"
    run = targets.pyinfra(
        debian_root,
        "deploys.preflight.preflight",
        workdir=tmp_path,
        env={"DLRIG_PLAN_DIR": str(plans)},
    )
    assert run.returncode == 0, run.output[-4000:]
    (plan_file,) = plans.glob("*.json")
    plan = Plan.from_dict(json.loads(plan_file.read_text()))

    # What preflight found in the tree.
    assert plan.python.target == "/usr/bin/python3" and plan.python.venv is None  # hosted
    assert not plan.python.system  # Colab's interpreter: pycaffe's modules come from pip
    assert plan.cuda.path == "/usr/local/cuda-12.8" and plan.cuda.version.startswith("12.8")
    assert plan.cuda_arch == ["7.5"]
    assert plan.cudnn.usable and plan.cudnn.wheel
    assert (plan.cudnn.include, plan.cudnn.lib) == (f"{CUDNN}/include", f"{CUDNN}/lib")
    assert plan.boost.prefix == "/opt/dlrig/boost" and plan.boost.python_lib == "boost_python311"

    # CaffeBuildInputs, asked exactly as the Caffe deploy asks it.
    args = {
        "python": plan.python.target,
        "cxx": plan.compiler.cxx,
        "cuda_dir": plan.cuda.path,
        "cudnn_dir": plan.cudnn.include,
        "boost_prefix": plan.boost.prefix,
    }
    fact_run = targets.pyinfra(
        debian_root,
        "fact",
        args=["facts.caffe.CaffeBuildInputs", *(f"{k}={v}" for k, v in args.items())],
        workdir=tmp_path,
    )
    assert fact_run.returncode == 0, fact_run.output[-4000:]
    out = fact_run.stdout
    (per_host,) = json.loads(out[out.index("{") :]).values()  # {fact (args): {host: value}}
    (inputs,) = per_host.values()
    assert inputs["nvcc"] == "12.8" and inputs["cudnn"] == "9.10.2"
    assert inputs["boost"] == "1_88" and inputs["boost_key"]

    config = lib.render_makefile_config(lib.resolve(plan, "open", inputs, "/b", "/s"))
    assert "PYTHON_LIBRARIES := boost_python311 python3.11" in config
    assert "USE_CUDNN := 1" in config and "CUDA_DIR := /usr/local/cuda-12.8" in config
    include = config.split("INCLUDE_DIRS := ", 1)[1].split("\n", 1)[0].split()
    libs = config.split("LIBRARY_DIRS := ", 1)[1].split("\n", 1)[0].split()
    assert "/opt/dlrig/boost/include" in include and f"{CUDNN}/include" in include
    assert libs[0] == "/opt/dlrig/boost/lib" and f"{CUDNN}/lib" in libs
    assert (
        "CUDA_ARCH := -gencode arch=compute_75,code=sm_75 "
        "-gencode arch=compute_75,code=compute_75" in config
    )
