"""The host compiler: which GCC builds Boost, Caffe and CUDA code (nvcc -ccbin), and why."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploys.lib.plan import CompilerPlan, CudaPlan, HostFacts, Options
from deploys.lib.rules import Rules, nvcc_gcc_range
from deploys.lib.versions import major_minor, vstr, vtuple


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


def pick_compiler(
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

    cxx = installed[major][1] if major in installed else f"/usr/bin/g++-{major}"
    return CompilerPlan(
        gcc_major=major,
        cxx=cxx,
        packages=[f"gcc-{major}", f"g++-{major}"],
        installed=major in installed,
        nvcc_accepts=(fits(major) if nvcc_range else None) if cuda else None,
        nvcc_gcc_range=[lo, hi] if cuda and nvcc_range else None,
        nvcc_flags=["-allow-unsupported-compiler"] if cuda and unsupported else [],
    )
