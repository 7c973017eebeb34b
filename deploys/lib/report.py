"""The facts report: one readable table per host, from the results of dlrig's facts.

Pure formatting, no pyinfra state: ``deploys/report.py`` gathers the facts (dlrig's own from
``facts/``, what dlrig left on the host from ``facts.report.ReportState``) and prints
``format_report(host_name, facts)``; ``deploys/lib/report_cli.py`` then ends a report-only run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

# Directories whose free space the report shows.
REPORT_PATHS = ("/", "/tmp", "/usr/local", "/opt")

FRAMEWORKS = ("tensorflow", "keras", "torch", "torchvision", "jax", "numpy")


def _mib(value: int) -> str:
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"


def _system_rows(system: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not system:
        return [("System", "unknown")]
    os_name = " ".join(filter(None, [system.get("os_id"), system.get("os_version")])) or "?"
    if system.get("os_codename"):
        os_name += f" ({system['os_codename']})"
    cpu = f"{system.get('cpu_model') or 'CPU'} x{system.get('cpu_count', 0)}"
    rows = [
        ("System", f"{os_name}, kernel {system.get('kernel') or '?'}"),
        ("CPU / RAM", f"{cpu}, {_mib(system.get('mem_total_mib', 0))}"),
    ]
    disks = system.get("disk_free_mib") or {}
    rows.append(
        ("Disk free", ", ".join(f"{p} {_mib(v)}" for p, v in disks.items()) if disks else "unknown")
    )
    return rows


def _gpu_rows(gpus: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    if not gpus:
        return [("GPUs", "none")]
    rows = []
    for gpu in gpus:
        cc = gpu.get("compute_capability") or "?"
        mig = f", MIG {gpu['mig_mode']}" if gpu.get("mig_mode") else ""
        rows.append(
            (
                "GPUs" if not rows else "",
                f"{gpu['index']}: {gpu['name']} (sm {cc}, {_mib(gpu['memory_total_mib'])}{mig}) "
                f"{gpu['pci_bus_id']}",
            )
        )
    return rows


def _driver_row(driver: Mapping[str, Any] | None) -> tuple[str, str]:
    if not driver:
        return ("NVIDIA driver", "none")
    parts = [driver.get("userspace_version") or "userspace ?"]
    if driver.get("kernel_module_version"):
        parts.append(f"kernel module {driver['kernel_module_version']}")
    if driver.get("max_cuda_version"):
        parts.append(f"runs CUDA <= {driver['max_cuda_version']}")
    text = ", ".join(parts)
    if driver.get("mismatch"):
        text += "  MISMATCH: reboot (or reload the module) before using the GPU"
    return ("NVIDIA driver", text)


def _cuda_rows(toolkits: Sequence[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    if not toolkits:
        return [("CUDA toolkits", "none")]
    return [
        (
            "CUDA toolkits" if i == 0 else "",
            f"{tk['version']} {tk['path']}{' (default)' if tk.get('is_default') else ''}",
        )
        for i, tk in enumerate(toolkits)
    ]


def _compiler_rows(compilers: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    rows = []
    for name in ("gcc", "g++"):
        info = (compilers or {}).get(name) or {}
        installed = ", ".join(sorted(info.get("installed", {}), key=_version_key)) or "-"
        alt = ((compilers or {}).get("alternatives") or {}).get(name) or {}
        current = f", alternatives -> {alt['current']}" if alt.get("current") else ""
        rows.append(
            (
                "Compilers" if not rows else "",
                f"{name} {info.get('default') or 'none'} (installed: {installed}{current})",
            )
        )
    return rows


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def _python_rows(env: Mapping[str, Any] | None, interpreter: str | None) -> list[tuple[str, str]]:
    if not env:
        if interpreter:
            return [("Python", f"{interpreter} does not exist yet (the pip stack makes it)")]
        return [("Python", "unknown: the plan did not resolve (see Plan)")]
    packages = env.get("packages") or {}
    installed = [f"{k} {packages[k]}" for k in FRAMEWORKS if packages.get(k)]
    base = f" (venv of {env['base_executable']})" if env.get("base_executable") else ""
    rows = [
        ("Python", f"{env.get('version')} {env.get('python')}{base}"),
        ("Frameworks", ", ".join(installed) if installed else "none"),
    ]
    tf = env.get("tf_build")
    if tf:
        cuda = tf.get("cuda_version") or "none (CPU build)"
        rows.append(("TF built for", f"CUDA {cuda}, cuDNN {tf.get('cudnn_version') or '-'}"))
    return rows


def _plan_rows(error: str | None) -> list[tuple[str, str]]:
    if not error:
        return []
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return [("Plan" if i == 0 else "", line) for i, line in enumerate(lines)]


def _caffe_rows(caffe: Mapping[str, Any] | None, interpreter: str | None) -> list[tuple[str, str]]:
    if not caffe:
        return [("Caffe", "unknown")]
    if not (caffe.get("package") or caffe.get("key") or caffe.get("pth")):
        return [("Caffe", "none")]
    prefix = caffe.get("prefix") or "?"
    key = caffe.get("key")
    if key:
        inputs = key.get("inputs") or {}
        cuda = f"CUDA {inputs['cuda']}" if inputs.get("cuda") else "CPU only"
        commit = f"commit {str(inputs['commit'])[:10]}, " if inputs.get("commit") else ""
        build = f"build {str(key.get('build_key') or '?')[:12]} ({commit}{cuda})"
    else:
        build = "no build key: unfinished build"
    python = interpreter or "the plan's interpreter"
    if not caffe.get("package"):
        use = f"no pycaffe in {prefix}/python"
    elif caffe.get("pth"):
        use = f"import caffe works in {python}"
    else:
        use = f"NOT importable in {python}: no .pth names {prefix}/python"
    return [("Caffe", f"{prefix}, {build}"), ("", use)]


def _when(mtime: int) -> str:
    return datetime.fromtimestamp(mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _speed_rows(state: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not state:
        return [("Speed check", "not run yet")]
    when = _when(state.get("mtime") or 0)
    verdict = state.get("verdict")
    if verdict is None:
        return [("Speed check", f"FAILED: unreadable verdict {state.get('path')} ({when})")]
    figures = verdict.get("figures") or {}
    speedups = [
        f"{name} {figure['speedup']:.1f}x"
        for name, figure in sorted(figures.items())
        if isinstance(figure, dict) and isinstance(figure.get("speedup"), int | float)
    ]
    measured = ", ".join(speedups) or ", ".join(sorted(figures)) or "nothing measured"
    status = "OK" if verdict.get("ok") is True else "FAILED"
    rows = [("Speed check", f"{status}, {when}: {measured}")]
    rows += [("", f"! {failure}") for failure in verdict.get("failures") or []]
    return rows


def report_rows(facts: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (label, value) rows of the report, in display order."""
    colab = facts.get("colab") or {}
    if colab.get("hosted"):
        colab_text = f"hosted Colab VM, release {colab.get('release_tag') or '?'}"
    else:
        colab_text = "no"
    cudnn = facts.get("cudnn")
    state = facts.get("state") or {}
    return [
        *_system_rows(facts.get("system")),
        ("Colab", colab_text),
        *_gpu_rows(facts.get("gpus")),
        _driver_row(facts.get("driver")),
        *_cuda_rows(facts.get("cuda")),
        ("cuDNN", f"{cudnn['version']} ({cudnn['where']})" if cudnn else "none"),
        *_compiler_rows(facts.get("compilers")),
        *_plan_rows(facts.get("plan_error")),
        *_python_rows(facts.get("python"), facts.get("interpreter")),
        *_caffe_rows(state.get("caffe"), facts.get("interpreter")),
        *_speed_rows(state.get("speed_check")),
    ]


def format_report(host_name: str, facts: Mapping[str, Any]) -> str:
    """Render one host's facts as a two-column text table with a title line.

    + host_name: the inventory name, shown in the title
    + facts: ``{"system", "colab", "gpus", "driver", "cuda", "cudnn", "compilers", "python",
      "interpreter", "plan_error", "state"}``: the results of the matching facts (``python``:
      ``PythonEnv`` of the plan's interpreter ``interpreter``; ``state``:
      ``facts.report.ReportState``), and ``plan_error``, why the plan did not resolve; missing
      keys render as unknown/none
    """
    rows = report_rows(facts)
    left = max(len(label) for label, _ in rows)
    right = max(len(value) for _, value in rows)
    rule = f"+-{'-' * left}-+-{'-' * right}-+"
    lines = [f"dlrig facts: {host_name}", rule]
    for label, value in rows:
        if label and lines[-1] != rule:
            lines.append(rule)
        lines.append(f"| {label.ljust(left)} | {value.ljust(right)} |")
    lines.append(rule)
    return "\n".join(lines)
