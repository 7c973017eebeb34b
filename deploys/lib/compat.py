"""Compatibility resolution: facts about a host + its data → one resolved plan, or a clear error.

Pure Python (no pyinfra): ``resolve(HostFacts, Options)`` reads the rules in
``files/compat.yml`` (``deploys.lib.rules``) and returns a ``Plan`` (``deploys.lib.plan``, a
JSON-serialisable dataclass) that every component follows: CPU_ONLY or CUDA, the CUDA toolkit,
the host compiler nvcc accepts (``deploys.lib.host_compiler``), the ``-gencode`` list for the
GPUs found, cuDNN's root, the interpreter and its venv, Boost's prefix, and the PyTorch /
TensorFlow wheel variants (``deploys.lib.frameworks``). A conflict raises ``CompatError`` whose
message names the data key that overrides it.

Inputs are the fact shapes of ``facts/``: plain dicts, so tests build them by hand.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from deploys.lib.frameworks import pick_tensorflow, pick_torch
from deploys.lib.host_compiler import pick_compiler
from deploys.lib.plan import (
    BoostPlan,
    CompatError,
    CudaPlan,
    CudnnPlan,
    HostFacts,
    Options,
    Plan,
    PythonPlan,
)
from deploys.lib.rules import (
    Rules,
    arch_range_text,
    arch_supported,
    driver_max_cuda,
    driver_min_for,
    driver_runs,
    load_rules,
)
from deploys.lib.versions import arch_digits, major_minor, normalize_arch, vstr, vtuple

__all__ = ["CompatError", "HostFacts", "Options", "Plan", "resolve"]

DEFAULT_VENV = "/opt/dlrig/venv"


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


def _cudnn_plan(rules: Rules, facts: HostFacts, cuda: CudaPlan | None) -> CudnnPlan | None:
    """Where cuDNN's headers and libraries are, from the header the fact found."""
    if not facts.cudnn:
        return None
    where = facts.cudnn["where"]
    usable = bool(
        cuda
        and str(major_minor(cuda.version)[0])
        in rules.cudnn_majors.get(facts.cudnn["version"].split(".")[0], [])
    )
    include: str | None = os.path.dirname(where)
    lib: str | None = None
    root = os.path.dirname(include or "")
    wheel = "/nvidia/cudnn/include/" in where
    if wheel:
        lib = f"{root}/lib"  # nvidia-cudnn-cu*: <site-packages>/nvidia/cudnn/{include,lib}
    elif include and include.startswith("/usr/local/"):
        lib = f"{root}/lib64"  # a toolkit's include/ and lib64/
    else:
        include = None  # /usr/include[/<triplet>]: the compiler's default search path
    if include and include.endswith("-linux-gnu"):
        include = None
    return CudnnPlan(
        version=facts.cudnn["version"],
        where=where,
        usable=usable,
        include=include,
        lib=lib,
        wheel=wheel,
    )


def _python_plan(facts: HostFacts, opts: Options, errors: list[str]) -> PythonPlan | None:
    """The interpreter: the one found (seen through a controller venv), its venv, the target."""
    found = facts.python
    if not found:
        errors.append(
            f"preflight_python {opts.python!r}: no such interpreter on the host (install "
            "python3, or name one with preflight_python)"
        )
        return None
    hosted = bool((facts.colab or {}).get("hosted"))
    # pyinfra @local run from a venv puts that venv first on PATH: the host's interpreter is
    # the one the venv was made from, not the controller's own environment.
    base = found.get("base_executable") or found["python"]
    venv = opts.venv
    if venv == "auto":
        venv = None if hosted else DEFAULT_VENV
    venv = venv.rstrip("/") if venv else None
    return PythonPlan(
        base=base,
        version=found["version"],
        venv=venv,
        target=f"{venv}/bin/python" if venv else base,
        # Hosted Colab's kernel Python is not the one the distribution's python3-* serve.
        system=base.startswith("/usr/bin/") and not hosted,
    )


def _boost_plan(opts: Options, python: PythonPlan | None) -> BoostPlan:
    version = python.version if python else "3"
    python_lib = "boost_python" + "".join(version.split(".")[:2])
    if opts.boost_source == "system":
        return BoostPlan("system", None, None, None, python_lib)
    prefix = "/" + opts.boost_prefix.strip("/")
    return BoostPlan("build", prefix, f"{prefix}/include", f"{prefix}/lib", python_lib)


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

    compiler = pick_compiler(rules, facts, opts, cuda, errors, notes)
    cudnn = _cudnn_plan(rules, facts, cuda)
    python = _python_plan(facts, opts, errors)
    boost = _boost_plan(opts, python)

    gpu_ok = bool(gpus and driver and not opts.cpu_only and not driver.get("mismatch"))
    try:
        torch = pick_torch(rules, facts, opts, gpu_ok, errors, notes)
        tensorflow = pick_tensorflow(rules, facts, opts, gpu_ok, cuda, errors, notes)
    except CompatError as e:
        raise CompatError(errors + e.errors) from None

    if errors:
        raise CompatError(errors)
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
        cudnn=cudnn,
        torch=torch,
        tensorflow=tensorflow,
        python=python,
        boost=boost,
        gpus=[_gpu_text(g) for g in gpus],
        driver=driver_text,
        notes=notes,
    )
