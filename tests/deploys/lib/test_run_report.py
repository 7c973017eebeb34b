"""The end-of-run report, from a plan summary, build outcomes and a verdict."""

from __future__ import annotations

from deploys.lib.run_report import format_report

PLAN = "mode: CUDA\ncuda: 12.2.140 at /usr/local/cuda-12.2; arch 7.5\nhost compiler: gcc-11"
VERDICT = {
    "ok": False,
    "versions": {"python": "3.12.11", "tensorflow": "2.20.0", "torch": None},
    "figures": {
        "tensorflow": {"cpu_gflops": 3.2, "gpu_gflops": 407.5, "speedup": 127.9},
        "caffe": {"cpu_ms_per_image": 50.0},
    },
    "failures": ["caffe: does not see the GPU (CPU-only build or driver mismatch)"],
}


def test_report_has_plan_builds_frameworks_and_figures():
    text = format_report("gpu-01", PLAN, {"Boost": "up to date (build key recorded)"}, VERDICT)
    lines = text.splitlines()
    assert lines[0] == "--> dlrig run report: gpu-01"
    assert "    mode: CUDA" in lines
    assert "    Boost: up to date (build key recorded)" in lines
    assert "    frameworks: python 3.12.11, tensorflow 2.20.0" in lines
    assert "    speed check: FAILED" in lines
    assert "      tensorflow: CPU 3.2 GFLOP/s, GPU 407.5 GFLOP/s, 127.9x" in lines
    assert "      caffe: CPU 50.0 ms/img" in lines
    assert lines[-1] == "      ! caffe: does not see the GPU (CPU-only build or driver mismatch)"


def test_report_without_plan_or_verdict_says_so():
    text = format_report("h", None, {}, None)
    assert "no plan (preflight did not run)" in text
    assert "speed check: no verdict in this run" in text


def test_report_says_when_the_verdict_was_not_rerun():
    passed = {**VERDICT, "ok": True, "failures": []}
    text = format_report("h", PLAN, {}, passed, measured=False)
    assert "    speed check: ok (not rerun: the passed verdict for this unchanged stack)" in text
