"""PyTorch and TensorFlow releases and wheel variants for a host's driver and Python."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploys.lib.plan import CompatError, CudaPlan, HostFacts, Options, TensorflowPlan, TorchPlan
from deploys.lib.rules import Rules, driver_runs
from deploys.lib.versions import major_minor, vstr, vtuple


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


def pick_torch(
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


def pick_tensorflow(
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
