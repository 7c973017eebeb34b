"""The measurements: the same work timed on the CPU and the GPU per framework, each framework in
its own child process.

Part of the speed check (``speed_check.py``); standard library only, each framework imported only
inside its benchmark. The child is ``speed_check.py --one NAME``: it runs ``one`` and prints its
result after ``RESULT_MARK``, so a framework that crashes (segfault, ``LOG(FATAL)`` abort) becomes
a failure with its reason instead of killing the check.

- TensorFlow and PyTorch: the seed's benchmark, a 7x7 convolution 3 -> 32 channels over a
  100x100x100x3 batch (valid padding).
- Caffe: forward passes of a MobileNet-SSD-like backbone (prototxt beside this file, random
  weights: timing needs no trained weights); its GPU is used only when its build has CUDA.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from elf import caffe_gpu_build

HERE = Path(__file__).resolve().parent
# The entry point whose hidden ``--one NAME`` mode is the child.
SCRIPT = HERE / "speed_check.py"
BATCH, SIZE, CHANNELS, FILTERS, KERNEL = 100, 100, 3, 32, 7
OUT_SIZE = SIZE - KERNEL + 1
CONV_FLOP = 2 * BATCH * OUT_SIZE * OUT_SIZE * FILTERS * KERNEL * KERNEL * CHANNELS
CAFFE_BATCH = 4
CHILD_TIMEOUT_S = 3600
# A child's result line on stdout (frameworks may print lines of their own around it).
RESULT_MARK = "DLRIG-SPEED-CHECK-RESULT "


class BenchOptions(NamedTuple):
    """What one framework's measurement needs.

    + gpu: measure on the GPU too (a GPU is expected)
    + repeats: timed repeats per measurement
    + caffe_prefix: where Caffe is installed (its ``lib`` is searched for ``libcaffe.so``)
    """

    gpu: bool
    repeats: int
    caffe_prefix: Path


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


def _partial(result: dict[str, Any]) -> None:
    """Report figures measured so far: a crash later (the GPU part) keeps them."""
    print(RESULT_MARK + json.dumps({"status": "partial", "figure": result}), flush=True)


def bench_tensorflow(opts: BenchOptions) -> dict[str, Any]:
    """TensorFlow: seconds per convolution batch on the CPU (and the GPU when expected, seen)."""
    import tensorflow as tf

    def run(device: str) -> float:
        with tf.device(device):
            images = tf.random.normal((BATCH, SIZE, SIZE, CHANNELS))
            kernel = tf.random.normal((KERNEL, KERNEL, CHANNELS, FILTERS))

            @tf.function
            def step():
                return tf.reduce_sum(tf.nn.conv2d(images, kernel, strides=1, padding="VALID"))

            return time_median(lambda: step().numpy(), opts.repeats)

    result: dict[str, Any] = {
        "version": tf.__version__,
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "cpu_s": run("/CPU:0"),
    }
    result["gpu_visible"] = bool(tf.config.list_physical_devices("GPU"))
    if opts.gpu and result["gpu_visible"]:
        _partial(result)
        result["gpu_s"] = run("/GPU:0")
    return result


def bench_torch(opts: BenchOptions) -> dict[str, Any]:
    """PyTorch: seconds per convolution batch on the CPU (and the GPU when expected, seen)."""
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

        return time_median(step, opts.repeats)

    result: dict[str, Any] = {
        "version": torch.__version__,
        "cuda_build": torch.version.cuda,
        "gpu_visible": torch.cuda.is_available(),
        "cpu_s": run("cpu"),
    }
    if opts.gpu and result["gpu_visible"]:
        _partial(result)
        result["devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        result["gpu_s"] = run("cuda")
    return result


def bench_caffe(opts: BenchOptions) -> dict[str, Any]:
    """Caffe: seconds per image of the backbone's forward pass on the CPU (and the GPU when
    expected and the build has CUDA: on a CPU_ONLY build the GPU call would abort)."""
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
        return time_median(net.forward, opts.repeats, warmup=1) / CAFFE_BATCH

    package = Path(caffe.__file__).resolve().parent if getattr(caffe, "__file__", None) else None
    gpu_build, evidence = caffe_gpu_build(package, opts.caffe_prefix)
    result: dict[str, Any] = {
        "version": getattr(caffe, "__version__", None),
        "gpu_build": gpu_build,
        "gpu_build_evidence": evidence,
        "gpu_visible": bool(gpu_build),
        "cpu_s": run(False),
    }
    if opts.gpu and gpu_build:
        _partial(result)
        result["gpu_s"] = run(True)
    return result


BENCHES: dict[str, tuple[str, Callable[[BenchOptions], dict[str, Any]]]] = {
    "tensorflow": ("tensorflow", bench_tensorflow),
    "torch": ("torch", bench_torch),
    "caffe": ("caffe", bench_caffe),
}


def one(name: str, opts: BenchOptions) -> dict[str, Any]:
    """Import and measure one framework (the child's work): ``{status, figure | error}``.

    + name: a key of ``BENCHES``
    + opts: what the measurement needs

    Status ``absent`` (ImportError), ``import_failed`` (any other error on import),
    ``failed`` (the benchmark raised) or ``ok``.
    """
    module, bench = BENCHES[name]
    try:
        importlib.import_module(module)
    except ImportError as e:
        return {"status": "absent", "error": f"{type(e).__name__}: {e}"}
    except Exception as e:
        return {"status": "import_failed", "error": f"{type(e).__name__}: {e}"}
    try:
        return {"status": "ok", "figure": bench(opts)}
    except Exception as e:
        return {"status": "failed", "error": f"{type(e).__name__}: {e}"}


def _tail(text: str, lines: int = 4, chars: int = 400) -> str:
    """The last non-empty lines of a child's output, on one line."""
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-chars:]


def _signal_name(number: int) -> str:
    """``SIGABRT`` for 6, ``signal 99`` for a number without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_child(name: str, opts: BenchOptions, timeout: float = CHILD_TIMEOUT_S) -> dict[str, Any]:
    """Measure one framework in a child process; a child that dies becomes ``{status: died}``.

    + name: a key of ``BENCHES``
    + opts: what the measurement needs
    + timeout: seconds before the child is killed

    The result has ``figure`` too when the child reported figures before it died.
    """
    module = BENCHES[name][0]
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = True  # let the child's import tell what is wrong
    if not found:
        return {"status": "absent", "error": f"ModuleNotFoundError: No module named '{module}'"}
    command = [
        sys.executable,
        str(SCRIPT),
        "--one",
        name,
        "--gpu",
        "yes" if opts.gpu else "no",
        "--repeats",
        str(opts.repeats),
        "--caffe-prefix",
        str(opts.caffe_prefix),
    ]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return {"status": "died", "error": f"timed out after {timeout:g} s: {_tail(stderr or '')}"}
    results = [
        json.loads(line[len(RESULT_MARK) :])
        for line in proc.stdout.splitlines()
        if line.startswith(RESULT_MARK)
    ]
    last = results[-1] if results else {}
    if proc.returncode == 0 and last.get("status") not in (None, "partial"):
        return last
    if proc.returncode < 0:
        how = f"killed by {_signal_name(-proc.returncode)}"
    else:
        how = f"exited {proc.returncode} without a result"
    died: dict[str, Any] = {
        "status": "died",
        "error": f"{how}: {_tail(proc.stderr) or 'no output'}",
    }
    if last.get("figure"):
        died["figure"] = last["figure"]
    return died
