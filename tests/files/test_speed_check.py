"""The speed check script run as the deploy runs it (``files/speed_check/speed_check.py``, each
framework in its own child) against test doubles of Caffe: a CPU_ONLY build whose GPU call aborts,
a broken import, a crash; the exit codes and the verdict that is always written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from deploys.speed_check import script_digest
from tests.files.speed_check_doubles import SCRIPT, SCRIPT_DIR, script_module, write_fake_caffe

sc = script_module("speed_check")


def run_script(
    tmp_path: Path,
    *args: str,
    site: Path | None = None,
    script: Path = SCRIPT,
    extra_env: dict[str, str] | None = None,
):
    """Run speed_check.py as the deploy does; return (exit code, verdict or None, output)."""
    out = tmp_path / "verdict.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    if site:
        env["PYTHONPATH"] = str(site)
    env.update(extra_env or {})
    proc = subprocess.run(
        [sys.executable, str(script), "--out", str(out), "--repeats", "1", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
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
    assert code == 3, output
    assert "caffe: does not see the GPU (CPU-only build or driver mismatch)" in verdict["failures"]
    assert not any("crashed" in f for f in verdict["failures"])
    assert "cpu_ms_per_image" in verdict["figures"]["caffe"]


def test_an_uploaded_copy_finds_its_modules_in_its_own_directory(tmp_path):
    # The deploy uploads the directory's regular files; the copy and its --one children import
    # their siblings from there, also where the script's directory is not on sys.path
    # (PYTHONSAFEPATH), and the copy reports the digest the deploy computes.
    copy = tmp_path / "opt" / "speed_check"
    copy.mkdir(parents=True)
    for path in SCRIPT_DIR.iterdir():
        if path.is_file():
            shutil.copy(path, copy / path.name)
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe")
    args = ["--frameworks", "caffe", "--gpu", "no"]
    for extra_env in ({}, {"PYTHONSAFEPATH": "1"}):
        code, verdict, output = run_script(
            tmp_path, *args, site=site, script=copy / "speed_check.py", extra_env=extra_env
        )
        assert code == 0, output
        assert verdict["figures"]["caffe"]["cpu_ms_per_image"] >= 0
        assert verdict["stack"]["script"] == script_digest(copy) == script_digest()


def test_expected_caffe_that_fails_to_import_fails_and_unexpected_is_skipped(tmp_path):
    error = "raise ImportError('libcaffe.so.1.0.0: cannot open shared object file')"
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe", on_import=error)
    common = ["--frameworks", "caffe", "--gpu", "no"]

    code, verdict, _ = run_script(tmp_path, *common, "--expect", "caffe", site=site)
    assert code == 3 and verdict["ok"] is False and verdict["expect"] == ["caffe"]
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
    assert code == 3
    assert verdict["failures"] == [
        "caffe: import failed: ModuleNotFoundError: No module named 'caffe'"
    ]


def test_a_framework_that_aborts_is_a_failure_naming_the_signal(tmp_path):
    on_import = "import sys; sys.stderr.write('F0101 fatal in libcaffe\\n'); os.abort()"
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe", on_import=on_import)
    code, verdict, output = run_script(tmp_path, "--frameworks", "caffe", "--gpu", "no", site=site)
    assert code == 3, output
    (failure,) = verdict["failures"]
    assert failure.startswith("caffe: crashed: killed by SIGABRT")
    assert "F0101 fatal in libcaffe" in failure


def test_a_gpu_build_that_aborts_on_the_gpu_keeps_its_cpu_figures(tmp_path):
    site = write_fake_caffe(tmp_path / "site", tmp_path / "caffe", cuda=True)
    args = ["--frameworks", "caffe", "--gpu", "yes", "--caffe-prefix", str(tmp_path / "caffe")]
    code, verdict, output = run_script(tmp_path, *args, site=site)
    assert code == 3, output
    caffe = verdict["figures"]["caffe"]
    assert caffe["gpu_build"] is True and "cpu_ms_per_image" in caffe
    assert "caffe: crashed: killed by SIGABRT: no output" in verdict["failures"]


def test_verdict_is_written_when_it_fails_and_exit_codes(tmp_path):
    code, verdict, _ = run_script(tmp_path, "--frameworks", "", "--gpu", "no")
    # 3: a verdict was written and it failed (the deploy fetches it, then fails the host).
    assert code == 3 and verdict["ok"] is False and verdict["exit_code"] == 3
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
    assert sc.main(["--out", str(out), "--gpu", "no"]) == 3
    verdict = json.loads(out.read_text())
    assert verdict["failures"] == ["speed check crashed: RuntimeError: measuring broke"]


def test_a_crash_is_not_a_failed_verdict(tmp_path):
    # A script that cannot run (here: a sibling module missing, as with a half-uploaded copy)
    # exits with Python's 1, which the deploy's run step does not accept (it accepts 0 and 3).
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(SCRIPT, copy / SCRIPT.name)
    proc = subprocess.run(
        [sys.executable, str(copy / SCRIPT.name), "--out", str(tmp_path / "v.json")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr
    assert not (tmp_path / "v.json").exists()
