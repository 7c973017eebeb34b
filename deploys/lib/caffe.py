"""Pure logic of the Caffe / Caffe-SSD build: settings, Makefile.config, patches, build key.

Nothing here touches pyinfra state: the deploy (``deploys/caffe.py``) gathers host facts
(``facts.caffe.CaffeBuildInputs``) and host data, and these functions turn them into the
rendered ``Makefile.config``, the apt package list and the build key.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "files/templates/caffe-Makefile.config.j2"
PATCH_DIR = REPO / "files/patches/caffe-ssd"

BLAS_CHOICES = ("open", "atlas", "mkl")
DEFAULT_CUDA_DIR = "/usr/local/cuda"

# Arches each CUDA major release still compiles for (nvcc rejects the ones below its floor).
# Used only when neither host data nor the resolved plan names arches.
DEFAULT_ARCHES: dict[int, list[str]] = {
    10: ["35", "50", "60", "70", "75"],
    11: ["50", "60", "70", "75", "80", "86"],
    12: ["50", "60", "70", "75", "80", "86", "90"],
    13: ["75", "80", "86", "90"],
}
MIN_ARCH: dict[int, int] = {10: 30, 11: 35, 12: 50, 13: 75}

# Build dependencies by apt name (Debian 12, Ubuntu 22.04/24.04): the seed's `apt build-dep
# caffe-cuda` no longer exists, so they are listed explicitly. OpenCV is named module by
# module (libopencv-dev pulls in every contrib module).
APT_BUILD_DEPS = [
    "build-essential",
    "git",
    "patch",
    "libprotobuf-dev",
    "protobuf-compiler",
    "libgoogle-glog-dev",
    "libgflags-dev",
    "libleveldb-dev",
    "libsnappy-dev",
    "liblmdb-dev",
    "libhdf5-dev",
    "libopencv-core-dev",
    "libopencv-imgproc-dev",
    "libopencv-imgcodecs-dev",
    "libopencv-highgui-dev",
    "libopencv-videoio-dev",
    "libboost-system-dev",
    "libboost-filesystem-dev",
    "libboost-regex-dev",
    "libboost-thread-dev",
    "libboost-python-dev",
]
APT_BLAS = {"open": ["libopenblas-dev"], "atlas": ["libatlas-base-dev"], "mkl": []}
# What `import caffe` needs in the distribution's python3 (caffe/io.py imports skimage).
APT_PYTHON = ["python3-dev", "python3-numpy", "python3-protobuf", "python3-six", "python3-skimage"]

_CXX_PACKAGE = re.compile(r"^(?:/usr/bin/)?(g\+\+|clang\+\+)-(\d+)$")


def cxx_package(cxx: str) -> str | None:
    """The apt package that provides a versioned compiler (``g++-11`` → ``g++-11``)."""
    m = _CXX_PACKAGE.match(cxx)
    if not m:
        return None
    return f"{m.group(1).replace('clang++', 'clang')}-{m.group(2)}"


def apt_packages(blas: str, cxx: str, system_python: bool) -> list[str]:
    """Every apt package the build needs for these settings."""
    pkgs = list(APT_BUILD_DEPS) + APT_BLAS[blas]
    pkg = cxx_package(cxx)
    if pkg:
        pkgs.append(pkg)
    if system_python:
        pkgs += APT_PYTHON
    return pkgs


def gencode(arches: list[str]) -> str:
    """``-gencode`` flags: SASS for each compute capability and PTX of the newest.

    + arches: compute capabilities without the dot, e.g. ``["75", "86"]``

    >>> gencode(["86", "75"])
    '-gencode arch=compute_75,code=sm_75 -gencode arch=compute_86,code=sm_86 \
-gencode arch=compute_86,code=compute_86'
    """
    if not arches:
        raise ValueError("no CUDA arches")
    ordered = sorted({str(a).replace(".", "").removeprefix("sm_") for a in arches}, key=int)
    flags = [f"-gencode arch=compute_{a},code=sm_{a}" for a in ordered]
    flags.append(f"-gencode arch=compute_{ordered[-1]},code=compute_{ordered[-1]}")
    return " ".join(flags)


def cuda_major(version: str | None) -> int | None:
    """``"11.8"`` → 11; None for no toolkit."""
    if not version:
        return None
    return int(version.split(".")[0])


def pick_arches(wanted: list[str], nvcc_version: str | None) -> list[str]:
    """The arches to compile for: ``wanted`` (minus those the toolkit dropped) or a default."""
    major = cuda_major(nvcc_version)
    floor = MIN_ARCH.get(major or 0, 0)
    if wanted:
        arches = [str(a).replace(".", "").removeprefix("sm_") for a in wanted]
        kept = [a for a in arches if int(a) >= floor]
        if not kept:
            raise ValueError(f"CUDA {nvcc_version} supports none of the arches {wanted}")
        return kept
    return DEFAULT_ARCHES.get(major or 12, DEFAULT_ARCHES[12])


@dataclass
class Settings:
    """Everything the Makefile.config and the build key are made from."""

    cpu_only: bool
    cxx: str
    blas: str
    cuda_dir: str
    cuda_arch: str
    cudnn: bool
    python: str
    python_version: str
    python_include: list[str]
    python_libdir: str
    boost_python: str
    build_dir: str
    distribute_dir: str
    blas_include: str = ""
    blas_lib: str = ""
    extra_include: list[str] = field(default_factory=list)
    extra_lib: list[str] = field(default_factory=list)


def links_dir(build_dir: str) -> str:
    """Where the build makes ``lib*.so`` links for libraries shipped without them."""
    return f"{build_dir}.links"


def from_plan(data: dict[str, Any], plan: Any) -> dict[str, Any]:
    """Fill the caffe_* keys left to the plan (null / empty) from a resolved preflight plan.

    + data: the caffe_* host data; explicit values always win
    + plan: ``deploys.lib.compat.Plan`` (cpu_only, cuda.path, compiler.cxx, cuda_arch, cudnn)
    """
    d = dict(data)
    if d["caffe_cpu_only"] is None:
        d["caffe_cpu_only"] = bool(plan.cpu_only)
    if not d["caffe_cuda_dir"] and plan.cuda is not None:
        d["caffe_cuda_dir"] = plan.cuda.path
    if not d["caffe_cpu_only"]:
        if not d["caffe_cxx"]:
            d["caffe_cxx"] = plan.compiler.cxx
        if not d["caffe_cuda_arch"]:
            d["caffe_cuda_arch"] = [str(c).replace(".", "") for c in plan.cuda_arch]
        if d["caffe_cudnn"] is None and plan.cudnn is not None:
            d["caffe_cudnn"] = bool(plan.cudnn.get("usable"))
    return d


def resolve(data: dict[str, Any], inputs: dict[str, Any], build_dir: str, stage: str) -> Settings:
    """Turn host data and gathered facts into build settings.

    + data: the caffe_* host data (or a resolved plan's values under the same names)
    + inputs: ``facts.caffe.CaffeBuildInputs`` (compiler, nvcc, cuDNN, Python, multiarch)
    + build_dir: where objects go (outside the source tree)
    + stage: where ``make distribute`` writes before the result replaces the prefix
    """
    nvcc = inputs.get("nvcc") or None
    cpu_only = data["caffe_cpu_only"]
    if cpu_only is None:
        cpu_only = nvcc is None
    if not cpu_only and nvcc is None:
        raise ValueError(f"caffe_cpu_only is off but there is no nvcc in {data['caffe_cuda_dir']}")
    cudnn = data["caffe_cudnn"]
    if cudnn is None:
        cudnn = bool(inputs.get("cudnn")) and not cpu_only
    py = inputs.get("python") or {}
    version = py.get("version", "3")
    multiarch = inputs.get("multiarch") or "x86_64-linux-gnu"
    include = [d for d in (py.get("numpy_include"), py.get("include")) if d]
    extra_include = ["/usr/include/hdf5/serial", "/usr/include/opencv4"]
    extra_lib = [f"/usr/lib/{multiarch}", f"/usr/lib/{multiarch}/hdf5/serial"]
    if not cpu_only:
        cudnn_dir = data["caffe_cudnn_dir"]
        if cudnn and cudnn_dir:
            extra_include.append(f"{cudnn_dir}/include")
            # The nvidia-cudnn wheels ship libcudnn.so.N only: the build links -lcudnn
            # through a libcudnn.so link made in links_dir(build_dir).
            extra_lib += [f"{cudnn_dir}/lib", links_dir(build_dir)]
    blas = data["caffe_blas"]
    blas_lib = f"/usr/lib/{multiarch}/atlas" if blas == "atlas" else ""
    return Settings(
        cpu_only=bool(cpu_only),
        cxx=data["caffe_cxx"] or "g++",
        blas=blas,
        cuda_dir=data["caffe_cuda_dir"] or DEFAULT_CUDA_DIR,
        cuda_arch="" if cpu_only else gencode(pick_arches(data["caffe_cuda_arch"], nvcc)),
        cudnn=bool(cudnn),
        python=data["caffe_python"],
        python_version=version,
        python_include=include,
        python_libdir=py.get("libdir", "/usr/lib"),
        boost_python=f"boost_python{version.replace('.', '')}",
        build_dir=build_dir,
        distribute_dir=stage,
        blas_lib=blas_lib,
        extra_include=extra_include,
        extra_lib=extra_lib,
    )


def render_makefile_config(settings: Settings) -> str:
    """The ``Makefile.config`` text for these settings (``files/templates/``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE.name).render(**asdict(settings))


def patch_files(directory: Path = PATCH_DIR) -> list[Path]:
    """The patch set, in the order it is applied."""
    return sorted(directory.glob("*.patch"))


def patch_targets(text: str) -> list[str]:
    """Files a unified diff changes (``+++ b/<path>`` lines)."""
    return [line[6:].strip() for line in text.splitlines() if line.startswith("+++ b/")]


def patch_header(text: str) -> str:
    """The text before the first diff: what the patch is for and what fails without it."""
    head = text.split("\ndiff --git ", 1)[0]
    return head.strip()


def patch_set_hash(directory: Path = PATCH_DIR) -> str:
    """sha256 over the patch names and contents, in order."""
    h = hashlib.sha256()
    for path in patch_files(directory):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def build_key(parts: dict[str, Any]) -> str:
    """The build key: sha256 of the canonical JSON of its parts.

    Kept small on purpose: it moves to ``deploys/lib/buildkey.py`` when the Boost deploy lands.
    """
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def key_record(parts: dict[str, Any]) -> str:
    """The build key file's content: the key, then the parts it was made from (for humans)."""
    return json.dumps({"key": build_key(parts), "parts": parts}, sort_keys=True, indent=1) + "\n"
