#!/usr/bin/env python3
"""dlrig speed check: is the GPU really used, and how much faster than the CPU?

Runs on the target host with the interpreter of the pip stack. Standard library only; each
framework is optional unless named in ``--expect``. For every framework present it times the same
work on the CPU and, where a GPU is expected, on the GPU: warm-up first, then several repeats,
median. Each framework is measured in a child process (this script, ``--one NAME``), so a
framework that crashes (segfault, ``LOG(FATAL)`` abort) becomes a failure with its reason instead
of killing the check.

- TensorFlow and PyTorch: the seed's benchmark, a 7x7 convolution 3 -> 32 channels over a
  100x100x100x3 batch (valid padding), in GFLOP/s, plus the fraction of the GPU's peak FP32
  rate where the GPU is known.
- Caffe: forward passes of a MobileNet-SSD-like backbone (prototxt beside this file, random
  weights: timing needs no trained weights), in ms per image. Whether the build has CUDA is read
  from the build (the CUDA libraries ``_caffe.so`` / ``libcaffe.so`` link, else ``CPU_ONLY`` in
  ``<caffe-prefix>/Makefile.config``), never by calling into Caffe's GPU code: on a CPU_ONLY
  build that is ``LOG(FATAL)``.

Writes a JSON verdict ``{ok, failures, figures, versions, expect, skipped, gpu_expected, gpus,
stack, exit_code}`` whatever happens (a stale verdict is removed first), and exits 0 (verdict
written, ok), 1 (verdict written, a check failed) or 2 (no verdict could be written, or bad
arguments).

    speed_check.py --out verdict.json [--min-speedup 2] [--gpu auto|yes|no] [--repeats 5]
        [--frameworks tensorflow,torch,caffe] [--expect caffe,...]
        [--caffe-prefix /opt/dlrig/caffe] [--boost-prefix /opt/dlrig/boost]
    speed_check.py --state --out verdict.json [same options]
        # print {stack, recorded, verdict} as JSON, run nothing
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
BATCH, SIZE, CHANNELS, FILTERS, KERNEL = 100, 100, 3, 32, 7
OUT_SIZE = SIZE - KERNEL + 1
CONV_FLOP = 2 * BATCH * OUT_SIZE * OUT_SIZE * FILTERS * KERNEL * KERNEL * CHANNELS
CAFFE_BATCH = 4
CAFFE_PREFIX = "/opt/dlrig/caffe"
BOOST_PREFIX = "/opt/dlrig/boost"
BUILD_KEY_FILE = ".dlrig-build-key.json"
FRAMEWORKS = ("tensorflow", "torch", "caffe")
CHILD_TIMEOUT_S = 3600
# A child's result line on stdout (frameworks may print lines of their own around it).
RESULT_MARK = "DLRIG-SPEED-CHECK-RESULT "
# Libraries only a CUDA build of Caffe links (a CPU_ONLY build links none of them).
CUDA_LIBS = re.compile(r"^lib(cudart|cublas|curand|cudnn)\b")

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


class BenchOptions(NamedTuple):
    """What one framework's measurement needs.

    + gpu: measure on the GPU too (a GPU is expected)
    + repeats: timed repeats per measurement
    + caffe_prefix: where Caffe is installed (its ``lib`` is searched for ``libcaffe.so``)
    """

    gpu: bool
    repeats: int
    caffe_prefix: Path


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
    """sha256 over this directory's ``.py`` and ``.prototxt`` files (names and bytes)."""
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


# --- ELF: what a shared object links, read without loading it ---------------------------------

DT_NEEDED, DT_RPATH, DT_RUNPATH = 1, 15, 29
SHT_DYNAMIC = 6


def elf_dynamic(path: Path) -> tuple[list[str], list[str]]:
    """DT_NEEDED names and DT_RUNPATH/DT_RPATH directories of an ELF shared object.

    + path: the ELF file

    Raises ``ValueError`` when the file is not ELF (or is truncated).
    """
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or len(data) < 64:
        raise ValueError(f"{path}: not an ELF file")
    is64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    # (e_shoff format, its offset, e_shentsize offset, section header, dynamic entry)
    off, off_at, sizes_at, shdr, dyn = (
        ("Q", 0x28, 0x3A, "IIQQQQIIQQ", "qQ") if is64 else ("I", 0x20, 0x2E, "IIIIIIIIII", "iI")
    )
    try:
        (shoff,) = struct.unpack_from(end + off, data, off_at)
        shentsize, shnum = struct.unpack_from(end + "HH", data, sizes_at)
        shdr, dyn = end + shdr, end + dyn
        sections = [struct.unpack_from(shdr, data, shoff + i * shentsize) for i in range(shnum)]
        needed: list[str] = []
        paths: list[str] = []
        for sec in sections:
            if sec[1] != SHT_DYNAMIC:
                continue
            offset, size, link = sec[4], sec[5], sec[6]
            strtab = sections[link][4]
            for at in range(offset, offset + size, struct.calcsize(dyn)):
                tag, value = struct.unpack_from(dyn, data, at)
                if tag == 0:
                    break
                if tag in (DT_NEEDED, DT_RPATH, DT_RUNPATH):
                    start = strtab + value
                    text = data[start : data.index(b"\0", start)].decode("utf-8", "replace")
                    if tag == DT_NEEDED:
                        needed.append(text)
                    else:
                        paths.extend(p for p in text.split(":") if p)
    except (struct.error, IndexError) as e:
        raise ValueError(f"{path}: truncated ELF file ({e})") from None
    return needed, paths


