#!/usr/bin/env python3
"""dlrig speed check: is the GPU really used, and how much faster than the CPU?

Runs on the target host with the interpreter of the pip stack. Standard library only; each
framework is optional. For every framework present it times the same work on the CPU and, where
a GPU is expected, on the GPU: warm-up first, then several repeats, median.

- TensorFlow and PyTorch: the seed's benchmark, a 7x7 convolution 3 -> 32 channels over a
  100x100x100x3 batch (valid padding), in GFLOP/s, plus the fraction of the GPU's peak FP32
  rate where the GPU is known.
- Caffe: forward passes of a MobileNet-SSD-like backbone (prototxt beside this file, random
  weights: timing needs no trained weights), in ms per image.

Writes a JSON verdict ``{ok, failures, figures, versions, gpu_expected, stack}`` and exits
0 (ok), 1 (a check failed) or 2 (could not run: no framework at all, or a crash).

    speed_check.py --out verdict.json [--min-speedup 2] [--gpu auto|yes|no] [--repeats 5]
    speed_check.py --state --out verdict.json   # print {stack, recorded} as JSON, run nothing
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH, SIZE, CHANNELS, FILTERS, KERNEL = 100, 100, 3, 32, 7
OUT_SIZE = SIZE - KERNEL + 1
CONV_FLOP = 2 * BATCH * OUT_SIZE * OUT_SIZE * FILTERS * KERNEL * KERNEL * CHANNELS
CAFFE_BATCH = 4
CAFFE_BUILD_KEY = Path(os.environ.get("DLRIG_CAFFE_BUILD_KEY", "/opt/dlrig/caffe/.dlrig-build-key"))

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


def time_median(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``fn`` in seconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


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
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def stack() -> dict[str, Any]:
    """What the verdict depends on: framework versions, Caffe build, GPUs, this script."""
    caffe_key = CAFFE_BUILD_KEY.read_text().strip() if CAFFE_BUILD_KEY.is_file() else None
    digest = hashlib.sha256()
    for path in sorted(HERE.iterdir()):
        if path.is_file() and path.suffix in (".py", ".prototxt"):
            digest.update(path.name.encode() + path.read_bytes())
    return {
        "python": sys.version.split()[0],
        "tensorflow": _version("tensorflow") or _version("tensorflow-cpu"),
        "torch": _version("torch"),
        "caffe_build_key": hashlib.sha256(caffe_key.encode()).hexdigest() if caffe_key else None,
        "gpus": gpus(),
        "script": digest.hexdigest(),
    }


def bench_tensorflow(gpu: bool, repeats: int) -> dict[str, Any]:
    import tensorflow as tf

    def run(device: str) -> float:
        with tf.device(device):
            images = tf.random.normal((BATCH, SIZE, SIZE, CHANNELS))
            kernel = tf.random.normal((KERNEL, KERNEL, CHANNELS, FILTERS))

            @tf.function
            def step():
                return tf.reduce_sum(tf.nn.conv2d(images, kernel, strides=1, padding="VALID"))

            return time_median(lambda: step().numpy(), repeats)

    result: dict[str, Any] = {
        "version": tf.__version__,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "cpu_s": run("/CPU:0"),
    }
    result["gpu_visible"] = bool(tf.config.list_physical_devices("GPU"))
    if gpu and result["gpu_visible"]:
        result["gpu_s"] = run("/GPU:0")
    return result


def bench_torch(gpu: bool, repeats: int) -> dict[str, Any]:
    import torch

    def run(device: str) -> float:
        images = torch.randn(BATCH, CHANNELS, SIZE, SIZE, device=device)
        conv = torch.nn.Conv2d(CHANNELS, FILTERS, KERNEL, bias=False).to(device)

        def step():
            with torch.no_grad():
                out = conv(images).sum()
            if device == "cuda":
                torch.cuda.synchronize()
            return out.item()

        return time_median(step, repeats)

    result: dict[str, Any] = {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "gpu_visible": torch.cuda.is_available(),
        "cpu_s": run("cpu"),
    }
    if gpu and result["gpu_visible"]:
        result["devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        result["gpu_s"] = run("cuda")
    return result


def bench_caffe(gpu: bool, repeats: int) -> dict[str, Any]:
    import caffe
    import numpy as np

    prototxt = str(HERE / "mobilenet_ssd_backbone.prototxt")

    def run(use_gpu: bool) -> float:
        if use_gpu:
            caffe.set_mode_gpu()
            caffe.set_device(0)
        else:
            caffe.set_mode_cpu()
        net = caffe.Net(prototxt, caffe.TEST)
        net.blobs["data"].reshape(CAFFE_BATCH, 3, 300, 300)
        net.reshape()
        rng = np.random.default_rng(0)
        for blobs in net.params.values():
            for blob in blobs:
                blob.data[...] = rng.normal(0, 0.05, blob.data.shape)
        net.blobs["data"].data[...] = rng.random(net.blobs["data"].data.shape)
        return time_median(net.forward, repeats, warmup=1) / CAFFE_BATCH

    has_gpu_build = hasattr(caffe, "set_mode_gpu") and _caffe_has_gpu(caffe)
    result: dict[str, Any] = {"gpu_visible": has_gpu_build, "cpu_s": run(False)}
    if gpu and has_gpu_build:
        result["gpu_s"] = run(True)
    return result


def _caffe_has_gpu(caffe: Any) -> bool:
    try:
        caffe.set_mode_gpu()
        caffe.set_device(0)
        caffe.set_mode_cpu()
        return True
    except Exception:
        return False


BENCHES: dict[str, tuple[str, Callable[[bool, int], dict[str, Any]]]] = {
    "tensorflow": ("tensorflow", bench_tensorflow),
    "torch": ("torch", bench_torch),
    "caffe": ("caffe", bench_caffe),
}


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
) -> tuple[bool, list[str]]:
    """Decide the host's verdict from the figures.

    + figures: framework → figures (``gpu_visible``, ``speedup``, …)
    + errors: framework → why its benchmark crashed
    + gpu_expected: the host has an NVIDIA GPU
    + min_speedup: the least GPU-over-CPU speedup accepted
    """
    failures = [f"{name}: benchmark failed: {why}" for name, why in sorted(errors.items())]
    if gpu_expected:
        for name, figure in sorted(figures.items()):
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


def exit_code(ok: bool, figures: dict[str, Any]) -> int:
    """0 ok, 1 a check failed, 2 could not run (no framework measured at all)."""
    if not figures:
        return 2
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--min-speedup", type=float, default=2.0)
    parser.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frameworks", default="tensorflow,torch,caffe")
    parser.add_argument("--state", action="store_true", help="print {stack, recorded}, run nothing")
    args = parser.parse_args(argv)

    current = stack()
    if args.state:
        recorded = None
        if args.out.is_file():
            try:
                previous = json.loads(args.out.read_text())
            except (OSError, ValueError):
                previous = {}
            # Only a passed check counts as done: a failed one runs again next time.
            recorded = previous.get("stack") if previous.get("ok") else None
        print(json.dumps({"stack": current, "recorded": recorded}, sort_keys=True))
        return 0

    gpu_names = current["gpus"]
    gpu_expected = {"auto": bool(gpu_names), "yes": True, "no": False}[args.gpu]
    figures: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    versions: dict[str, str | None] = {"python": current["python"]}
    for name in args.frameworks.split(","):
        module, bench = BENCHES[name]
        try:
            __import__(module)
        except ImportError:
            continue
        except Exception as e:  # a framework that is installed but broken is a failure
            errors[name] = f"import failed: {e}"
            continue
        try:
            figure = bench(gpu_expected, args.repeats)
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
            continue
        versions[name] = figure.get("version")
        figures[name] = add_rates(name, figure, gpu_names[0] if gpu_names else None)

    ok, failures = verdict(figures, errors, gpu_expected, args.min_speedup)
    code = exit_code(ok, figures)
    if code == 2 and not failures:
        failures = ["no framework to measure (TensorFlow, PyTorch and Caffe all absent)"]
    result = {
        "ok": code == 0,
        "failures": failures,
        "figures": figures,
        "versions": versions,
        "gpu_expected": gpu_expected,
        "gpus": gpu_names,
        "stack": current,
        "exit_code": code,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tmp.replace(args.out)
    print(json.dumps(result, indent=2, sort_keys=True))
    return code


if __name__ == "__main__":
    sys.exit(main())
