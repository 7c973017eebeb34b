"""The speed check's verdict logic on recorded figures, and its report table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from deploys.lib.speed_report import format_verdict
from deploys.speed_check import script_digest

SCRIPT = Path(__file__).resolve().parents[2] / "files" / "speed_check" / "speed_check.py"
_spec = importlib.util.spec_from_file_location("speed_check_script", SCRIPT)
assert _spec and _spec.loader
sc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sc)

# Figures in the shape the script records (illustrative numbers, not a measurement): a GPU host
# whose TF uses the GPU, and a CPU-only torch wheel.
T4_TF = {"cpu_s": 2.61, "gpu_s": 0.0204, "gpu_visible": True}
CPU_TORCH = {"cpu_s": 0.8585, "gpu_visible": False}


def test_gpu_host_using_the_gpu_passes():
    figures = {"tensorflow": sc.add_rates("tensorflow", T4_TF, "Tesla T4")}
    ok, failures = sc.verdict(figures, {}, gpu_expected=True, min_speedup=2.0)
    assert ok and failures == []
    assert figures["tensorflow"]["speedup"] == pytest.approx(127.94, rel=1e-3)
    assert figures["tensorflow"]["gpu_gflops"] == pytest.approx(sc.CONV_FLOP / 0.0204 / 1e9, 0.01)
    assert 0 < figures["tensorflow"]["gpu_peak_fraction"] < 1


def test_gpu_host_with_a_framework_not_seeing_the_gpu_fails():
    figures = {
        "tensorflow": sc.add_rates("tensorflow", T4_TF, "Tesla T4"),
        "torch": sc.add_rates("torch", CPU_TORCH, "Tesla T4"),
    }
    ok, failures = sc.verdict(figures, {}, gpu_expected=True, min_speedup=2.0)
    assert not ok
    assert failures == ["torch: does not see the GPU (CPU-only build or driver mismatch)"]


def test_slow_gpu_fails_with_the_figure():
    figures = {
        "torch": sc.add_rates("torch", {"cpu_s": 1.0, "gpu_s": 0.8, "gpu_visible": True}, "")
    }
    ok, failures = sc.verdict(figures, {}, gpu_expected=True, min_speedup=2.0)
    assert not ok
    assert failures == ["torch: GPU only 1.25x faster than CPU (minimum 2.0x)"]


def test_cpu_host_is_ok_without_gpu_figures():
    figures = {"torch": sc.add_rates("torch", CPU_TORCH, None)}
    ok, failures = sc.verdict(figures, {}, gpu_expected=False, min_speedup=2.0)
    assert ok and failures == []
    assert "speedup" not in figures["torch"]
    assert sc.exit_code(ok, figures) == 0


def test_crashed_framework_fails_and_nothing_measured_cannot_run():
    ok, failures = sc.verdict({}, {"caffe": "ImportError: libcaffe.so"}, False, 2.0)
    assert not ok and failures == ["caffe: benchmark failed: ImportError: libcaffe.so"]
    assert sc.exit_code(ok, {}) == 2


def test_caffe_figures_are_ms_per_image():
    figure = sc.add_rates("caffe", {"cpu_s": 0.05, "gpu_s": 0.0131, "gpu_visible": True}, "K80")
    assert figure["cpu_ms_per_image"] == 50.0
    assert figure["speedup"] == pytest.approx(3.82, abs=0.01)
    assert "gpu_peak_fraction" not in figure


def test_peak_table_prefers_the_specific_name():
    assert sc.peak_tflops("NVIDIA H100 PCIe") == 51.0
    assert sc.peak_tflops("NVIDIA H100 80GB HBM3") == 67.0
    assert sc.peak_tflops("Some Future GPU") is None


def test_main_without_frameworks_writes_a_could_not_run_verdict(tmp_path, monkeypatch):
    monkeypatch.setattr(sc, "BENCHES", {"nothing": ("dlrig_no_such_module", None)})
    out = tmp_path / "v.json"
    assert sc.main(["--out", str(out), "--frameworks", "nothing", "--gpu", "no"]) == 2
    verdict = json.loads(out.read_text())
    assert verdict["ok"] is False and verdict["exit_code"] == 2
    assert verdict["failures"] == [
        "no framework to measure (TensorFlow, PyTorch and Caffe all absent)"
    ]


def test_state_records_only_passed_verdicts(tmp_path, capsys):
    out = tmp_path / "v.json"
    out.write_text(json.dumps({"ok": False, "stack": {"x": 1}}))
    sc.main(["--out", str(out), "--state"])
    state = json.loads(capsys.readouterr().out)
    assert state["recorded"] is None
    assert state["stack"]["script"] == script_digest()


def test_report_table():
    verdict = {
        "ok": False,
        "gpus": ["Tesla T4"],
        "figures": {
            "tensorflow": sc.add_rates("tensorflow", T4_TF, "Tesla T4"),
            "caffe": sc.add_rates("caffe", {"cpu_s": 0.05, "gpu_visible": False}, "Tesla T4"),
        },
        "failures": ["caffe: does not see the GPU (CPU-only build or driver mismatch)"],
    }
    text = format_verdict("gpu-01", verdict)
    assert text.splitlines()[0] == "Speed check on gpu-01: FAILED (GPU: Tesla T4)"
    assert "tensorflow  3.2 GFLOP/s" in text
    assert "407.5 GFLOP/s" in text
    assert "50.0 ms/img" in text
    assert "127.9x" in text
    assert text.endswith("! caffe: does not see the GPU (CPU-only build or driver mismatch)")
