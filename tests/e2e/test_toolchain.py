"""e2e: preflight and the toolchain deploy on a Debian 12 root.

+ a requested gcc-11 is installed next to gcc-12; the second run changes nothing; ``gcc`` stays
  gcc-12 unless ``toolchain_make_default`` is set
+ with this machine's CUDA 13.0 toolkit bind-mounted, preflight resolves a compiler nvcc accepts
  and a tiny ``.cu`` compiles and links with ``nvcc -ccbin`` (skipped without the toolkit)
+ bad data and impossible combinations fail in preflight with the root's packages unchanged
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e import targets

pytestmark = pytest.mark.e2e

CUDA = "/usr/local/cuda-13.0"
APT_CACHE = targets.CACHE / "toolchain" / "apt-archives"

KERNEL = """\
#include <cstdio>
__global__ void add(int *x) { x[threadIdx.x] += 1; }
int main() {
  int *d = nullptr;
  cudaError_t e = cudaMalloc(&d, 4 * sizeof(int));
  std::printf("built: %s\\n", cudaGetErrorName(e));
  add<<<1, 4>>>(d);
  return 0;
}
"""


def _share_apt_cache(root: targets.Root) -> None:
    # Reuse downloaded .debs between tests and runs (the archive is the slow part).
    (APT_CACHE / "partial").mkdir(parents=True, exist_ok=True)
    root.bind(str(APT_CACHE), "/var/cache/apt/archives", read_only=False)
    # Debian's docker-style clean hook is absent in debootstrap roots; keep debs anyway.
    (root.path / "etc/apt/apt.conf.d/99dlrig-test-keep-debs").write_text(
        'Binary::apt::APT::Keep-Downloaded-Packages "true";\n'
    )


def _plan(plan_dir: Path) -> dict:
    files = list(plan_dir.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


HAS_CUDA = Path(CUDA, "bin/nvcc").exists()


def _nvcc(root: targets.Root, flags: list[str], arch_flags: list[str], out: str) -> None:
    argv = [f"{CUDA}/bin/nvcc", *flags, *arch_flags, "-o", out, "/tmp/t.cu"]
    result = root.run(" ".join(argv), check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (root.path / out.lstrip("/")).exists()


def test_toolchain_gcc11_next_to_gcc12_and_cuda(debian_root, converge, run_pyinfra, tmp_path):
    """One root (installs are the slow part): preflight's pick for the bind-mounted CUDA 13.0
    toolkit (when present), then the toolchain deploy with a requested gcc-11."""
    root = debian_root.root
    host = debian_root.testinfra()
    _share_apt_cache(root)
    plan = None
    if HAS_CUDA:
        root.bind(CUDA, CUDA)
        cuda_data = {"preflight_require_gpu": False, "preflight_cuda_arch": ["9.0"]}
        plan_dir = tmp_path / "plans"
        run = run_pyinfra(
            debian_root,
            "deploys.preflight.preflight",
            cuda_data,
            env={"DLRIG_PLAN_DIR": str(plan_dir)},
        )
        assert run.returncode == 0, run.output[-4000:]
        assert "preflight: mode: CUDA" in run.output
        plan = _plan(plan_dir)
        assert plan["cuda"]["path"] == CUDA and plan["cuda"]["version"].startswith("13.0")
        compiler = plan["compiler"]
        lo, hi = compiler["nvcc_gcc_range"]
        assert compiler["nvcc_accepts"] and lo <= compiler["gcc_major"] <= hi
        assert compiler["nvcc_flags"] == []  # nothing beyond -ccbin <cxx> for a supported gcc
        assert plan["gencode"] == [
            "-gencode arch=compute_90,code=sm_90",
            "-gencode arch=compute_90,code=compute_90",
        ]
        assert root.run("command -v gcc", check=False).returncode != 0  # preflight installs nothing

    first, _ = converge(debian_root, "deploys.toolchain.toolchain", {"toolchain_gcc": 11})

    assert any("gcc-11" in name for name in first.changed)
    assert host.package("gcc-11").is_installed and host.package("g++-11").is_installed
    assert host.package("ccache").is_installed and host.package("build-essential").is_installed
    assert host.check_output("gcc -dumpversion") == "12"
    assert host.check_output("g++ -dumpversion") == "12"
    assert host.check_output("gcc-11 -dumpversion") == "11"
    query = host.check_output("update-alternatives --query gcc")
    assert "Alternative: /usr/bin/gcc-11" in query and "Alternative: /usr/bin/gcc-12" in query
    assert "Value: /usr/bin/gcc-12" in query

    if plan is not None:
        # The compiler preflight picked (now installed) builds and links a kernel with nvcc.
        (root.path / "tmp/t.cu").write_text(KERNEL)
        # As Caffe's Makefile passes them: -ccbin=$(CUSTOM_CXX), NVCCFLAGS, CUDA_ARCH.
        arch = [part for g in plan["gencode"] for part in g.split(" ", 1)]
        ccbin = ["-ccbin", plan["compiler"]["cxx"], *plan["compiler"]["nvcc_flags"]]
        _nvcc(root, ccbin, arch, "/tmp/t")
        _nvcc(root, ["-ccbin", "/usr/bin/g++-11"], arch, "/tmp/t11")

    # Asked for: gcc-11 becomes what gcc and g++ run; again idempotent.
    converge(
        debian_root,
        "deploys.toolchain.toolchain",
        {"toolchain_gcc": 11, "toolchain_make_default": True},
    )
    assert host.check_output("gcc -dumpversion") == "11"
    assert host.check_output("g++ -dumpversion") == "11"


def test_bad_data_and_impossible_combinations_change_nothing(debian_root, run_pyinfra):
    root = debian_root.root
    before = root.packages()
    cases = [
        ({"toolchain_gc": 11}, "did you mean 'toolchain_gcc'"),
        ({"toolchain_gcc": "11"}, "'toolchain_gcc' must be int"),
        ({"preflight_cuda_arch": ["ampere"]}, "preflight_cuda_arch"),
        ({"toolchain_gcc": 9}, "toolchain_gcc 9: gcc-9 is not installed and debian 12"),
        # another deploy's key, misspelt: preflight checks every dlrig key up front
        ({"ldconfig_entry": {}}, "did you mean 'ldconfig_entries'"),
    ]
    if HAS_CUDA:
        root.bind(CUDA, CUDA)
        cases += [
            # CUDA 13.0 dropped Pascal
            ({"preflight_cuda_arch": ["6.1"]}, "sm_61 needs CUDA 8.0-12.9"),
        ]
    for data, message in cases:
        run = run_pyinfra(debian_root, "deploys.toolchain.toolchain", data)
        assert run.returncode != 0, (data, run.output[-3000:])
        assert message in run.output, (data, run.output[-3000:])
        assert root.packages() == before, data
    assert not (root.path / "usr/bin/gcc-11").exists()
