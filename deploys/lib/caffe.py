"""Pure logic of the Caffe / Caffe-SSD build: settings, Makefile.config, patches, build key.

Nothing here touches pyinfra state: the deploy (``deploys/caffe.py``) gathers host facts
(``facts.caffe.CaffeBuildInputs``) and host data, and these functions turn them into the
rendered ``Makefile.config``, the apt package list and the build key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "files/templates/caffe-Makefile.config.j2"
PATCH_DIR = REPO / "files/patches/caffe-ssd"

BLAS_CHOICES = ("open", "atlas", "mkl")

# Build dependencies by apt name (Debian 11-13, Ubuntu 22.04/24.04): the seed's `apt build-dep
# caffe-cuda` no longer exists, so they are listed explicitly. OpenCV is named module by
# module (libopencv-dev pulls in every contrib module). Boost comes from the Boost deploy
# (dlrig's build in the plan's boost prefix, or the distribution's -dev packages).
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
]
APT_BLAS = {"open": ["libopenblas-dev"], "atlas": ["libatlas-base-dev"], "mkl": []}
# What `import caffe` needs (caffe/io.py imports skimage, net_spec.py protobuf and six):
# from apt for the distribution's own interpreter, from pip for a venv or another Python.
APT_PYTHON = ["python3-dev", "python3-numpy", "python3-protobuf", "python3-six", "python3-skimage"]
PIP_PYTHON = ["numpy", "protobuf", "six", "scikit-image"]


def apt_packages(blas: str, apt_python: bool) -> list[str]:
    """Every apt package the build needs.

    + blas: ``open``, ``atlas`` or ``mkl``
    + apt_python: pycaffe's Python modules come from apt (the distribution's interpreter,
      no venv); else from pip, and only python3-dev's headers come from apt
    """
    return list(APT_BUILD_DEPS) + APT_BLAS[blas] + (APT_PYTHON if apt_python else ["python3-dev"])


@dataclass
class Settings:
    """Everything the Makefile.config and the build key are made from."""

    cpu_only: bool
    cxx: str
    blas: str
    cuda_dir: str
    cuda_arch: str
    nvcc_flags: str
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


def resolve(plan: Any, blas: str, inputs: dict[str, Any], build_dir: str, stage: str) -> Settings:
    """Turn the preflight plan and the gathered build inputs into build settings.

    + plan: ``deploys.lib.plan.Plan``: CPU_ONLY or CUDA, compiler, CUDA root, arches, cuDNN
      root, the interpreter, Boost's prefix
    + blas: ``caffe_blas``
    + inputs: ``facts.caffe.CaffeBuildInputs`` (compiler, nvcc, Python + NumPy, multiarch)
    + build_dir: where objects go (outside the source tree)
    + stage: where ``make distribute`` writes before the result replaces the prefix
    """
    cpu_only = bool(plan.cpu_only)
    if not cpu_only and not inputs.get("nvcc"):
        raise ValueError(f"the plan builds CUDA code but there is no nvcc in {plan.cuda.path}")
    cudnn = bool(plan.cudnn and plan.cudnn.usable and not cpu_only)
    py = inputs.get("python") or {}
    version = py.get("version") or plan.python.version
    version = ".".join(str(version).split(".")[:2])
    multiarch = inputs.get("multiarch") or "x86_64-linux-gnu"
    include = [d for d in (py.get("numpy_include"), py.get("include")) if d]
    extra_include: list[str] = []
    extra_lib: list[str] = []
    if plan.boost.include:  # dlrig's Boost first: its headers and libraries, not /usr's
        extra_include.append(plan.boost.include)
        extra_lib.append(plan.boost.lib)
    extra_include += ["/usr/include/hdf5/serial", "/usr/include/opencv4"]
    extra_lib += [f"/usr/lib/{multiarch}", f"/usr/lib/{multiarch}/hdf5/serial"]
    if cudnn:
        if plan.cudnn.include:
            extra_include.append(plan.cudnn.include)
        if plan.cudnn.lib:
            extra_lib.append(plan.cudnn.lib)
        if plan.cudnn.wheel:
            # The nvidia-cudnn wheels ship libcudnn.so.N only: the build links -lcudnn
            # through a libcudnn.so link made in links_dir(build_dir).
            extra_lib.append(links_dir(build_dir))
    return Settings(
        cpu_only=cpu_only,
        cxx=plan.compiler.cxx,
        blas=blas,
        cuda_dir=plan.cuda.path if plan.cuda else "",
        cuda_arch=" ".join(plan.gencode),
        nvcc_flags=" ".join(plan.compiler.nvcc_flags),
        cudnn=cudnn,
        python=plan.python.target,
        python_version=version,
        python_include=include,
        python_libdir=py.get("libdir") or "/usr/lib",
        boost_python=f"boost_python{version.replace('.', '')}",
        build_dir=build_dir,
        distribute_dir=stage,
        blas_lib=f"/usr/lib/{multiarch}/atlas" if blas == "atlas" else "",
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
