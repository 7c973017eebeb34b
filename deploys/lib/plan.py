"""The plan's shapes: its inputs (host facts, data options) and the resolved ``Plan``.

Pure Python. ``deploys.lib.compat.resolve`` fills a ``Plan`` once per host (preflight); every
component reads it instead of resolving the same fact again. Field meanings are in README
("The plan").
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deploys.lib.versions import normalize_arch, vtuple


class CompatError(ValueError):
    """An impossible combination or a bad override; ``errors`` holds one line per problem."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


@dataclass
class HostFacts:
    """Everything ``resolve`` looks at, in the shapes of the ``facts/`` classes."""

    gpus: list[dict[str, Any]] = field(default_factory=list)  # facts.gpu.NvidiaGpus
    driver: dict[str, Any] | None = None  # facts.gpu.NvidiaDriver
    toolkits: list[dict[str, Any]] = field(default_factory=list)  # facts.cuda.CudaToolkits
    cudnn: dict[str, Any] | None = None  # facts.cuda.Cudnn
    compilers: dict[str, Any] = field(default_factory=dict)  # facts.toolchain.HostCompilers
    python: dict[str, Any] | None = None  # facts.python.PythonEnv
    colab: dict[str, Any] | None = None  # facts.platform.ColabRuntime
    system: dict[str, Any] | None = None  # facts.platform.SystemSummary


_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


@dataclass(frozen=True)
class Options:
    """The host data keys resolution reads (defaults equal the deploys' DEFAULTS)."""

    cpu_only: bool = False  # preflight_cpu_only
    cuda_toolkit: str = ""  # preflight_cuda_toolkit
    cuda_arch: tuple[str, ...] = ()  # preflight_cuda_arch
    require_gpu: bool = True  # preflight_require_gpu
    torch_version: str = ""  # preflight_torch_version
    tensorflow_version: str = ""  # preflight_tensorflow_version
    python: str = "python3"  # preflight_python
    venv: str | None = "auto"  # pip_stack_venv
    gcc: int = 0  # toolchain_gcc
    allow_unsupported_compiler: bool = False  # toolchain_allow_unsupported_compiler
    boost_source: str = "build"  # boost_source
    boost_prefix: str = "/opt/dlrig/boost"  # boost_prefix

    KEYS = {
        "cpu_only": "preflight_cpu_only",
        "cuda_toolkit": "preflight_cuda_toolkit",
        "cuda_arch": "preflight_cuda_arch",
        "require_gpu": "preflight_require_gpu",
        "torch_version": "preflight_torch_version",
        "tensorflow_version": "preflight_tensorflow_version",
        "python": "preflight_python",
        "gcc": "toolchain_gcc",
        "allow_unsupported_compiler": "toolchain_allow_unsupported_compiler",
        "boost_source": "boost_source",
        "boost_prefix": "boost_prefix",
    }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Options:
        """Read and check the values (types are checked by ``deploys.lib.data``)."""
        errors = []
        values: dict[str, Any] = {}
        for attr, key in cls.KEYS.items():
            if key in data and data[key] is not None:
                values[attr] = data[key]
        if "pip_stack_venv" in data:  # None is a value here: the interpreter's own environment
            values["venv"] = data["pip_stack_venv"]
        archs = []
        for item in values.get("cuda_arch", ()) or ():
            try:
                archs.append(normalize_arch(item))
            except ValueError as e:
                errors.append(f"preflight_cuda_arch: {e}")
        values["cuda_arch"] = tuple(sorted(set(archs), key=vtuple))
        gcc = values.get("gcc", 0)
        if isinstance(gcc, bool) or not isinstance(gcc, int) or not (gcc == 0 or 4 <= gcc <= 40):
            errors.append(
                f"toolchain_gcc must be a GCC major version like 11 (0: pick), got {gcc!r}"
            )
        for attr in ("torch_version", "tensorflow_version"):
            value = values.get(attr, "")
            if value and not _VERSION_RE.match(str(value)):
                errors.append(f"{cls.KEYS[attr]} must look like '2.5' or '2.5.1', got {value!r}")
        toolkit = values.get("cuda_toolkit", "")
        if toolkit and not (str(toolkit).startswith("/") or _VERSION_RE.match(str(toolkit))):
            errors.append(
                f"preflight_cuda_toolkit must be a version ('12.4') or an absolute path, "
                f"got {toolkit!r}"
            )
        venv = values.get("venv", "auto")
        if venv not in ("auto", None) and not (isinstance(venv, str) and venv.startswith("/")):
            errors.append(f"pip_stack_venv must be 'auto', null or an absolute path, got {venv!r}")
        if values.get("boost_source", "build") not in ("build", "system"):
            errors.append(
                f"boost_source must be 'build' or 'system', got {values['boost_source']!r}"
            )
        if not str(values.get("python", "python3")).strip():
            errors.append("preflight_python must name an interpreter (a name on PATH or a path)")
        if errors:
            raise CompatError(errors)
        return cls(**values)


# --- the plan ------------------------------------------------------------------------------


@dataclass
class CudaPlan:
    """The CUDA toolkit builds use."""

    version: str  # "12.4.131"
    path: str  # "/usr/local/cuda-12.4", or "/usr" for Debian's nvidia-cuda-toolkit
    nvcc: str  # "/usr/local/cuda-12.4/bin/nvcc"


