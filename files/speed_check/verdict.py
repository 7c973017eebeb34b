"""The verdict: what it depends on (the stack), whether a recorded one still stands, and how the
figures decide it.

Part of the speed check (``speed_check.py``); standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benches import CONV_FLOP

HERE = Path(__file__).resolve().parent
BUILD_KEY_FILE = ".dlrig-build-key.json"

# Peak dense FP32 (non-tensor-core) TFLOP/s from NVIDIA's datasheets, matched by name substring.
PEAK_FP32_TFLOPS = {
    "H200": 67.0,
    "H100 PCIe": 51.0,
    "H100": 67.0,
    "A100": 19.5,
    "A10G": 31.2,
    "L4": 30.3,
    "T4": 8.1,
    "V100": 15.7,
    "P100": 9.3,
    "K80": 4.1,
}


def peak_tflops(gpu_name: str | None) -> float | None:
    """Peak FP32 TFLOP/s for a GPU name, or None when unknown."""
    if not gpu_name:
        return None
    for key, value in PEAK_FP32_TFLOPS.items():
        if key in gpu_name:
            return value
    return None


# --- the stack: what a verdict depends on ----------------------------------------------------


def gpus() -> list[str]:
    """GPU names from ``nvidia-smi -L`` ([] without a driver)."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode != 0:
        return []
    names = []
    for line in out.stdout.splitlines():
        if line.startswith("GPU ") and ":" in line:
            names.append(line.split(":", 1)[1].split("(UUID")[0].strip())
    return names


def _version(dist: str) -> str | None:
    """An installed distribution's version, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def build_key(prefix: Path) -> str | None:
    """The build key recorded in ``<prefix>/.dlrig-build-key.json`` (None when absent).

    + prefix: an install prefix (Boost's, Caffe's)

    The key file is JSON with a ``build_key`` field; any other content counts by its sha256.
    """
    path = prefix / BUILD_KEY_FILE
    try:
        text = path.read_text()
    except OSError:
        return None
    try:
        key = json.loads(text).get("build_key")
    except (ValueError, AttributeError):
        key = None
    return str(key) if key else hashlib.sha256(text.encode()).hexdigest()


def script_digest() -> str:
    """sha256 over this directory's ``.py`` and ``.prototxt`` files (names and bytes).

    ``deploys/speed_check.py`` computes the same over the files it uploads: keep them equal.
    """
    digest = hashlib.sha256()
    for path in sorted(HERE.iterdir()):
        if path.is_file() and path.suffix in (".py", ".prototxt"):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def stack(options: dict[str, Any], caffe_prefix: Path, boost_prefix: Path) -> dict[str, Any]:
    """What the verdict depends on: versions, Boost and Caffe builds, GPUs, script, options.

    + options: the check's options (expected frameworks, thresholds): a change reruns it
    + caffe_prefix: Caffe's install prefix (its build key)
    + boost_prefix: Boost's install prefix (its build key)
    """
    return {
        "python": sys.version.split()[0],
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
        "torch": _version("torch"),
        "boost_build_key": build_key(boost_prefix),
        "caffe_build_key": build_key(caffe_prefix),
        "gpus": gpus(),
        "script": script_digest(),
        "options": options,
    }


def recorded_state(out: Path, current: dict[str, Any]) -> dict[str, Any]:
    """``--state``: ``{stack, recorded, verdict}`` — this stack, and the recorded verdict's.

    + out: the verdict file of an earlier run (absent or unreadable: nothing recorded)
    + current: the stack now (``stack()``)

    Only a passed check counts as done: a failed one runs again next time.
    """
    previous: dict[str, Any] = {}
    if out.is_file():
        try:
            previous = json.loads(out.read_text())
        except (OSError, ValueError):
            previous = {}
    passed = previous if isinstance(previous, dict) and previous.get("ok") else None
    recorded = passed.get("stack") if passed else None
    return {"stack": current, "recorded": recorded, "verdict": passed}


# --- the verdict from the figures ------------------------------------------------------------


def add_rates(name: str, figure: dict[str, Any], gpu_name: str | None) -> dict[str, Any]:
    """Derive GFLOP/s (convolutions), ms per image (Caffe), speedup and fraction of peak."""
    out = dict(figure)
    if name == "caffe":
        for side in ("cpu", "gpu"):
            if f"{side}_s" in figure:
                out[f"{side}_ms_per_image"] = round(figure[f"{side}_s"] * 1000, 3)
    else:
        for side in ("cpu", "gpu"):
            if f"{side}_s" in figure:
                out[f"{side}_gflops"] = round(CONV_FLOP / figure[f"{side}_s"] / 1e9, 2)
        peak = peak_tflops(gpu_name)
        if "gpu_gflops" in out and peak:
            out["gpu_peak_fraction"] = round(out["gpu_gflops"] / (peak * 1000), 4)
    if "gpu_s" in figure and figure["gpu_s"] > 0:
        out["speedup"] = round(figure["cpu_s"] / figure["gpu_s"], 2)
    return out


def verdict(
    figures: dict[str, dict[str, Any]],
    errors: dict[str, str],
    gpu_expected: bool,
    min_speedup: float,
    gpu_names: list[str] | None = None,
) -> tuple[bool, list[str]]:
    """Decide the host's verdict from the figures.

    + figures: framework → figures (``gpu_visible``, ``speedup``, …)
    + errors: framework → why it failed (``import failed: …``, ``benchmark failed: …``,
      ``crashed: killed by SIGABRT …``)
    + gpu_expected: the host has (or must have) an NVIDIA GPU
    + min_speedup: the least GPU-over-CPU speedup accepted
    + gpu_names: the GPUs nvidia-smi lists (None: not known, nothing checked)
    """
    failures = [f"{name}: {why}" for name, why in sorted(errors.items())]
    if gpu_expected and gpu_names is not None and not gpu_names:
        failures.append("gpu: a GPU is expected but nvidia-smi lists none (no GPU or no driver)")
    if gpu_expected:
        for name, figure in sorted(figures.items()):
            if name in errors:
                continue
            if not figure.get("gpu_visible"):
                failures.append(f"{name}: does not see the GPU (CPU-only build or driver mismatch)")
            elif figure.get("speedup") is not None and figure["speedup"] < min_speedup:
                failures.append(
                    f"{name}: GPU only {figure['speedup']}x faster than CPU "
                    f"(minimum {min_speedup}x)"
                )
            elif figure.get("speedup") is None:
                failures.append(f"{name}: no GPU timing")
    return not failures, failures


def exit_code(ok: bool) -> int:
    """0 when the verdict is ok, 3 when it failed (2, no verdict at all, is ``main``'s; 1 is
    Python's for an uncaught error, so a crash is never taken for a written verdict)."""
    return 0 if ok else 3
