"""The speed check: verdict logic on recorded figures, the report table, and the script run
against test doubles of Caffe (CPU_ONLY build whose GPU call aborts, broken import, crash)."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
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
    assert sc.exit_code(ok) == 0


def test_failed_framework_fails_with_its_reason_and_no_gpu_checks():
    figures = {"caffe": sc.add_rates("caffe", {"cpu_s": 0.05, "gpu_visible": True}, None)}
    errors = {"caffe": "crashed: killed by SIGABRT: F0101 common.cpp] Cannot use GPU"}
    ok, failures = sc.verdict(figures, errors, True, 2.0, ["Tesla T4"])
    assert not ok
    assert failures == ["caffe: crashed: killed by SIGABRT: F0101 common.cpp] Cannot use GPU"]
    assert sc.exit_code(ok) == 1


def test_gpu_expected_without_a_gpu_says_so():
    ok, failures = sc.verdict({}, {}, gpu_expected=True, min_speedup=2.0, gpu_names=[])
    assert not ok
    assert failures == ["gpu: a GPU is expected but nvidia-smi lists none (no GPU or no driver)"]


def test_caffe_figures_are_ms_per_image():
    figure = sc.add_rates("caffe", {"cpu_s": 0.05, "gpu_s": 0.0131, "gpu_visible": True}, "K80")
    assert figure["cpu_ms_per_image"] == 50.0
    assert figure["speedup"] == pytest.approx(3.82, abs=0.01)
    assert "gpu_peak_fraction" not in figure


def test_peak_table_prefers_the_specific_name():
    assert sc.peak_tflops("NVIDIA H100 PCIe") == 51.0
    assert sc.peak_tflops("NVIDIA H100 80GB HBM3") == 67.0
    assert sc.peak_tflops("Some Future GPU") is None


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
    assert sc.CAFFE_PREFIX == "/opt/dlrig/caffe" and sc.BUILD_KEY_FILE == ".dlrig-build-key.json"
    assert sc.build_key(Path("/nonexistent-dlrig-prefix")) is None


# --- ELF reading and the Caffe build decision ------------------------------------------------


def make_elf(path: Path, needed: list[str], runpath: str | None = None) -> Path:
    """Write a minimal ELF64 shared object: a .dynstr and a .dynamic with DT_NEEDED/RUNPATH."""
    strtab = b"\0"
    entries = []
    for tag, text in [(1, n) for n in needed] + ([(29, runpath)] if runpath else []):
        entries.append((tag, len(strtab)))
        strtab += text.encode() + b"\0"
    entries.append((0, 0))
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in entries)
    strtab += b"\0" * (-len(strtab) % 8)
    dyn_off = 64 + len(strtab)
    shoff = dyn_off + len(dynamic)
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, 3, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 0)
    shdr = "<IIQQQQIIQQ"
    sections = (
        struct.pack(shdr, *([0] * 10))
        + struct.pack(shdr, 0, 3, 0, 0, 64, len(strtab), 0, 0, 1, 0)
        + struct.pack(shdr, 0, 6, 0, 0, dyn_off, len(dynamic), 1, 0, 8, 16)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + strtab + dynamic + sections)
    return path


def test_elf_dynamic_reads_needed_and_runpath(tmp_path):
    elf = make_elf(tmp_path / "x.so", ["libcaffe.so.1.0.0", "libc.so.6"], "$ORIGIN/../../lib")
    assert sc.elf_dynamic(elf) == (["libcaffe.so.1.0.0", "libc.so.6"], ["$ORIGIN/../../lib"])
    (tmp_path / "text.so").write_text("not ELF")
    with pytest.raises(ValueError, match="not an ELF"):
        sc.elf_dynamic(tmp_path / "text.so")


def test_elf_dynamic_on_a_real_shared_object():
    import _ctypes  # a C extension every CPython build has as a shared object here

    if not str(getattr(_ctypes, "__file__", "")).endswith(".so"):
        pytest.skip("_ctypes is built in")
    needed, _ = sc.elf_dynamic(Path(_ctypes.__file__))
    assert any(name.startswith("libffi") for name in needed) or "libc.so.6" in needed


def test_caffe_build_decided_from_its_libraries(tmp_path):
    prefix = tmp_path / "caffe"
    package = prefix / "python" / "caffe"
    # CPU_ONLY: _caffe.so -> libcaffe.so (found through $ORIGIN) -> no CUDA library.
    make_elf(package / "_caffe.so", ["libcaffe.so.1.0.0", "libc.so.6"], "$ORIGIN/../../lib")
    make_elf(prefix / "lib" / "libcaffe.so.1.0.0", ["libboost_system.so.1.88.0", "libc.so.6"])
    gpu, evidence = sc.caffe_gpu_build(package, prefix)
    assert gpu is False and "CPU_ONLY" in evidence
    # CUDA: libcaffe.so links cudart/cublas.
    make_elf(prefix / "lib" / "libcaffe.so.1.0.0", ["libcudart.so.12", "libcublas.so.12"])
    gpu, evidence = sc.caffe_gpu_build(package, prefix)
    assert gpu is True and "libcudart.so.12" in evidence


def test_caffe_build_falls_back_to_makefile_config(tmp_path):
    assert sc.caffe_gpu_build(tmp_path / "none", tmp_path)[0] is None
    (tmp_path / "Makefile.config").write_text("# CPU_ONLY := 1\nUSE_CUDNN := 1\n")
    assert sc.caffe_gpu_build(None, tmp_path)[0] is True
    (tmp_path / "Makefile.config").write_text("CPU_ONLY := 1\n")
    assert sc.caffe_gpu_build(None, tmp_path)[0] is False


# --- the script against test doubles of Caffe ------------------------------------------------

FAKE_CAFFE = '''"""Test double of pycaffe (dlrig tests): CPU forward passes work; set_device aborts,
as Caffe's LOG(FATAL) does on a CPU_ONLY build (or a GPU build without a usable device)."""
import os
import time

