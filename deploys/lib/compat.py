"""Compatibility resolution: facts about a host + its data → one resolved plan, or a clear error.

Pure Python (no pyinfra): ``resolve(HostFacts, Options)`` reads the rules in
``files/compat.yml`` and returns a ``Plan`` (a JSON-serialisable dataclass) that the builds and
the pip stack follow: CPU_ONLY or CUDA, the CUDA toolkit, the host compiler nvcc accepts and how
to pass it, the ``-gencode`` list for the GPUs found, whether cuDNN is usable, and the PyTorch /
TensorFlow wheel variants. A conflict raises ``CompatError`` whose message names the data key
that overrides it.

Inputs are the fact shapes of ``facts/`` (see FACT_SHAPES in the facts modules): plain dicts,
so tests build them by hand.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

RULES_FILE = Path(__file__).resolve().parents[2] / "files" / "compat.yml"

Version = tuple[int, ...]


class CompatError(ValueError):
    """An impossible combination or a bad override; ``errors`` holds one line per problem."""

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


# --- versions ------------------------------------------------------------------------------


def vtuple(version: str | int | float) -> Version:
    """``"12.4.131"`` → ``(12, 4, 131)``; non-numeric tails (``"12.2.0-14"``) are cut off."""
    parts = []
    for piece in str(version).strip().split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
        if m.group() != piece:
            break
    if not parts:
        raise ValueError(f"not a version: {version!r}")
    return tuple(parts)


def major_minor(version: str) -> Version:
    """``"12.4.131"`` → ``(12, 4)``."""
    t = vtuple(version)
    return (t[0], t[1] if len(t) > 1 else 0)


def vstr(version: Version) -> str:
    return ".".join(str(p) for p in version)


def normalize_arch(value: str | int | float) -> str:
    """``"8.6"``, ``86``, ``"sm_86"``, ``"compute_86"`` → ``"8.6"``; ``"100"`` → ``"10.0"``."""
    text = str(value).strip().lower().removeprefix("sm_").removeprefix("compute_")
    if re.fullmatch(r"\d+\.\d", text):
        return text
    if re.fullmatch(r"\d{2,3}", text):
        return f"{text[:-1]}.{text[-1]}"
    raise ValueError(f"not a compute capability: {value!r} (write it like '8.6' or 'sm_86')")


def arch_digits(cc: str) -> str:
    """``"8.6"`` → ``"86"``."""
    return cc.replace(".", "")


# --- rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """The parsed ``files/compat.yml``."""

    raw: dict[str, Any]

    @property
    def nvcc_host_gcc(self) -> list[dict[str, Any]]:
        return self.raw["nvcc_host_gcc"]

    @property
    def gpu_arch(self) -> dict[str, dict[str, Any]]:
        return {row["cc"]: row for row in self.raw["gpu_arch"]}

    @property
    def min_driver(self) -> list[dict[str, str]]:
        return self.raw["driver_cuda"]["min_driver"]

    @property
    def minor_version_compat(self) -> dict[str, str]:
        return self.raw["driver_cuda"]["minor_version_compat"]["majors"]

    @property
    def cudnn_majors(self) -> dict[str, list[str]]:
        return self.raw["cudnn"]["majors"]

    @property
    def torch(self) -> dict[str, Any]:
        return self.raw["torch"]

    @property
    def tensorflow(self) -> dict[str, Any]:
        return self.raw["tensorflow"]

    @property
    def distro_gcc(self) -> list[dict[str, Any]]:
        return self.raw["distro_gcc"]


@cache
def load_rules(path: Path = RULES_FILE) -> Rules:
    """Parse the rules file once."""
    return Rules(yaml.safe_load(path.read_text()))


def _row_for(rows: list[dict[str, Any]], version: str, key: str = "from") -> dict[str, Any] | None:
    """The last row whose ``key`` version is ≤ ``version`` (rows sorted ascending)."""
    found = None
    for row in rows:
        if vtuple(row[key]) <= vtuple(version):
            found = row
    return found


def nvcc_gcc_range(rules: Rules, cuda_version: str) -> tuple[int, int, dict[str, Any]] | None:
    """GCC majors nvcc ``cuda_version`` accepts: ``(min, max, rule)``, or None if unknown."""
    row = _row_for(rules.nvcc_host_gcc, cuda_version)
    if row is None:
        return None
    return row["gcc_min"], row["gcc_max"], row


def arch_supported(rules: Rules, cc: str, cuda_version: str) -> bool | None:
    """Whether toolkit ``cuda_version`` can generate SASS for ``cc``; None if ``cc`` is unknown."""
    row = rules.gpu_arch.get(cc)
    if row is None:
        return None
    mm = major_minor(cuda_version)
    if mm < major_minor(row["cuda_min"]):
        return False
    return not ("cuda_max" in row and mm > major_minor(row["cuda_max"]))


def arch_range_text(rules: Rules, cc: str) -> str:
    row = rules.gpu_arch[cc]
    if "cuda_max" in row:
        return f"CUDA {row['cuda_min']}-{row['cuda_max']}"
    return f"CUDA ≥ {row['cuda_min']}"


def driver_min_for(rules: Rules, cuda_version: str) -> str | None:
    """The driver a toolkit needs at full compatibility (None when older than the table)."""
    row = _row_for(rules.min_driver, vstr(major_minor(cuda_version)), key="cuda")
    return row["driver"] if row else None


def driver_max_cuda(rules: Rules, driver_version: str) -> str | None:
    """Newest CUDA major.minor that ``driver_version`` runs at full compatibility."""
    best = None
    for row in rules.min_driver:
        if vtuple(row["driver"]) <= vtuple(driver_version):
            best = row["cuda"]
    return best


def driver_runs(rules: Rules, driver: Mapping[str, Any], cuda_version: str) -> tuple[bool, str]:
    """Whether the driver runs code built with ``cuda_version``: ``(ok, how)``.

    ``how`` is ``"full"`` (the driver's CUDA version is at least the toolkit's), ``"minor"``
    (same major, driver new enough for CUDA minor version compatibility) or why not.
    """
    userspace = driver.get("userspace_version")
    max_cuda = driver.get("max_cuda_version") or (
        driver_max_cuda(rules, userspace) if userspace else None
    )
    if max_cuda and major_minor(cuda_version) <= major_minor(max_cuda):
        return True, "full"
    major = str(major_minor(cuda_version)[0])
    floor = rules.minor_version_compat.get(major)
    if userspace and floor and vtuple(userspace) >= vtuple(floor):
        return True, "minor"
    return False, f"driver {userspace or '?'} runs CUDA ≤ {max_cuda or '?'}"


# --- inputs --------------------------------------------------------------------------------


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
    gcc: int = 0  # toolchain_gcc
    allow_unsupported_compiler: bool = False  # toolchain_allow_unsupported_compiler

    KEYS = {
        "cpu_only": "preflight_cpu_only",
        "cuda_toolkit": "preflight_cuda_toolkit",
        "cuda_arch": "preflight_cuda_arch",
        "require_gpu": "preflight_require_gpu",
        "torch_version": "preflight_torch_version",
        "tensorflow_version": "preflight_tensorflow_version",
        "gcc": "toolchain_gcc",
        "allow_unsupported_compiler": "toolchain_allow_unsupported_compiler",
    }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Options:
        """Read and check the values (types are checked by ``deploys.lib.data``)."""
        errors = []
        values: dict[str, Any] = {}
        for attr, key in cls.KEYS.items():
            if key in data and data[key] is not None:
                values[attr] = data[key]
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
    """The host compiler: which GCC, and every way a build is told to use it."""

    gcc_major: int
    cc: str  # "/usr/bin/gcc-11"
    cxx: str  # "/usr/bin/g++-11"
    packages: list[str]  # ["gcc-11", "g++-11"]: what the toolchain deploy installs
    installed: bool  # both were present when preflight ran
    nvcc_accepts: bool | None  # None: no CUDA (nothing to check against)
    nvcc_gcc_range: list[int] | None  # [min, max] nvcc accepts
    nvcc_flags: list[str]  # ["-ccbin", "/usr/bin/g++-11"] (+ -allow-unsupported-compiler)
    env: dict[str, str]  # CC, CXX, CUDAHOSTCXX (CMake), NVCC_CCBIN
    b2_toolset: str  # "gcc-11": Boost's b2 toolset=gcc-11 ...
    b2_user_config: str  # ... with this line in user-config.jam


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
    nvcc_arch_flags: list[str]  # the same as argv items: ["-gencode", "arch=...", ...]
    cmake_cuda_architectures: str  # "75-real;86" (CMAKE_CUDA_ARCHITECTURES)
    torch_cuda_arch_list: str  # "7.5;8.6+PTX" (TORCH_CUDA_ARCH_LIST)
    cudnn: dict[str, Any] | None  # {version, where, usable}
    torch: TorchPlan
    tensorflow: TensorflowPlan
    python: dict[str, Any] | None  # {path, version}
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
                f"{self.cudnn['version']} ({'usable' if self.cudnn['usable'] else 'not usable'})"
                if self.cudnn
                else "none"
            ),
            f"torch {self.torch.version}: {self.torch.variant} ({self.torch.index_url})",
            f"tensorflow: {self.tensorflow.spec}",
            "python: "
            + (f"{self.python['path']} {self.python['version']}" if self.python else "none"),
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# --- resolution ----------------------------------------------------------------------------


def _pick_toolkit(facts: HostFacts, opts: Options, errors: list[str]) -> dict[str, Any] | None:
    toolkits = facts.toolkits or []
    if opts.cuda_toolkit:
        want = str(opts.cuda_toolkit)
        for tk in toolkits:
            if want.startswith("/"):
                if tk["path"].rstrip("/") == want.rstrip("/"):
                    return tk
            elif vtuple(tk["version"])[: len(vtuple(want))] == vtuple(want):
                return tk
        found = ", ".join(f"{t['version']} at {t['path']}" for t in toolkits) or "none"
        errors.append(
            f"preflight_cuda_toolkit {want!r} matches no CUDA toolkit here (found: {found})"
        )
        return None
    if not toolkits:
        return None
    defaults = [t for t in toolkits if t.get("is_default")]
    if defaults:
        return defaults[0]
    return max(toolkits, key=lambda t: vtuple(t["version"]))


def _distro_row(rules: Rules, system: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not system:
        return None
    for row in rules.distro_gcc:
        if row["os"] == system.get("os_id") and str(system.get("os_version", "")).startswith(
            row["version"]
        ):
            return row
    return None


def _installed_majors(compilers: Mapping[str, Any]) -> dict[int, tuple[str, str]]:
    """GCC majors with both gcc-N and g++-N present → (gcc path, g++ path)."""
    gcc = (compilers.get("gcc") or {}).get("installed") or {}
    gxx = (compilers.get("g++") or {}).get("installed") or {}
    return {int(m): (gcc[m], gxx[m]) for m in gcc if m in gxx and str(m).isdigit()}


def _default_major(compilers: Mapping[str, Any]) -> int | None:
    default = (compilers.get("g++") or {}).get("default") or (compilers.get("gcc") or {}).get(
        "default"
    )
    return vtuple(default)[0] if default else None


def _pick_compiler(
    rules: Rules,
    facts: HostFacts,
    opts: Options,
    cuda: CudaPlan | None,
    errors: list[str],
    notes: list[str],
) -> CompilerPlan:
    installed = _installed_majors(facts.compilers or {})
    default = _default_major(facts.compilers or {})
    distro = _distro_row(rules, facts.system)
    offered = sorted(distro["available"]) if distro else []
    os_name = (
        f"{facts.system.get('os_id')} {facts.system.get('os_version')}"
        if facts.system
        else "this OS"
    )
    nvcc_range = nvcc_gcc_range(rules, cuda.version) if cuda else None
    lo, hi = (nvcc_range[0], nvcc_range[1]) if nvcc_range else (0, 999)
    if cuda and nvcc_range is None:
        notes.append(f"no host compiler rule for CUDA {cuda.version}; not checked")
    if cuda and nvcc_range and vtuple(cuda.version) >= vtuple(rules.nvcc_host_gcc[-1]["from"]):
        last = rules.nvcc_host_gcc[-1]["from"]
        if major_minor(cuda.version) > major_minor(last):
            notes.append(
                f"CUDA {cuda.version} is newer than the rules (last: {last}); using its row"
            )
    fits = lambda m: lo <= m <= hi  # noqa: E731
    unsupported = False
    cuda_name = f"nvcc {vstr(major_minor(cuda.version))}" if cuda else ""
    have = sorted(installed) or ([default] if default else [])

    if opts.gcc:
        major = opts.gcc
        if major not in installed and major not in offered:
            errors.append(
                f"toolchain_gcc {major}: gcc-{major} is not installed and {os_name} does not offer "
                f"it (offers: {', '.join(map(str, offered)) or 'unknown'})"
            )
        if cuda and nvcc_range and not fits(major):
            if opts.allow_unsupported_compiler:
                unsupported = True
                notes.append(
                    f"{cuda_name} accepts gcc {lo}-{hi}; using gcc-{major} anyway "
                    "(toolchain_allow_unsupported_compiler)"
                )
            else:
                errors.append(
                    f"{cuda_name} accepts gcc {lo}-{hi} but toolchain_gcc is {major}; set "
                    "toolchain_allow_unsupported_compiler to force it"
                )
    elif not cuda or not nvcc_range:
        major = default or (distro["default"] if distro else max(installed, default=12))
    elif default is not None and fits(default) and default in installed:
        major = default
    elif any(fits(m) for m in installed):
        major = max(m for m in installed if fits(m))
        notes.append(f"{cuda_name} accepts gcc {lo}-{hi}; using the installed gcc-{major}")
    elif any(fits(m) for m in offered):
        major = max(m for m in offered if fits(m))
        notes.append(
            f"{cuda_name} accepts gcc {lo}-{hi}; this host has gcc "
            f"{', '.join(map(str, have)) or 'none'} only — dlrig will install gcc-{major} "
            "(set toolchain_gcc to override)"
        )
    elif opts.allow_unsupported_compiler and (default or installed):
        major = default or max(installed)
        unsupported = True
        notes.append(
            f"{cuda_name} accepts gcc {lo}-{hi}; using gcc-{major} anyway "
            "(toolchain_allow_unsupported_compiler)"
        )
    else:
        major = default or 0
        errors.append(
            f"{cuda_name} accepts gcc {lo}-{hi}; this host has gcc "
            f"{', '.join(map(str, have)) or 'none'} and {os_name} offers "
            f"{', '.join(map(str, offered)) or 'none known'}: none fits. Install a supported "
            "gcc-N and set toolchain_gcc, or set toolchain_gcc and "
            "toolchain_allow_unsupported_compiler"
        )

    cc, cxx = installed.get(major, (f"/usr/bin/gcc-{major}", f"/usr/bin/g++-{major}"))
    flags = ["-ccbin", cxx] if cuda else []
    if cuda and unsupported:
        flags.append("-allow-unsupported-compiler")
    env = {"CC": cc, "CXX": cxx}
    if cuda:
        env["CUDAHOSTCXX"] = cxx
        env["NVCC_CCBIN"] = cxx
        if unsupported:
            env["NVCC_APPEND_FLAGS"] = "-allow-unsupported-compiler"
    return CompilerPlan(
        gcc_major=major,
        cc=cc,
        cxx=cxx,
        packages=[f"gcc-{major}", f"g++-{major}"],
        installed=major in installed,
        nvcc_accepts=(fits(major) if nvcc_range else None) if cuda else None,
        nvcc_gcc_range=[lo, hi] if cuda and nvcc_range else None,
        nvcc_flags=flags,
        env=env,
        b2_toolset=f"gcc-{major}",
        b2_user_config=f"using gcc : {major} : {cxx} ;",
    )


def _release(
    rows: list[dict[str, Any]],
    wanted: str,
    key: str,
    notes: list[str],
    what: str,
    python: Mapping[str, Any] | None,
    usable: Any,
) -> dict[str, Any]:
    """The release row: the one asked for, else the newest that fits Python and ``usable``."""
    if not wanted:
        fitting = [r for r in rows if _python_fits(python, r)] or rows
        good = [r for r in fitting if usable(r)]
        return (good or fitting)[-1]
    mm = major_minor(wanted)
    for row in rows:
        if major_minor(row["version"]) == mm:
            return row
    newest = rows[-1]
    if mm > major_minor(newest["version"]):
        notes.append(f"{what} {wanted} is newer than the rules; using {newest['version']}'s")
        return {**newest, "version": vstr(mm)}
    known = ", ".join(r["version"] for r in rows)
    raise CompatError([f"{key} {wanted!r}: unknown {what} release (known: {known})"])


def _python_fits(python: Mapping[str, Any] | None, row: Mapping[str, Any]) -> bool:
    if not python or "python" not in row:
        return True
    lo, hi = row["python"]
    return major_minor(lo) <= major_minor(python["version"]) <= major_minor(hi)


def _variant_cuda(variant: str) -> str:
    digits = variant.removeprefix("cu")
    return f"{digits[:-1]}.{digits[-1]}"


def _pick_torch(
    rules: Rules, facts: HostFacts, opts: Options, gpu_ok: bool, errors: list[str], notes: list[str]
) -> TorchPlan:
    spec = rules.torch

    def usable(r: Mapping[str, Any]) -> bool:
        return bool(
            gpu_ok
            and facts.driver
            and any(
                driver_runs(rules, facts.driver, _variant_cuda(v))[1] == "full"
                for v in r["variants"]
            )
        )

    row = _release(
        spec["releases"],
        opts.torch_version,
        "preflight_torch_version",
        notes,
        "torch",
        facts.python,
        usable,
    )
    if not _python_fits(facts.python, row):
        msg = (
            f"torch {row['version']} supports Python {row['python'][0]}-{row['python'][1]}, "
            f"this host has {facts.python['version']}"  # type: ignore[index]
        )
        (errors if opts.torch_version else notes).append(
            msg + " (set preflight_torch_version to a release that supports it)"
        )
    variant = "cpu"
    if gpu_ok and facts.driver:
        full = [
            v
            for v in row["variants"]
            if driver_runs(rules, facts.driver, _variant_cuda(v))[1] == "full"
        ]
        minor = [
            v for v in row["variants"] if driver_runs(rules, facts.driver, _variant_cuda(v))[0]
        ]
        if full:
            variant = max(full, key=lambda v: vtuple(_variant_cuda(v)))
        elif minor:
            variant = max(minor, key=lambda v: vtuple(_variant_cuda(v)))
            notes.append(f"torch {variant} runs through CUDA minor version compatibility")
        else:
            notes.append(
                f"the driver is too old for every CUDA variant of torch {row['version']} "
                f"({', '.join(row['variants'])}): using the CPU wheel"
            )
    return TorchPlan(
        version=row["version"],
        variant=variant,
        index_url=spec["index_url"].format(variant=variant),
        cuda=None if variant == "cpu" else _variant_cuda(variant),
    )


def _pick_tensorflow(
    rules: Rules,
    facts: HostFacts,
    opts: Options,
    gpu_ok: bool,
    cuda: CudaPlan | None,
    errors: list[str],
    notes: list[str],
) -> TensorflowPlan:
    spec = rules.tensorflow

    def usable(r: Mapping[str, Any]) -> bool:
        return bool(
            gpu_ok
            and facts.driver
            and r["and_cuda"]
            and driver_runs(rules, facts.driver, r["cuda"])[0]
        )

    row = _release(
        spec["releases"],
        opts.tensorflow_version,
        "preflight_tensorflow_version",
        notes,
        "tensorflow",
        facts.python,
        usable,
    )
    if not _python_fits(facts.python, row):
        msg = (
            f"tensorflow {row['version']} supports Python {row['python'][0]}-{row['python'][1]}, "
            f"this host has {facts.python['version']}"  # type: ignore[index]
        )
        (errors if opts.tensorflow_version else notes).append(
            msg + " (set preflight_tensorflow_version to a release that supports it)"
        )
    pin = f"=={row['version']}.*"
    gpu = False
    if gpu_ok and facts.driver:
        runs, how = driver_runs(rules, facts.driver, row["cuda"])
        if row["and_cuda"] and runs:
            return TensorflowPlan(
                row["version"], f"tensorflow[and-cuda]{pin}", True, row["cuda"], row["cudnn"]
            )
        if row["and_cuda"]:
            notes.append(f"tensorflow {row['version']} needs CUDA {row['cuda']}: {how}; CPU only")
        else:
            cudnn = facts.cudnn or {}
            gpu = bool(
                runs
                and cuda
                and major_minor(cuda.version) == major_minor(row["cuda"])
                and cudnn.get("version", "").split(".")[0] == row["cudnn"].split(".")[0]
            )
            if not gpu:
                notes.append(
                    f"tensorflow {row['version']} uses the system CUDA {row['cuda']} + cuDNN "
                    f"{row['cudnn']}, which this host lacks: it will run on the CPU"
                )
    return TensorflowPlan(row["version"], f"tensorflow{pin}", gpu, row["cuda"], row["cudnn"])


def _gpu_text(gpu: Mapping[str, Any]) -> str:
    cc = gpu.get("compute_capability")
    arch = f"sm_{arch_digits(normalize_arch(cc))}" if cc else "compute capability unknown"
    return f"{gpu.get('index')}: {gpu.get('name')} ({arch})"


def resolve(facts: HostFacts, opts: Options, rules: Rules | None = None) -> Plan:
    """Resolve one host's plan; raise ``CompatError`` listing every conflict.

    + facts: the host's facts (``HostFacts``)
    + opts: its data (``Options.from_data(host.data.dict())``)
    + rules: the rules (default: ``files/compat.yml``)
    """
    rules = rules or load_rules()
    errors: list[str] = []
    notes: list[str] = []
    gpus = list(facts.gpus or [])

    toolkit = None if opts.cpu_only else _pick_toolkit(facts, opts, errors)
    cuda = CudaPlan(toolkit["version"], toolkit["path"], toolkit["nvcc"]) if toolkit else None
    if cuda and not gpus and opts.require_gpu and not opts.cuda_arch:
        notes.append(
            f"CUDA {cuda.version} found but no NVIDIA GPU: CPU_ONLY "
            "(set preflight_require_gpu: false, or preflight_cuda_arch, to build CUDA code)"
        )
        cuda = None
    elif not toolkit and not opts.cpu_only and gpus:
        notes.append("NVIDIA GPU found but no CUDA toolkit: CPU_ONLY builds")

    driver = facts.driver
    if gpus and driver and driver.get("mismatch"):
        errors.append(
            f"the NVIDIA kernel module ({driver.get('kernel_module_version')}) and userspace "
            f"driver ({driver.get('userspace_version')}) differ: reboot (or reload the module) "
            "first; preflight_cpu_only skips the GPU"
        )
    if cuda and gpus and driver and driver.get("userspace_version"):
        runs, how = driver_runs(rules, driver, cuda.version)
        if not runs:
            need = driver_min_for(rules, cuda.version)
            errors.append(
                f"{how} but the toolkit is {vstr(major_minor(cuda.version))} ({cuda.path}): "
                f"upgrade the driver to ≥ {need or '?'}, pick another toolkit with "
                "preflight_cuda_toolkit, or set preflight_cpu_only"
            )
        elif how == "minor":
            notes.append(
                f"driver {driver['userspace_version']} runs CUDA {cuda.version} through minor "
                "version compatibility (SASS is embedded for every GPU; no PTX JIT needed)"
            )

    # Architectures.
    arch: list[str] = []
    if cuda:
        if opts.cuda_arch:
            arch = list(opts.cuda_arch)
        else:
            for gpu in gpus:
                cc = gpu.get("compute_capability") or ""
                if not cc:
                    errors.append(
                        f"GPU {gpu.get('index')} ({gpu.get('name')}): compute capability unknown; "
                        "set preflight_cuda_arch"
                    )
                    continue
                arch.append(normalize_arch(cc))
            arch = sorted(set(arch), key=vtuple)
        for cc in arch:
            ok = arch_supported(rules, cc, cuda.version)
            if ok is None:
                errors.append(
                    f"compute capability {cc} is not in the rules; check preflight_cuda_arch"
                )
            elif not ok:
                errors.append(
                    f"sm_{arch_digits(cc)} needs {arch_range_text(rules, cc)} but the toolkit is "
                    f"{cuda.version}: pick another toolkit with preflight_cuda_toolkit, or set "
                    "preflight_cuda_arch / preflight_cpu_only"
                )
    gencode = [f"-gencode arch=compute_{arch_digits(c)},code=sm_{arch_digits(c)}" for c in arch]
    if arch:
        newest = arch_digits(arch[-1])
        gencode.append(f"-gencode arch=compute_{newest},code=compute_{newest}")
    nvcc_arch_flags = [part for g in gencode for part in g.split(" ", 1)]
    cmake_archs = ";".join(
        [f"{arch_digits(c)}-real" for c in arch[:-1]] + [arch_digits(c) for c in arch[-1:]]
    )
    torch_archs = ";".join(arch[:-1] + [f"{c}+PTX" for c in arch[-1:]])

    compiler = _pick_compiler(rules, facts, opts, cuda, errors, notes)

    cudnn = None
    if facts.cudnn:
        usable = bool(
            cuda
            and str(major_minor(cuda.version)[0])
            in rules.cudnn_majors.get(facts.cudnn["version"].split(".")[0], [])
        )
        cudnn = {**facts.cudnn, "usable": usable}

    gpu_ok = bool(gpus and driver and not opts.cpu_only and not driver.get("mismatch"))
    try:
        torch = _pick_torch(rules, facts, opts, gpu_ok, errors, notes)
        tensorflow = _pick_tensorflow(rules, facts, opts, gpu_ok, cuda, errors, notes)
    except CompatError as e:
        raise CompatError(errors + e.errors) from None

    if errors:
        raise CompatError(errors)

    python = (
        {"path": facts.python["python"], "version": facts.python["version"]}
        if facts.python
        else None
    )
    driver_text = None
    if driver and driver.get("userspace_version"):
        mc = driver.get("max_cuda_version") or driver_max_cuda(rules, driver["userspace_version"])
        driver_text = f"{driver['userspace_version']} (CUDA ≤ {mc})"
    return Plan(
        cpu_only=cuda is None,
        cuda=cuda,
        compiler=compiler,
        cuda_arch=arch,
        gencode=gencode,
        nvcc_arch_flags=nvcc_arch_flags,
        cmake_cuda_architectures=cmake_archs,
        torch_cuda_arch_list=torch_archs,
        cudnn=cudnn,
        torch=torch,
        tensorflow=tensorflow,
        python=python,
        gpus=[_gpu_text(g) for g in gpus],
        driver=driver_text,
        notes=notes,
    )