@dataclass
class CompilerPlan:
    """The host compiler: the GCC that builds Boost, Caffe and, as ``nvcc -ccbin``, CUDA code."""

    gcc_major: int
    cxx: str  # "/usr/bin/g++-11"
    packages: list[str]  # ["gcc-11", "g++-11"]: what the toolchain deploy installs
    installed: bool  # both were present when preflight ran
    nvcc_accepts: bool | None  # None: no CUDA (nothing to check against)
    nvcc_gcc_range: list[int] | None  # [min, max] nvcc accepts
    nvcc_flags: list[str]  # extra nvcc flags for this compiler (-allow-unsupported-compiler)


@dataclass
class PythonPlan:
    """The interpreter the user's code runs in, and the one it is made from."""

    base: str  # the interpreter found (a controller venv on @local is seen through)
    version: str  # "3.11.2"
    venv: str | None  # "/opt/dlrig/venv"; None: base's own environment (hosted Colab)
    target: str  # "<venv>/bin/python", or base: Boost.Python, pycaffe, the stack, the check
    system: bool  # base is the distribution's (/usr/bin, not hosted Colab): apt python3-* serve it


@dataclass
class BoostPlan:
    """The Boost that Caffe compiles and links against."""

    source: str  # "build" (dlrig's, in prefix) or "system" (the distribution's -dev packages)
    prefix: str | None  # "/opt/dlrig/boost"; None for system
    include: str | None  # "<prefix>/include"; None: the compiler's default (/usr/include)
    lib: str | None  # "<prefix>/lib"; None: the linker's default
    python_lib: str  # "boost_python311": Boost.Python for the target interpreter


@dataclass
class CudnnPlan:
    """cuDNN as found on the host (system, toolkit or the nvidia-cudnn wheel)."""

    version: str  # "9.10.2"
    where: str  # the header it was read from
    usable: bool  # its major runs with the plan's CUDA (and a CUDA build happens)
    include: str | None  # extra include dir (None: the compiler's default)
    lib: str | None  # extra library dir (None: the linker's default)
    wheel: bool  # the pip wheel's layout: libcudnn.so.N only, no libcudnn.so link


@dataclass
class TorchPlan:
    version: str  # the release the variant is for ("2.9")
    variant: str  # "cu128" or "cpu"
    index_url: str  # https://download.pytorch.org/whl/cu128
    cuda: str | None  # "12.8"


@dataclass
class TensorflowPlan:
    version: str  # "2.20"
    spec: str  # "tensorflow[and-cuda]==2.20.*" or "tensorflow==2.20.*"
    gpu: bool  # the GPU will be used
    cuda: str  # what the release was built with
    cudnn: str


@dataclass
class Plan:
    """One host's resolved plan. ``to_dict()`` / ``to_json()`` give the stable serialised form."""

    cpu_only: bool
    cuda: CudaPlan | None
    compiler: CompilerPlan
    cuda_arch: list[str]  # ["7.5", "8.6"]
    gencode: list[str]  # ["-gencode arch=compute_75,code=sm_75", ..., PTX for the newest]
    cudnn: CudnnPlan | None
    torch: TorchPlan
    tensorflow: TensorflowPlan
    python: PythonPlan | None
    boost: BoostPlan
    gpus: list[str]  # ["0: NVIDIA H100 80GB HBM3 (sm_90)"]
    driver: str | None  # "550.54.14 (CUDA ≤ 12.4)"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Plan:
        d = dict(d)
        d["cuda"] = CudaPlan(**d["cuda"]) if d.get("cuda") else None
        d["compiler"] = CompilerPlan(**d["compiler"])
        d["cudnn"] = CudnnPlan(**d["cudnn"]) if d.get("cudnn") else None
        d["python"] = PythonPlan(**d["python"]) if d.get("python") else None
        d["boost"] = BoostPlan(**d["boost"])
        d["torch"] = TorchPlan(**d["torch"])
        d["tensorflow"] = TensorflowPlan(**d["tensorflow"])
        return cls(**d)

    def summary(self) -> str:
        """A few readable lines (preflight prints them)."""
        c = self.compiler
        lines = [
            "mode: " + ("CPU_ONLY" if self.cpu_only else "CUDA"),
            "cuda: "
            + (f"{self.cuda.version} at {self.cuda.path}" if self.cuda else "none")
            + (f"; arch {', '.join(self.cuda_arch) or 'nvcc default'}" if self.cuda else ""),
            f"host compiler: gcc-{c.gcc_major} ({c.cxx}"
            + ("" if c.installed else ", to install")
            + (
                f"; nvcc accepts gcc {c.nvcc_gcc_range[0]}-{c.nvcc_gcc_range[1]}"
                if c.nvcc_gcc_range
                else ""
            )
            + ")",
            f"gpus: {'; '.join(self.gpus) or 'none'}; driver: {self.driver or 'none'}",
            "cudnn: "
            + (
                f"{self.cudnn.version} ({'usable' if self.cudnn.usable else 'not usable'}; "
                f"{self.cudnn.where})"
                if self.cudnn
                else "none"
            ),
            f"torch {self.torch.version}: {self.torch.variant} ({self.torch.index_url})",
            f"tensorflow: {self.tensorflow.spec}",
            "python: "
            + (
                f"{self.python.target} {self.python.version}"
                + (f" (venv of {self.python.base})" if self.python.venv else "")
                if self.python
                else "none"
            ),
            "boost: "
            + (
                f"built into {self.boost.prefix} ({self.boost.python_lib})"
                if self.boost.source == "build"
                else f"the distribution's ({self.boost.python_lib})"
            ),
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)