{on_import}
TEST = 1
__version__ = "1.0.0-test-double"


def set_mode_cpu():
    pass


def set_mode_gpu():
    pass


def set_device(index):
    os.abort()


class _Data:
    shape = (4, 3, 300, 300)

    def __setitem__(self, key, value):
        pass


class _Blob:
    def __init__(self):
        self.data = _Data()

    def reshape(self, *shape):
        pass


class Net:
    def __init__(self, prototxt, phase):
        assert os.path.isfile(prototxt)
        self.blobs = {{"data": _Blob()}}
        self.params = {{"conv0": [_Blob()]}}

    def reshape(self):
        pass

    def forward(self):
        time.sleep(0.002)
'''

FAKE_NUMPY = '''"""Test double of numpy (dlrig tests): just what the Caffe benchmark calls."""


class _Rng:
    def normal(self, loc, scale, shape):
        return 0.0

    def random(self, shape):
        return 0.0


class random:
    @staticmethod
    def default_rng(seed):
        return _Rng()
'''


def write_fake_caffe(site: Path, prefix: Path, on_import: str = "", cuda: bool = False) -> Path:
    """Install test doubles of ``caffe`` (and the bit of ``numpy`` it needs) under ``site``.

    + site: a directory to put on PYTHONPATH
    + prefix: the Caffe prefix (``lib/libcaffe.so.1.0.0`` goes there)
    + on_import: Python run when ``caffe`` is imported (raise, abort, …)
    + cuda: link libcaffe.so to CUDA libraries (a GPU build) instead of none (CPU_ONLY)
    """
    package = site / "caffe"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(FAKE_CAFFE.format(on_import=on_import))
    make_elf(package / "_caffe.so", ["libcaffe.so.1.0.0", "libc.so.6"], "$ORIGIN/../lib")
    make_elf(
        site / "lib" / "libcaffe.so.1.0.0",
        ["libcudart.so.12", "libcublas.so.12"] if cuda else ["libc.so.6"],
    )
    (site / "numpy").mkdir(exist_ok=True)
    (site / "numpy" / "__init__.py").write_text(FAKE_NUMPY)
    prefix.mkdir(parents=True, exist_ok=True)
    return site


def run_script(tmp_path: Path, *args: str, site: Path | None = None):
    """Run speed_check.py as the deploy does; return (exit code, verdict or None, output)."""
    out = tmp_path / "verdict.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site:
        env["PYTHONPATH"] = str(site)
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--repeats", "1", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    verdict = json.loads(out.read_text()) if out.is_file() else None
    return proc.returncode, verdict, proc.stdout + proc.stderr


def test_cpu_only_caffe_gives_cpu_figures_and_never_calls_set_device(tmp_path):
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe")
    common = ["--frameworks", "caffe"]  # libcaffe.so is found through _caffe.so's $ORIGIN

    code, verdict, output = run_script(tmp_path, *common, "--gpu", "no", site=site)
    assert code == 0, output
    caffe = verdict["figures"]["caffe"]
    assert verdict["ok"] is True and caffe["gpu_build"] is False and "gpu_s" not in caffe
    assert caffe["cpu_ms_per_image"] >= 0 and "CPU_ONLY" in caffe["gpu_build_evidence"]
    assert verdict["versions"]["caffe"] == "1.0.0-test-double"

    # A GPU expected: the CPU_ONLY build fails the check with the reason, it does not abort.
    code, verdict, output = run_script(tmp_path, *common, "--gpu", "yes", site=site)
    assert code == 1, output
    assert "caffe: does not see the GPU (CPU-only build or driver mismatch)" in verdict["failures"]
    assert not any("crashed" in f for f in verdict["failures"])
    assert "cpu_ms_per_image" in verdict["figures"]["caffe"]


def test_expected_caffe_that_fails_to_import_fails_and_unexpected_is_skipped(tmp_path):
    error = "raise ImportError('libcaffe.so.1.0.0: cannot open shared object file')"
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe", on_import=error)
    common = ["--frameworks", "caffe", "--gpu", "no"]

    code, verdict, _ = run_script(tmp_path, *common, "--expect", "caffe", site=site)
    assert code == 1 and verdict["ok"] is False and verdict["expect"] == ["caffe"]
    assert verdict["failures"] == [
        "caffe: import failed: ImportError: libcaffe.so.1.0.0: cannot open shared object file"
    ]

    code, verdict, _ = run_script(tmp_path, *common, site=site)
    assert verdict["skipped"] == ["caffe"] and "caffe" not in verdict["figures"]
    assert verdict["failures"] == [
        "no framework to measure (TensorFlow, PyTorch and Caffe all absent)"
    ]


def test_expected_framework_that_is_not_installed_fails(tmp_path):
    code, verdict, _ = run_script(tmp_path, "--frameworks", "", "--expect", "caffe", "--gpu", "no")
    assert code == 1
    assert verdict["failures"] == [
        "caffe: import failed: ModuleNotFoundError: No module named 'caffe'"
    ]


def test_a_framework_that_aborts_is_a_failure_naming_the_signal(tmp_path):
    on_import = "import sys; sys.stderr.write('F0101 fatal in libcaffe\\n'); os.abort()"
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe", on_import=on_import)
    code, verdict, output = run_script(tmp_path, "--frameworks", "caffe", "--gpu", "no", site=site)
    assert code == 1, output
    (failure,) = verdict["failures"]
    assert failure.startswith("caffe: crashed: killed by SIGABRT")
    assert "F0101 fatal in libcaffe" in failure


def test_a_gpu_build_that_aborts_on_the_gpu_keeps_its_cpu_figures(tmp_path):
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe", cuda=True)
    args = ["--frameworks", "caffe", "--gpu", "yes", "--caffe-prefix", str(tmp_path / "caffe")]
    code, verdict, output = run_script(tmp_path, *args, site=site)
    assert code == 1, output
    caffe = verdict["figures"]["caffe"]
    assert caffe["gpu_build"] is True and "cpu_ms_per_image" in caffe
    assert "caffe: crashed: killed by SIGABRT: no output" in verdict["failures"]


def test_verdict_is_written_when_it_fails_and_exit_codes(tmp_path):
    code, verdict, _ = run_script(tmp_path, "--frameworks", "", "--gpu", "no")
    # 1: a verdict was written and it failed (the deploy fetches it, then fails the host).
    assert code == 1 and verdict["ok"] is False and verdict["exit_code"] == 1
    # 2: no verdict could be written at all (here: its directory is a file).
    (tmp_path / "file").write_text("")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "file" / "v.json"), "--gpu", "no"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("speed check: cannot")


def test_a_stale_verdict_is_removed_before_the_run(tmp_path, monkeypatch):
    out = tmp_path / "v.json"
    out.write_text(json.dumps({"ok": True, "stack": {}}))

    def broken(*args, **kwargs):
        raise RuntimeError("measuring broke")

    monkeypatch.setattr(sc, "measure", broken)
    assert sc.main(["--out", str(out), "--gpu", "no"]) == 1
    verdict = json.loads(out.read_text())
    assert verdict["failures"] == ["speed check crashed: RuntimeError: measuring broke"]


def test_report_table():
    verdict = {
        "ok": False,
        "gpus": ["Tesla T4"],
        "figures": {
            "tensorflow": sc.add_rates("tensorflow", T4_TF, "Tesla T4"),
            "caffe": sc.add_rates("caffe", {"cpu_s": 0.05, "gpu_visible": False}, "Tesla T4"),
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
