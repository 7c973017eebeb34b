"""The pure resolver (deploys/lib/compat.py): host facts + data -> one plan, or a clear error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploys.lib import rules, versions
from deploys.lib.compat import CompatError, HostFacts, Options, Plan, resolve

RULES = rules.load_rules()


# --- helpers -------------------------------------------------------------------------------


def compilers(*majors: int, default: int | None = None) -> dict[str, Any]:
    installed = {str(m): f"/usr/bin/gcc-{m}" for m in majors}
    default_v = f"{default}.2.0" if default else (f"{max(majors)}.2.0" if majors else None)
    return {
        "gcc": {"default": default_v, "installed": installed},
        "g++": {
            "default": default_v,
            "installed": {m: p.replace("gcc", "g++") for m, p in installed.items()},
        },
        "alternatives": {},
    }


def toolkit(version: str, path: str | None = None, default: bool = True) -> dict[str, Any]:
    path = path or f"/usr/local/cuda-{'.'.join(version.split('.')[:2])}"
    return {"version": version, "path": path, "nvcc": f"{path}/bin/nvcc", "is_default": default}


def gpu(cc: str, name: str = "GPU", index: int = 0) -> dict[str, Any]:
    return {
        "index": index,
        "name": name,
        "uuid": f"GPU-{index}",
        "pci_bus_id": f"00000000:0{index}:00.0",
        "memory_total_mib": 16384,
        "compute_capability": cc,
        "mig_mode": None,
    }


def driver(version: str, max_cuda: str | None) -> dict[str, Any]:
    return {
        "userspace_version": version,
        "kernel_module_version": version,
        "max_cuda_version": max_cuda,
        "mismatch": False,
    }


def system(os_id: str = "debian", version: str = "12") -> dict[str, Any]:
    return {
        "cpu_model": "x",
        "cpu_count": 2,
        "mem_total_mib": 1024,
        "kernel": "6.1",
        "os_id": os_id,
        "os_version": version,
        "os_codename": "",
        "disk_free_mib": {},
    }


def python(version: str = "3.11.2") -> dict[str, Any]:
    return {
        "python": "/usr/bin/python3",
        "version": version,
        "site_packages": [],
        "packages": {},
        "tf_build": None,
    }


def debian12(**kw: Any) -> HostFacts:
    base: dict[str, Any] = {
        "compilers": compilers(12),
        "system": system(),
        "python": python(),
    }
    base.update(kw)
    return HostFacts(**base)


def errors_of(facts: HostFacts, opts: Options | None = None) -> str:
    with pytest.raises(CompatError) as info:
        resolve(facts, opts or Options())
    return str(info.value)


def test_debian12_cuda118_picks_gcc11():
    """Debian 12 non-free nvidia-cuda-toolkit: nvcc 11.8 at /usr refuses gcc 12."""
    facts = debian12(toolkits=[toolkit("11.8.89", path="/usr")])
    plan = resolve(facts, Options(require_gpu=False))
    c = plan.compiler
    assert (c.gcc_major, c.installed, c.packages) == (11, False, ["gcc-11", "g++-11"])
    assert c.cxx == "/usr/bin/g++-11" and c.nvcc_flags == []
    assert plan.cuda and plan.cuda.path == "/usr" and not plan.cpu_only
    assert any("dlrig will install gcc-11" in n for n in plan.notes)


def test_default_compiler_kept_when_nvcc_accepts_it():
    plan = resolve(debian12(toolkits=[toolkit("13.0.88")]), Options(require_gpu=False))
    assert plan.compiler.gcc_major == 12 and plan.compiler.installed


def test_gcc13_host_with_cuda122_installs_gcc12():
    facts = HostFacts(
        toolkits=[toolkit("12.2.140")],
        compilers=compilers(13),
        system=system("ubuntu", "24.04"),
        gpus=[gpu("8.6")],
        driver=driver("550.54.14", "12.4"),
        python=python(),
    )
    plan = resolve(facts, Options())
    assert plan.compiler.gcc_major == 12 and not plan.compiler.installed
    assert "gcc 13 only — dlrig will install gcc-12 (set toolchain_gcc to override)" in (
        " ".join(plan.notes)
    )


def test_no_fitting_compiler_fails_naming_keys():
    facts = HostFacts(
        toolkits=[toolkit("10.2.89")], compilers=compilers(12), system=system(), python=python()
    )
    msg = errors_of(facts, Options(require_gpu=False))
    assert "nvcc 10.2 accepts gcc 5-8" in msg and "toolchain_allow_unsupported_compiler" in msg


def test_allow_unsupported_compiler():
    facts = HostFacts(
        toolkits=[toolkit("10.2.89")], compilers=compilers(12), system=system(), python=python()
    )
    plan = resolve(facts, Options(require_gpu=False, allow_unsupported_compiler=True))
    assert plan.compiler.gcc_major == 12 and plan.compiler.nvcc_accepts is False
    assert "-allow-unsupported-compiler" in plan.compiler.nvcc_flags


def test_toolchain_gcc_override_outside_range_fails():
    msg = errors_of(
        debian12(toolkits=[toolkit("11.8.89", "/usr")]), Options(gcc=12, require_gpu=False)
    )
    assert "toolchain_gcc is 12" in msg and "accepts gcc 6-11" in msg


def test_toolchain_gcc_not_offered_fails():
    msg = errors_of(debian12(), Options(gcc=9))
    assert "toolchain_gcc 9" in msg and "offers: 11, 12" in msg


def test_driver_too_old_for_toolkit():
    facts = debian12(
        toolkits=[toolkit("12.4.131")], gpus=[gpu("7.5")], driver=driver("470.82.01", "11.4")
    )
    msg = errors_of(facts)
    assert "driver 470.82.01 runs CUDA ≤ 11.4 but the toolkit is 12.4" in msg
    assert "550.54.14" in msg and "preflight_cuda_toolkit" in msg


def test_minor_version_compatibility_is_a_note():
    facts = debian12(
        toolkits=[toolkit("12.6.85")], gpus=[gpu("8.6")], driver=driver("535.104.05", "12.2")
    )
    plan = resolve(facts, Options())
    assert any("minor version compatibility" in n for n in plan.notes)


def test_gpu_the_toolkit_cannot_target():
    facts = debian12(
        toolkits=[toolkit("12.4.131")],
        gpus=[gpu("3.7", "Tesla K80")],
        driver=driver("550.54.14", "12.4"),
    )
    msg = errors_of(facts)
    assert "sm_37 needs CUDA 6.5-11.8 but the toolkit is 12.4.131" in msg


def test_unknown_compute_capability_names_key():
    facts = debian12(toolkits=[toolkit("12.4.131")], gpus=[gpu("")], driver=driver("550.1", "12.4"))
    assert "set preflight_cuda_arch" in errors_of(facts)


def test_gencode_and_ptx_for_newest():
    facts = debian12(
        toolkits=[toolkit("12.4.131")],
        gpus=[gpu("8.6", index=0), gpu("7.5", index=1), gpu("8.6", index=2)],
        driver=driver("550.54.14", "12.4"),
    )
    plan = resolve(facts, Options())
    assert plan.cuda_arch == ["7.5", "8.6"]
    assert plan.gencode == [
        "-gencode arch=compute_75,code=sm_75",
        "-gencode arch=compute_86,code=sm_86",
        "-gencode arch=compute_86,code=compute_86",
    ]


def test_no_gpu_means_cpu_only_unless_asked():
    facts = debian12(toolkits=[toolkit("13.0.88")])
    assert resolve(facts, Options()).cpu_only
    plan = resolve(facts, Options(cuda_arch=("9.0",)))
    assert not plan.cpu_only and plan.gencode[0] == "-gencode arch=compute_90,code=sm_90"


def test_forced_cpu_only():
    facts = debian12(
        toolkits=[toolkit("12.4.131")], gpus=[gpu("8.6")], driver=driver("550.54.14", "12.4")
    )
    plan = resolve(facts, Options(cpu_only=True))
    assert plan.cpu_only and plan.cuda is None and plan.torch.variant == "cpu"
    assert plan.compiler.nvcc_flags == [] and plan.gencode == []


def test_toolkit_choice():
    tks = [toolkit("11.8.89", default=False), toolkit("12.4.131", default=False)]
    facts = debian12(toolkits=tks)
    assert resolve(facts, Options(require_gpu=False)).cuda.version == "12.4.131"  # type: ignore[union-attr]
    assert resolve(facts, Options(require_gpu=False, cuda_toolkit="11.8")).cuda.version == "11.8.89"  # type: ignore[union-attr]
    chosen = resolve(facts, Options(require_gpu=False, cuda_toolkit="/usr/local/cuda-11.8"))
    assert chosen.cuda and chosen.cuda.version == "11.8.89"
    assert "matches no CUDA toolkit" in errors_of(facts, Options(cuda_toolkit="12.1"))


@pytest.mark.parametrize(
    ("drv", "max_cuda", "torch", "variant"),
    [
        ("575.51.03", "12.9", "", "cu128"),  # newest torch whose variants the driver runs
        ("550.54.14", "12.4", "2.5", "cu124"),
        ("535.104.05", "12.2", "2.5", "cu121"),
        ("520.61.05", "11.8", "2.7", "cu118"),
        ("580.65.06", "13.0", "2.9", "cu130"),
        ("450.80.02", "11.0", "2.9", "cpu"),  # too old for every variant
    ],
)
def test_torch_variant(drv, max_cuda, torch, variant):
    facts = debian12(gpus=[gpu("8.6")], driver=driver(drv, max_cuda))
    plan = resolve(facts, Options(torch_version=torch))
    assert plan.torch.variant == variant
    assert plan.torch.index_url == f"https://download.pytorch.org/whl/{variant}"


def test_torch_cpu_without_gpu():
    assert resolve(debian12(), Options()).torch.variant == "cpu"


@pytest.mark.parametrize(
    ("tf", "drv", "max_cuda", "spec", "gpu_used"),
    [
        ("2.20", "550.54.14", "12.4", "tensorflow[and-cuda]==2.20.*", True),  # minor compat
        ("2.15", "535.104.05", "12.2", "tensorflow[and-cuda]==2.15.*", True),
        ("2.14", "470.82.01", "11.4", "tensorflow[and-cuda]==2.14.*", True),
        ("2.18", "470.82.01", "11.4", "tensorflow==2.18.*", False),
        ("2.12", "550.54.14", "12.4", "tensorflow==2.12.*", False),  # needs system CUDA 11.8
    ],
)
def test_tensorflow_spec(tf, drv, max_cuda, spec, gpu_used):
    facts = debian12(gpus=[gpu("8.6")], driver=driver(drv, max_cuda))
    plan = resolve(facts, Options(tensorflow_version=tf))
    assert (plan.tensorflow.spec, plan.tensorflow.gpu) == (spec, gpu_used)


def test_tensorflow_python_mismatch_named():
    facts = debian12(python=python("3.13.1"))
    assert "preflight_tensorflow_version" in errors_of(facts, Options(tensorflow_version="2.16"))
    # Unpinned: the newest release that supports the interpreter, no error.
    assert resolve(facts, Options()).tensorflow.version == "2.20"


def test_unknown_release_fails_newer_release_is_a_note():
    assert "unknown torch release" in errors_of(debian12(), Options(torch_version="1.99"))
    plan = resolve(debian12(), Options(torch_version="2.13"))
    assert plan.torch.version == "2.13"
    assert any("newer than the rules" in n for n in plan.notes)


def test_cudnn_usable():
    facts = debian12(
        toolkits=[toolkit("12.4.131")],
        gpus=[gpu("8.6")],
        driver=driver("550.54.14", "12.4"),
        cudnn={"version": "9.1.0", "where": "/usr/include/cudnn_version.h"},
    )
    assert resolve(facts, Options()).cudnn.usable is True  # type: ignore[union-attr]
    facts.cudnn = {"version": "7.6.5", "where": "x"}
    assert resolve(facts, Options()).cudnn.usable is False  # type: ignore[union-attr]


def test_driver_mismatch_fails():
    bad = {**driver("550.54.14", "12.4"), "mismatch": True, "kernel_module_version": "550.40"}
    msg = errors_of(debian12(gpus=[gpu("8.6")], driver=bad))
    assert "reboot" in msg and "preflight_cpu_only" in msg


def test_plan_json_round_trip():
    facts = debian12(
        toolkits=[toolkit("12.4.131")], gpus=[gpu("8.6")], driver=driver("550.54.14", "12.4")
    )
    plan = resolve(facts, Options())
    text = plan.to_json()
    assert Plan.from_dict(json.loads(text)) == plan
    assert "mode: CUDA" in plan.summary()


# --- properties ----------------------------------------------------------------------------

cuda_versions = st.sampled_from([r["from"] for r in RULES.nvcc_host_gcc]).flatmap(
    lambda v: st.integers(0, 3).map(lambda p: f"{v}.{p}" if v.count(".") == 1 else v)
)
gcc_sets = st.sets(st.integers(5, 15), max_size=4)
distros = st.sampled_from([(r["os"], r["version"]) for r in RULES.distro_gcc])


@settings(max_examples=300, deadline=None)
@given(cuda=cuda_versions, installed=gcc_sets, distro=distros, allow=st.booleans())
def test_picked_compiler_is_accepted_or_explicitly_allowed(cuda, installed, distro, allow):
    """Whatever the host has: either a compiler nvcc accepts that exists or can be installed,
    or -allow-unsupported-compiler was asked for, or a CompatError naming toolchain_gcc."""
    facts = HostFacts(
        toolkits=[toolkit(cuda)],
        compilers=compilers(*sorted(installed)),
        system=system(*distro),
        python=python(),
    )
    opts = Options(require_gpu=False, allow_unsupported_compiler=allow)
    lo, hi, _ = rules.nvcc_gcc_range(RULES, cuda)  # type: ignore[misc]
    offered = next(r["available"] for r in RULES.distro_gcc if (r["os"], r["version"]) == distro)
    try:
        plan = resolve(facts, opts)
    except CompatError as e:
        assert "toolchain_gcc" in str(e)
        assert not any(lo <= m <= hi for m in set(installed) | set(offered))
        assert not (allow and installed)
        return
    c = plan.compiler
    assert c.gcc_major in installed or c.gcc_major in offered
    if lo <= c.gcc_major <= hi:
        assert c.nvcc_accepts and "-allow-unsupported-compiler" not in c.nvcc_flags
    else:
        assert allow and "-allow-unsupported-compiler" in c.nvcc_flags
        assert not any(lo <= m <= hi for m in set(installed) | set(offered))
    # The default compiler is kept whenever nvcc accepts it.
    if installed and lo <= max(installed) <= hi:
        assert c.gcc_major == max(installed)


@settings(max_examples=300, deadline=None)
@given(
    cuda=st.sampled_from([r["cuda"] for r in RULES.min_driver]),
    ccs=st.lists(st.sampled_from(sorted(RULES.gpu_arch)), min_size=1, max_size=4),
)
def test_arch_list_only_has_what_the_toolkit_targets(cuda, ccs):
    facts = debian12(
        toolkits=[toolkit(f"{cuda}.1")],
        gpus=[gpu(cc, index=i) for i, cc in enumerate(ccs)],
        driver=driver("999.0", "99.9"),
        compilers=compilers(5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, default=9),
    )
    try:
        plan = resolve(facts, Options())
    except CompatError as e:
        assert any(not rules.arch_supported(RULES, cc, cuda) for cc in ccs)
        assert "preflight_cuda_toolkit" in str(e)
        return
    assert plan.cuda_arch == sorted(set(ccs), key=versions.vtuple)
    assert all(rules.arch_supported(RULES, cc, cuda) for cc in plan.cuda_arch)
    sass = [g for g in plan.gencode if "code=sm_" in g]
    ptx = [g for g in plan.gencode if "code=compute_" in g]
    assert len(sass) == len(plan.cuda_arch) and len(ptx) == 1
    newest = versions.arch_digits(plan.cuda_arch[-1])
    assert ptx[0] == f"-gencode arch=compute_{newest},code=compute_{newest}"
