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
written, ok), 3 (verdict written, a check failed) or 2 (no verdict could be written, or bad
arguments); 1 is Python's own for an uncaught error, never a verdict.

    speed_check.py --out verdict.json [--min-speedup 2] [--gpu auto|yes|no] [--repeats 5]
        [--frameworks tensorflow,torch,caffe] [--expect caffe,...]
        [--caffe-prefix /opt/dlrig/caffe] [--boost-prefix /opt/dlrig/boost]
    speed_check.py --state --out verdict.json [same options]
        # print {stack, recorded, verdict} as JSON, run nothing

This file is the command line; its sibling modules (in this directory, uploaded with it) hold the
rest: ``benches`` (the measurements, each framework in a child: this script with ``--one NAME``),
``elf`` (what Caffe's libraries link: its CUDA build), ``verdict`` (the stack, the recorded state,
the verdict from the figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The siblings import from this directory however the script is started: as a file (its
# directory is sys.path[0]), imported by the tests, or under -P / PYTHONSAFEPATH (it is not).
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from benches import CHILD_TIMEOUT_S, RESULT_MARK, BenchOptions, one, run_child  # noqa: E402
from verdict import add_rates, exit_code, recorded_state, stack, verdict  # noqa: E402

CAFFE_PREFIX = "/opt/dlrig/caffe"
BOOST_PREFIX = "/opt/dlrig/boost"
FRAMEWORKS = ("tensorflow", "torch", "caffe")


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
    """``--frameworks`` / ``--expect``: comma-separated names of ``FRAMEWORKS``."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    unknown = sorted(set(names) - set(FRAMEWORKS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown framework(s) {unknown}; known: {FRAMEWORKS}")
    return names


def _write(out: Path, result: dict[str, Any]) -> None:
    """Write the verdict JSON atomically (a temporary file beside it, then renamed)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    tmp.replace(out)


def _parser() -> argparse.ArgumentParser:
    """The command line's options (``--one`` is the hidden child mode)."""
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
    if args.state:  # only a passed check counts as done: a failed one runs again next time
        print(json.dumps(recorded_state(args.out, current)))
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
