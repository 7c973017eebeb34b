"""The speed check's verdict: figures to rates and a decision, the stack and the recorded state
(``--state``), and the report table (``files/speed_check/verdict.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploys.lib.speed_report import format_verdict
from deploys.speed_check import script_digest
from tests.files.speed_check_doubles import script_module

bn = script_module("benches")
sc = script_module("speed_check")
vd = script_module("verdict")

# Figures in the shape the script records (illustrative numbers, not a measurement): a GPU host
# whose TF uses the GPU, and a CPU-only torch wheel.
T4_TF = {"cpu_s": 2.61, "gpu_s": 0.0204, "gpu_visible": True}
CPU_TORCH = {"cpu_s": 0.8585, "gpu_visible": False}


def test_gpu_host_using_the_gpu_passes():
    figures = {"tensorflow": vd.add_rates("tensorflow", T4_TF, "Tesla T4")}
    ok, failures = vd.verdict(figures, {}, gpu_expected=True, min_speedup=2.0)
    assert ok and failures == []
    assert figures["tensorflow"]["speedup"] == pytest.approx(127.94, rel=1e-3)
    assert figures["tensorflow"]["gpu_gflops"] == pytest.approx(bn.CONV_FLOP / 0.0204 / 1e9, 0.01)
    assert 0 < figures["tensorflow"]["gpu_peak_fraction"] < 1


def test_gpu_host_with_a_framework_not_seeing_the_gpu_fails():
    figures = {
        "tensorflow": vd.add_rates("tensorflow", T4_TF, "Tesla T4"),
        "torch": vd.add_rates("torch", CPU_TORCH, "Tesla T4"),
    }
    ok, failures = vd.verdict(figures, {}, gpu_expected=True, min_speedup=2.0)
    assert not ok
    assert failures == ["torch: does not see the GPU (CPU-only build or driver mismatch)"]


def test_slow_gpu_fails_with_the_figure():
    figures = {
        "torch": vd.add_rates("torch", {"cpu_s": 1.0, "gpu_s": 0.8, "gpu_visible": True}, "")
    }
    ok, failures = vd.verdict(figures, {}, gpu_expected=True, min_speedup=2.0)
    assert not ok
    assert failures == ["torch: GPU only 1.25x faster than CPU (minimum 2.0x)"]


def test_cpu_host_is_ok_without_gpu_figures():
    figures = {"torch": vd.add_rates("torch", CPU_TORCH, None)}
    ok, failures = vd.verdict(figures, {}, gpu_expected=False, min_speedup=2.0)
    assert ok and failures == []
    assert "speedup" not in figures["torch"]
    assert vd.exit_code(ok) == 0


def test_failed_framework_fails_with_its_reason_and_no_gpu_checks():
    figures = {"caffe": vd.add_rates("caffe", {"cpu_s": 0.05, "gpu_visible": True}, None)}
    errors = {"caffe": "crashed: killed by SIGABRT: F0101 common.cpp] Cannot use GPU"}
    ok, failures = vd.verdict(figures, errors, True, 2.0, ["Tesla T4"])
    assert not ok
    assert failures == ["caffe: crashed: killed by SIGABRT: F0101 common.cpp] Cannot use GPU"]
    assert vd.exit_code(ok) == 3


def test_gpu_expected_without_a_gpu_says_so():
    ok, failures = vd.verdict({}, {}, gpu_expected=True, min_speedup=2.0, gpu_names=[])
    assert not ok
    assert failures == ["gpu: a GPU is expected but nvidia-smi lists none (no GPU or no driver)"]


def test_caffe_figures_are_ms_per_image():
    figure = vd.add_rates("caffe", {"cpu_s": 0.05, "gpu_s": 0.0131, "gpu_visible": True}, "K80")
    assert figure["cpu_ms_per_image"] == 50.0
    assert figure["speedup"] == pytest.approx(3.82, abs=0.01)
    assert "gpu_peak_fraction" not in figure


def test_peak_table_prefers_the_specific_name():
    assert vd.peak_tflops("NVIDIA H100 PCIe") == 51.0
    assert vd.peak_tflops("NVIDIA H100 80GB HBM3") == 67.0
    assert vd.peak_tflops("Some Future GPU") is None


def test_state_records_only_passed_verdicts(tmp_path, capsys):
    out = tmp_path / "v.json"
    out.write_text(json.dumps({"ok": False, "stack": {"x": 1}}))
    sc.main(["--out", str(out), "--state"])
    state = json.loads(capsys.readouterr().out)
    assert state["recorded"] is None and state["verdict"] is None
    assert state["stack"]["script"] == script_digest()


def test_state_includes_the_expectation_and_both_build_keys(tmp_path, capsys):
    caffe, boost = tmp_path / "caffe", tmp_path / "boost"
    for prefix, key in ((caffe, "c" * 64), (boost, "b" * 64)):
        prefix.mkdir()
        (prefix / ".dlrig-build-key.json").write_text(json.dumps({"build_key": key}))
    out = tmp_path / "v.json"
    out.write_text(json.dumps({"ok": True, "stack": {"x": 1}}))
    common = ["--out", str(out), "--state", "--caffe-prefix", str(caffe), "--boost-prefix"]
    sc.main([*common, str(boost)])
    plain = json.loads(capsys.readouterr().out)
    sc.main([*common, str(boost), "--expect", "caffe"])
    expecting = json.loads(capsys.readouterr().out)
    assert plain["stack"]["caffe_build_key"] == "c" * 64
    assert plain["stack"]["boost_build_key"] == "b" * 64
    assert plain["recorded"] == {"x": 1} and plain["verdict"]["ok"] is True
    assert plain["stack"]["options"]["expect"] == []
    assert expecting["stack"]["options"]["expect"] == ["caffe"]
    assert plain["stack"] != expecting["stack"]  # a changed expectation reruns the check


def test_default_caffe_key_is_the_json_key_file_in_the_prefix():
    assert sc.CAFFE_PREFIX == "/opt/dlrig/caffe" and vd.BUILD_KEY_FILE == ".dlrig-build-key.json"
    assert vd.build_key(Path("/nonexistent-dlrig-prefix")) is None


def test_report_table():
    verdict = {
        "ok": False,
        "gpus": ["Tesla T4"],
        "figures": {
            "tensorflow": vd.add_rates("tensorflow", T4_TF, "Tesla T4"),
            "caffe": vd.add_rates("caffe", {"cpu_s": 0.05, "gpu_visible": False}, "Tesla T4"),
        },
        "skipped": ["torch"],
        "failures": ["caffe: does not see the GPU (CPU-only build or driver mismatch)"],
    }
    text = format_verdict("gpu-01", verdict)
    assert "  skipped (not installed, not expected): torch" in text.splitlines()
    assert text.splitlines()[0] == "Speed check on gpu-01: FAILED (GPU: Tesla T4)"
    assert "tensorflow  3.2 GFLOP/s" in text
    assert "407.5 GFLOP/s" in text
    assert "50.0 ms/img" in text
    assert "127.9x" in text
    assert text.endswith("! caffe: does not see the GPU (CPU-only build or driver mismatch)")