def _find_library(name: str, origin: Path, runpaths: list[str], prefix: Path) -> Path | None:
    dirs = [p.replace("$ORIGIN", str(origin)).replace("${ORIGIN}", str(origin)) for p in runpaths]
    dirs += [str(prefix / "lib")]
    dirs += [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    dirs += ["/usr/local/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
    for directory in dirs:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def _makefile_cpu_only(prefix: Path) -> bool | None:
    """``CPU_ONLY := 1`` in ``<prefix>/Makefile.config``: True, False, or None without the file."""
    try:
        text = (prefix / "Makefile.config").read_text()
    except OSError:
        return None
    return any(re.match(r"\s*CPU_ONLY\s*:?=\s*1\b", line) for line in text.splitlines())


def caffe_gpu_build(package_dir: Path | None, prefix: Path) -> tuple[bool | None, str]:
    """Whether an installed Caffe was built with CUDA, read from the build: (answer, evidence).

    + package_dir: the ``caffe`` Python package's directory (holds ``_caffe*.so``), or None
    + prefix: Caffe's install prefix (``lib/libcaffe.so*``, ``Makefile.config``)

    A CUDA build links ``libcudart`` / ``libcublas`` / ``libcurand`` (``_caffe.so`` directly or
    through ``libcaffe.so``); a CPU_ONLY build links none. Without readable libraries the
    ``CPU_ONLY`` line of ``<prefix>/Makefile.config`` decides; without either: (None, why).
    """
    read: list[str] = []
    unresolved: list[str] = []
    modules = sorted(package_dir.glob("_caffe*.so")) if package_dir else []
    for module in modules:
        try:
            needed, runpaths = elf_dynamic(module)
        except (OSError, ValueError) as e:
            unresolved.append(str(e))
            continue
        read.append(module.name)
        libraries = [(module, needed)]
        for name in needed:
            if not name.startswith("libcaffe"):
                continue
            found = _find_library(name, module.parent, runpaths, prefix)
            if found is None:
                unresolved.append(f"{name} not found")
                continue
            try:
                libraries.append((found, elf_dynamic(found)[0]))
                read.append(str(found))
            except (OSError, ValueError) as e:
                unresolved.append(str(e))
        for path, names in libraries:
            cuda = [n for n in names if CUDA_LIBS.match(n)]
            if cuda:
                return True, f"{path} links {', '.join(cuda)}"
    if read and not unresolved:
        return False, f"CPU_ONLY build: {' and '.join(read)} link no CUDA library"
    cpu_only = _makefile_cpu_only(prefix)
    if cpu_only is not None:
        return not cpu_only, f"{prefix / 'Makefile.config'}: CPU_ONLY {'on' if cpu_only else 'off'}"
    why = "; ".join(unresolved) or f"no _caffe*.so in {package_dir}"
    return None, f"build unknown ({why}); no {prefix / 'Makefile.config'}"


# --- benchmarks (each runs in its own child process) ------------------------------------------


def _partial(result: dict[str, Any]) -> None:
    """Report figures measured so far: a crash later (the GPU part) keeps them."""
    print(RESULT_MARK + json.dumps({"status": "partial", "figure": result}), flush=True)


def bench_tensorflow(opts: BenchOptions) -> dict[str, Any]:
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
    kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
    return " | ".join(kept)[-chars:]


def _signal_name(number: int) -> str:
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
        str(Path(__file__).resolve()),
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


# --- the verdict ------------------------------------------------------------------------------


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
    """0 when the verdict is ok, 1 when it failed (2, no verdict at all, is ``main``'s)."""
    return 0 if ok else 1


def measure(
    frameworks: list[str],
    expect: list[str],
    opts: BenchOptions,
    gpu_name: str | None,
    timeout: float = CHILD_TIMEOUT_S,
) -> tuple[dict[str, dict[str, Any]], dict[str, str], list[str], dict[str, Any]]:
    """Measure each framework in its own child: (figures, errors, skipped, versions).

    + frameworks: frameworks to measure when present
    + expect: frameworks that must be present (absent or broken: an error, never skipped)
    + opts: what each measurement needs
    + gpu_name: the first GPU's name (fraction of peak), or None
    + timeout: seconds per framework
    """
    figures: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    skipped: list[str] = []
    versions: dict[str, Any] = {}
    for name in frameworks:
        result = run_child(name, opts, timeout)
        status = result["status"]
        if status == "absent" and name not in expect:
            skipped.append(name)
            continue
        if status in ("absent", "import_failed"):
            errors[name] = f"import failed: {result['error']}"
        elif status == "failed":
            errors[name] = f"benchmark failed: {result['error']}"
        elif status == "died":
            errors[name] = f"crashed: {result['error']}"
        if result.get("figure"):
            versions[name] = result["figure"].get("version")
            figures[name] = add_rates(name, result["figure"], gpu_name)
    return figures, errors, skipped, versions


def _names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FRAMEWORKS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown framework(s) {unknown}; known: {FRAMEWORKS}")
    return names


def _write(out: Path, result: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, help="the verdict JSON (required)")
    parser.add_argument("--min-speedup", type=float, default=2.0)
    parser.add_argument("--gpu", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frameworks", type=_names, default=list(FRAMEWORKS))
    parser.add_argument(
        "--expect",
        type=_names,
        default=[],
        help="frameworks this run installed or built: absent or broken is a failure",
    )
    parser.add_argument("--caffe-prefix", type=Path, default=Path(CAFFE_PREFIX))
    parser.add_argument("--boost-prefix", type=Path, default=Path(BOOST_PREFIX))
    parser.add_argument("--state", action="store_true", help="print {stack, recorded, verdict}")
    parser.add_argument("--one", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.one:  # the child of run_child: one framework, its result on stdout
        opts = BenchOptions(args.gpu == "yes", args.repeats, args.caffe_prefix)
        print(RESULT_MARK + json.dumps(one(args.one, opts)), flush=True)
        return 0
    if args.out is None:
        parser.error("--out is required")

    frameworks = list(dict.fromkeys([*args.frameworks, *args.expect]))
    options = {
        "expect": sorted(set(args.expect)),
        "frameworks": frameworks,
        "gpu": args.gpu,
        "min_speedup": args.min_speedup,
        "repeats": args.repeats,
    }
    current = stack(options, args.caffe_prefix, args.boost_prefix)
    if args.state:
        previous: dict[str, Any] = {}
        if args.out.is_file():
            try:
                previous = json.loads(args.out.read_text())
            except (OSError, ValueError):
                previous = {}
        # Only a passed check counts as done: a failed one runs again next time.
        passed = previous if isinstance(previous, dict) and previous.get("ok") else None
        recorded = passed.get("stack") if passed else None
        print(json.dumps({"stack": current, "recorded": recorded, "verdict": passed}))
        return 0

    try:
        args.out.unlink()  # a crash below must not leave an older verdict standing
    except FileNotFoundError:
        pass
    except OSError as e:
        print(f"speed check: cannot remove the old verdict: {e}", file=sys.stderr)
        return 2
    gpu_names = current["gpus"]
    gpu_expected = {"auto": bool(gpu_names), "yes": True, "no": False}[args.gpu]
    opts = BenchOptions(gpu_expected, args.repeats, args.caffe_prefix)
    figures: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    skipped: list[str] = []
    versions: dict[str, Any] = {"python": current["python"]}
    try:
        figures, errors, skipped, found = measure(
            frameworks, options["expect"], opts, gpu_names[0] if gpu_names else None
        )
        versions.update(found)
        _, failures = verdict(figures, errors, gpu_expected, args.min_speedup, gpu_names)
        if not figures and not errors:
            failures.append("no framework to measure (TensorFlow, PyTorch and Caffe all absent)")
    except Exception as e:  # the check itself broke: still a verdict, with the reason
        failures = [f"speed check crashed: {type(e).__name__}: {e}"]
    ok = not failures
    result = {
        "ok": ok,
        "failures": failures,
        "figures": figures,
        "versions": versions,
        "expect": options["expect"],
        "skipped": skipped,
        "gpu_expected": gpu_expected,
        "gpus": gpu_names,
        "stack": current,
        "exit_code": exit_code(ok),
    }
    try:
        _write(args.out, result)
    except OSError as e:
        print(f"speed check: cannot write the verdict {args.out}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return exit_code(ok)


if __name__ == "__main__":
    sys.exit(main())
